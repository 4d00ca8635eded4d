// Multipart upload: CreateMultipartUpload (POST ?uploads), UploadPart (PUT ?partNumber&uploadId),
// UploadPartCopy (the same with x-amz-copy-source), CompleteMultipartUpload (POST ?uploadId),
// AbortMultipartUpload (DELETE ?uploadId), ListParts (GET ?uploadId), ListMultipartUploads
// (GET /bucket?uploads). Parts stream to disk (uploads/upload-store.ts); completion streams them,
// in order, to every replica as one value (uploads/complete-upload.ts), whose record keeps each
// part's size and checksum (GET ?partNumber, GetObjectAttributes).
//
//   UploadPart ──────▶ request body ─ checks (Content-MD5, x-amz-checksum-*) ─▶ part file
//   UploadPartCopy ──▶ a replica of the source (its range) ───────────────────▶ part file
//   Complete ────────▶ part files, in order ─ (FULL_OBJECT: a CRC of every byte) ─▶ replicas
import { authorize } from '../../auth/authenticate.js';
import { checksumAlgorithm, checksumAlgorithmOf } from '../../auth/body-check.js';
import { CHECKSUM_ALGORITHMS, FULL_OBJECT_ALGORITHMS, type ChecksumAlgorithm } from '../../checksums.js';
import { MkvError } from '../../errors.js';
import { openValue } from '../../keys/read-value.js';
import { completeUpload as complete, type RequestedPart } from '../../uploads/complete-upload.js';
import type { StoredPart, Upload } from '../../uploads/upload-store.js';
import type { Answer } from '../answer.js';
import type { MasterDeps } from '../deps.js';
import { requestBody } from '../request-body.js';
import { headerOf, splitBucket, type S3Call } from './call.js';
import { checkReadConditions } from './conditions.js';
import { partNumberOf } from './parts.js';
import { recordToRead } from './versions.js';
import { copySourceOf, mayReplace, person, readXmlBody, valueAttributesOf, writeOptionsOf, xmlAnswer } from './s3.js';
import { childElements, element, parseXml, requiredText } from './xml.js';

/** S3's largest part. */
const MAX_PART_BYTES = 5 * 1024 * 1024 * 1024;

/** How S3 spells an algorithm in XML element names (ChecksumCRC32) and in x-amz-checksum-algorithm. */
function upper(algorithm: string): string {
  return algorithm.toUpperCase();
}

/** The checksum CreateMultipartUpload asks each part to have, and how the value's is formed from theirs. */
function uploadChecksumOf(call: S3Call): Pick<Upload, 'checksumAlgorithm' | 'checksumType'> {
  const name = headerOf(call, 'x-amz-checksum-algorithm').trim().toLowerCase();
  const type = headerOf(call, 'x-amz-checksum-type').trim().toUpperCase();
  if (name === '') {
    if (type !== '') throw new MkvError('MKV_BAD_REQUEST', 'x-amz-checksum-type needs x-amz-checksum-algorithm');
    return { checksumAlgorithm: null, checksumType: null };
  }
  const algorithm = checksumAlgorithmOf(name, `x-amz-checksum-algorithm ${name}`);
  const full = FULL_OBJECT_ALGORITHMS.includes(algorithm);
  // CRC64NVME is FULL_OBJECT only; SHA-1 and SHA-256 COMPOSITE only; CRC32 and CRC32C either (COMPOSITE unless asked).
  const checksumType = type === '' ? (algorithm === 'crc64nvme' ? 'FULL_OBJECT' : 'COMPOSITE') : type;
  if (checksumType !== 'COMPOSITE' && checksumType !== 'FULL_OBJECT')
    throw new MkvError('MKV_BAD_REQUEST', `x-amz-checksum-type ${type} is neither COMPOSITE nor FULL_OBJECT`);
  if ((checksumType === 'FULL_OBJECT' && !full) || (checksumType === 'COMPOSITE' && algorithm === 'crc64nvme'))
    throw new MkvError(
      'MKV_BAD_REQUEST',
      `The ${checksumType} checksum type cannot be used with the ${upper(algorithm)} checksum algorithm.`,
    );
  return { checksumAlgorithm: algorithm, checksumType };
}

export function createUpload(deps: MasterDeps, call: S3Call): Answer {
  authorize(call.identity, 'write', call.key);
  const checksum = uploadChecksumOf(call);
  const upload = deps.uploads.create(call.key, { ...valueAttributesOf(call), ...checksum, initiator: call.identity.name });
  const headers: Record<string, string> = upload.checksumAlgorithm
    ? { 'x-amz-checksum-algorithm': upper(upload.checksumAlgorithm), 'x-amz-checksum-type': upload.checksumType! }
    : {};
  return xmlAnswer(
    'InitiateMultipartUploadResult',
    [element('Bucket', call.bucket), element('Key', call.objectKey), element('UploadId', upload.uploadId)],
    headers,
  );
}

/** The algorithm of the checksum a part comes with (an x-amz-checksum-* header, or the trailer x-amz-trailer promises), if any. */
function carriedAlgorithm(call: S3Call): ChecksumAlgorithm | undefined {
  const trailer = headerOf(call, 'x-amz-trailer').trim().toLowerCase();
  if (trailer.startsWith('x-amz-checksum-')) return checksumAlgorithm(trailer);
  const name = Object.keys(call.headers).find(
    (header) => header.startsWith('x-amz-checksum-') && header !== 'x-amz-checksum-type' && header !== 'x-amz-checksum-algorithm',
  );
  return name === undefined ? undefined : checksumAlgorithm(name);
}

/** A part's checksum, as a header or an element: x-amz-checksum-crc32 / ChecksumCRC32. */
function partChecksumAnswer(part: StoredPart): Array<[string, string]> {
  return part.checksum ? [[upper(part.checksum.algorithm), part.checksum.value]] : [];
}

/** UploadPart (or, with x-amz-copy-source, UploadPartCopy): a part to disk, its ETag (and checksum) answered. */
export async function uploadPart(deps: MasterDeps, call: S3Call): Promise<Answer> {
  authorize(call.identity, 'write', call.key);
  const uploadId = call.query.get('uploadId') ?? '';
  const upload = deps.uploads.get(uploadId, call.key);
  const number = partNumberOf(call.query.get('partNumber'));
  // A part sent again replaces the one sent before, which is gone after: as any write that destroys, it needs delete.
  if (deps.uploads.hasPart(uploadId, number) && !mayReplace(call))
    throw new MkvError('MKV_ACCESS_DENIED', `part ${number} of this upload was sent already, and replacing it needs the delete right`);
  if (headerOf(call, 'x-amz-copy-source')) return uploadPartCopy(deps, call, upload, number);
  const carried = carriedAlgorithm(call);
  if (upload.checksumAlgorithm && carried && carried !== upload.checksumAlgorithm)
    throw new MkvError(
      'MKV_BAD_REQUEST',
      `Checksum Type mismatch occurred, expected checksum Type: ${upload.checksumAlgorithm}, actual checksum Type: ${carried}`,
    );
  // A part may be empty (pyarrow uploads one empty part for an empty file).
  const part = await deps.uploads.writePart(
    uploadId,
    number,
    requestBody(call.message, { allowEmpty: true }),
    deps.config.bodyTimeoutMs,
    upload.checksumAlgorithm,
  );
  const headers: Record<string, string> = { ETag: `"${part.md5}"` };
  for (const [algorithm, value] of partChecksumAnswer(part)) headers[`x-amz-checksum-${algorithm.toLowerCase()}`] = value;
  return { status: 200, headers, body: '' };
}

/**
 * The bytes x-amz-copy-source-range names in a value of `size` bytes: `bytes=first-last`, both
 * within the value (InvalidRange otherwise); none: the whole value. Any other form is InvalidArgument.
 */
export function copyRangeOf(text: string, size: number): { start: number; end: number } | undefined {
  if (text === '') return undefined;
  const match = /^bytes=(\d{1,15})-(\d{1,15})$/.exec(text.trim());
  if (!match || Number(match[1]) > Number(match[2]))
    throw new MkvError(
      'MKV_BAD_QUERY',
      'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy',
    );
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (end >= size) throw new MkvError('MKV_INVALID_RANGE', `The requested range ${text} is not satisfiable in a value of ${size} bytes`);
  if (end - start + 1 > MAX_PART_BYTES) throw new MkvError('MKV_BAD_QUERY', 'A copied part may be at most 5 GB');
  return { start, end };
}

/**
 * UploadPartCopy: a part from another value's bytes (all, or x-amz-copy-source-range), read from
 * one of its replicas, with the read right on it and its x-amz-copy-source-if-* conditions met.
 */
async function uploadPartCopy(deps: MasterDeps, call: S3Call, upload: Upload, number: number): Promise<Answer> {
  const { key: source, versionId } = copySourceOf(call);
  const { record } = recordToRead(deps, source, versionId);
  if (!record || record.state !== 'live') throw new MkvError('MKV_NOT_FOUND', 'The specified key does not exist.');
  checkReadConditions(call.headers, record, 'x-amz-copy-source-');
  const size = record.size ?? 0;
  const range = copyRangeOf(headerOf(call, 'x-amz-copy-source-range'), size);
  if (!range && size > MAX_PART_BYTES)
    throw new MkvError('MKV_BAD_QUERY', 'A copied part may be at most 5 GB: give x-amz-copy-source-range');
  const length = range ? range.end - range.start + 1 : size;
  const body = await openValue(deps, source, record, range && (range.start > 0 || range.end < size - 1) ? range : undefined);
  let part: StoredPart;
  try {
    part = await deps.uploads.writePart(upload.uploadId, number, { body, length }, deps.config.bodyTimeoutMs, upload.checksumAlgorithm);
  } catch (error) {
    body.destroy();
    // A source that broke off is the volume's failure, not the client's.
    if (error instanceof MkvError && error.code === 'MKV_SHORT_BODY')
      throw new MkvError('MKV_VOLUME_FAILED', `reading ${source} from its replica broke off`, { cause: error });
    throw error;
  }
  return xmlAnswer('CopyPartResult', [
    element('LastModified', part.modified),
    element('ETag', `"${part.md5}"`),
    ...partChecksumAnswer(part).map(([algorithm, value]) => element(`Checksum${algorithm}`, value)),
  ]);
}

function requestedParts(xml: string): RequestedPart[] {
  const content = parseXml(xml, 'CompleteMultipartUpload');
  const requested = childElements(content, 'Part').map((part) => ({
    number: Number(requiredText(part, 'PartNumber')),
    etag: requiredText(part, 'ETag').replace(/"/g, '').trim(),
    checksums: CHECKSUM_ALGORITHMS.flatMap((algorithm) => {
      const value = childElements(part, `Checksum${upper(algorithm)}`)[0]?.text.trim();
      return value === undefined ? [] : [{ algorithm, value }];
    }),
  }));
  if (requested.length === 0) throw new MkvError('MKV_BAD_XML', 'the XML document is malformed: no <StoredPart>');
  return requested;
}

/** The value's checksum a CompleteMultipartUpload states (x-amz-checksum-ALGORITHM), if it states one. */
function statedChecksum(call: S3Call): { name: string; value: string } | undefined {
  const name = Object.keys(call.headers).find(
    (header) => header.startsWith('x-amz-checksum-') && header !== 'x-amz-checksum-type' && header !== 'x-amz-checksum-algorithm',
  );
  return name === undefined ? undefined : { name, value: headerOf(call, name).trim() };
}

/** x-amz-mp-object-size: the size the client expects the completed value to have. */
function expectedSizeOf(call: S3Call): number | undefined {
  const text = headerOf(call, 'x-amz-mp-object-size');
  if (text === '') return undefined;
  if (!/^\d{1,15}$/.test(text)) throw new MkvError('MKV_BAD_REQUEST', `x-amz-mp-object-size is ${text.slice(0, 20)}, not a size in bytes`);
  return Number(text);
}

/** CompleteMultipartUpload: the parts its document names, as one value (uploads/complete-upload.ts). */
export async function completeUpload(deps: MasterDeps, call: S3Call): Promise<Answer> {
  authorize(call.identity, 'write', call.key);
  const uploadId = call.query.get('uploadId') ?? '';
  // An unknown upload is NoSuchUpload before its document is read (a completed one answers again).
  if (!deps.uploads.completion(uploadId, call.key)) deps.uploads.get(uploadId, call.key);
  const parts = requestedParts(await readXmlBody(call, deps, { checksumHeaders: false }));
  const stated = statedChecksum(call);
  const expectedSize = expectedSizeOf(call);
  const { etag, checksum, seq } = await complete(
    deps,
    {
      uploadId,
      key: call.key,
      parts,
      ...(stated ? { stated } : {}),
      ...(expectedSize !== undefined ? { expectedSize } : {}),
    },
    call.cause,
    writeOptionsOf(call),
  );
  return xmlAnswer(
    'CompleteMultipartUploadResult',
    [
      element('Location', `http://${call.host}${call.path}`),
      element('Bucket', call.bucket),
      element('Key', call.objectKey),
      element('ETag', `"${etag}"`),
      ...(checksum ? [element(`Checksum${upper(checksum.algorithm)}`, checksum.value), element('ChecksumType', checksum.type)] : []),
    ],
    deps.config.retainMs > 0 && seq !== undefined ? { 'x-amz-version-id': String(seq) } : {},
  );
}

export function abortUpload(deps: MasterDeps, call: S3Call): Answer {
  authorize(call.identity, 'delete', call.key);
  const uploadId = call.query.get('uploadId') ?? '';
  deps.uploads.get(uploadId, call.key);
  deps.uploads.remove(uploadId);
  return { status: 204 };
}

/** A count a listing query gives (max-parts, max-uploads): 0 to 1,000 (more is 1,000), else InvalidArgument. */
function maxCount(value: string | null, name: string): number {
  if (value === null) return 1000;
  if (!/^\d{1,10}$/.test(value)) throw new MkvError('MKV_BAD_QUERY', `${name} must be a non-negative integer`);
  return Math.min(Number(value), 1000);
}

/** ListParts: the parts of an upload in progress, from part-number-marker, max-parts at a time. */
export function listParts(deps: MasterDeps, call: S3Call): Answer {
  const { query } = call;
  authorize(call.identity, 'write', call.key);
  const uploadId = query.get('uploadId') ?? '';
  const upload = deps.uploads.get(uploadId, call.key);
  const maxParts = maxCount(query.get('max-parts'), 'max-parts');
  const markerText = query.get('part-number-marker') ?? '0';
  if (!/^\d{1,5}$/.test(markerText)) throw new MkvError('MKV_BAD_QUERY', 'part-number-marker must be a part number');
  const marker = Number(markerText);
  const after = deps.uploads.parts(uploadId).filter((part) => part.number > marker);
  const page = after.slice(0, maxParts);
  const truncated = after.length > page.length;
  return xmlAnswer('ListPartsResult', [
    element('Bucket', call.bucket),
    element('Key', call.objectKey),
    element('UploadId', uploadId),
    element('Initiator', person(upload.initiator)),
    element('Owner', person()),
    element('StorageClass', 'STANDARD'),
    element('PartNumberMarker', marker),
    element('NextPartNumberMarker', page.at(-1)?.number ?? marker),
    element('MaxParts', maxParts),
    element('IsTruncated', truncated),
    ...page.map((part) =>
      element('Part', [
        element('PartNumber', part.number),
        element('LastModified', part.modified || upload.initiated),
        element('ETag', `"${part.md5}"`),
        element('Size', part.size),
        ...partChecksumAnswer(part).map(([algorithm, value]) => element(`Checksum${algorithm}`, value)),
      ]),
    ),
    ...(upload.checksumAlgorithm
      ? [element('ChecksumAlgorithm', upper(upload.checksumAlgorithm)), element('ChecksumType', upload.checksumType!)]
      : []),
  ]);
}

/**
 * ListMultipartUploads: the uploads begun under this bucket and not completed or aborted, by key
 * then age, after key-marker (and upload-id-marker), under a prefix, rolled up at a delimiter.
 */
export function listUploads(deps: MasterDeps, call: S3Call): Answer {
  const { bucket, query } = call;
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') ?? '';
  const keyMarker = query.get('key-marker') ?? '';
  const uploadIdMarker = query.get('upload-id-marker') ?? '';
  const maxUploads = maxCount(query.get('max-uploads'), 'max-uploads');
  const urlEncoded = query.get('encoding-type') === 'url';
  if (query.has('encoding-type') && !urlEncoded) throw new MkvError('MKV_BAD_QUERY', 'encoding-type may only be url');
  const encode = (text: string) => (urlEncoded ? encodeURIComponent(text) : text);
  authorize(call.identity, 'list', `/${bucket}/${prefix}`);
  const uploads = deps.uploads
    .list()
    .map((upload) => ({ ...upload, objectKey: splitBucket(upload.key).objectKey }))
    .filter((upload) => upload.key.startsWith(`/${bucket}/`) && upload.objectKey.startsWith(prefix));
  // Past the markers: keys after key-marker, and key-marker's own uploads begun after upload-id-marker's.
  let start = 0;
  if (keyMarker !== '') {
    const marked =
      uploadIdMarker === '' ? -1 : uploads.findIndex((upload) => upload.objectKey === keyMarker && upload.uploadId === uploadIdMarker);
    start = marked !== -1 ? marked + 1 : uploads.findIndex((upload) => upload.objectKey > keyMarker);
    if (start === -1) start = uploads.length;
  }
  const listed: typeof uploads = [];
  const commonPrefixes: string[] = [];
  let truncated = false;
  let last: { key: string; uploadId: string } | undefined;
  for (let i = start; i < uploads.length; i++) {
    const upload = uploads[i]!;
    const cut = delimiter === '' ? -1 : upload.objectKey.indexOf(delimiter, prefix.length);
    const common = cut === -1 ? undefined : upload.objectKey.slice(0, cut + delimiter.length);
    if (common !== undefined && commonPrefixes.at(-1) === common) continue;
    if (listed.length + commonPrefixes.length >= maxUploads) {
      truncated = true;
      break;
    }
    if (common !== undefined) {
      commonPrefixes.push(common);
      // Resume after every upload under this prefix.
      last = { key: common, uploadId: '' };
    } else {
      listed.push(upload);
      last = { key: upload.objectKey, uploadId: upload.uploadId };
    }
  }
  return xmlAnswer('ListMultipartUploadsResult', [
    element('Bucket', bucket),
    element('KeyMarker', encode(keyMarker)),
    element('UploadIdMarker', uploadIdMarker),
    ...(truncated && last ? [element('NextKeyMarker', encode(last.key)), element('NextUploadIdMarker', last.uploadId)] : []),
    ...(prefix !== '' ? [element('Prefix', encode(prefix))] : []),
    ...(delimiter !== '' ? [element('Delimiter', encode(delimiter))] : []),
    ...(urlEncoded ? [element('EncodingType', 'url')] : []),
    element('MaxUploads', maxUploads),
    element('IsTruncated', truncated),
    ...listed.map((upload) =>
      element('Upload', [
        element('Key', encode(upload.objectKey)),
        element('UploadId', upload.uploadId),
        element('Initiator', person(upload.initiator)),
        element('Owner', person()),
        element('StorageClass', 'STANDARD'),
        element('Initiated', upload.initiated),
        ...(upload.checksumAlgorithm
          ? [element('ChecksumAlgorithm', upper(upload.checksumAlgorithm)), element('ChecksumType', upload.checksumType!)]
          : []),
      ]),
    ),
    ...commonPrefixes.map((common) => element('CommonPrefixes', [element('Prefix', encode(common))])),
  ]);
}
