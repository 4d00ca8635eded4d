// Multipart upload: CreateMultipartUpload (POST ?uploads), UploadPart (PUT ?partNumber&uploadId),
// UploadPartCopy (the same with x-amz-copy-source), CompleteMultipartUpload (POST ?uploadId),
// AbortMultipartUpload (DELETE ?uploadId), ListParts (GET ?uploadId), ListMultipartUploads
// (GET /bucket?uploads). Parts stream to disk (uploads.ts); completion streams them, in order,
// to every replica as one value, whose record keeps each part's size and checksum (GET
// ?partNumber, GetObjectAttributes).
//
//   UploadPart ──────▶ request body ─ checks (Content-MD5, x-amz-checksum-*) ─▶ part file
//   UploadPartCopy ──▶ a replica of the source (its range) ───────────────────▶ part file
//   Complete ────────▶ part files, in order ─ (FULL_OBJECT: a CRC of every byte) ─▶ replicas
import type { Context } from 'koa';
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { authorize, identityOf } from '../../auth/authenticate.js';
import { checksumAlgorithm, checksumAlgorithmOf, checksumCheck, type DigestCheck } from '../../auth/body-check.js';
import { CHECKSUM_ALGORITHMS, FULL_OBJECT_ALGORITHMS, compositeChecksum, createDigest, type ChecksumAlgorithm } from '../../checksums.js';
import { MkvError } from '../../errors.js';
import type { Checksum, Part as ValuePart } from '../../events/event.js';
import { storeValue } from '../../keys/store-value.js';
import { etagOf } from '../../keys/write-condition.js';
import { apiCause, type MasterDeps } from '../deps.js';
import { requestBody } from '../request-body.js';
import { checkReadConditions, writeConditionOf } from './conditions.js';
import { partNumberOf } from './parts.js';
import { clientGoneOf, copySourceOf, mayReplace, openValue, readXmlBody, splitBucket, valueAttributesOf, xmlResponse } from './s3.js';
import type { Part, Upload } from './uploads.js';
import { childElements, element, parseXml, requiredText } from './xml.js';

/** S3's smallest part, but for the last: a smaller one is EntityTooSmall when the upload completes. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
/** S3's largest part. */
const MAX_PART_BYTES = 5 * 1024 * 1024 * 1024;

/** How S3 spells an algorithm in XML element names (ChecksumCRC32) and in x-amz-checksum-algorithm. */
function upper(algorithm: string): string {
  return algorithm.toUpperCase();
}

/** The checksum CreateMultipartUpload asks each part to have, and how the value's is formed from theirs. */
function uploadChecksumOf(ctx: Context): Pick<Upload, 'checksumAlgorithm' | 'checksumType'> {
  const name = ctx.get('x-amz-checksum-algorithm').trim().toLowerCase();
  const type = ctx.get('x-amz-checksum-type').trim().toUpperCase();
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

export function createUpload(ctx: Context, deps: MasterDeps, key: string): void {
  authorize(identityOf(ctx.req), 'write', key);
  const { bucket, objectKey } = splitBucket(key);
  if (objectKey === '') throw new MkvError('MKV_BAD_REQUEST', 'a multipart upload needs an object key');
  const checksum = uploadChecksumOf(ctx);
  const upload = deps.uploads.create(key, { ...valueAttributesOf(ctx), ...checksum, initiator: identityOf(ctx.req).name });
  if (upload.checksumAlgorithm) {
    ctx.set('x-amz-checksum-algorithm', upper(upload.checksumAlgorithm));
    ctx.set('x-amz-checksum-type', upload.checksumType!);
  }
  xmlResponse(ctx, 'InitiateMultipartUploadResult', [
    element('Bucket', bucket),
    element('Key', objectKey),
    element('UploadId', upload.uploadId),
  ]);
}

/** The algorithm of the checksum a part comes with (an x-amz-checksum-* header, or the trailer x-amz-trailer promises), if any. */
function carriedAlgorithm(ctx: Context): ChecksumAlgorithm | undefined {
  const trailer = ctx.get('x-amz-trailer').trim().toLowerCase();
  if (trailer.startsWith('x-amz-checksum-')) return checksumAlgorithm(trailer);
  const name = Object.keys(ctx.req.headers).find(
    (header) => header.startsWith('x-amz-checksum-') && header !== 'x-amz-checksum-type' && header !== 'x-amz-checksum-algorithm',
  );
  return name === undefined ? undefined : checksumAlgorithm(name);
}

/** A part's checksum, as a header or an element: x-amz-checksum-crc32 / ChecksumCRC32. */
function partChecksumAnswer(part: Part): Array<[string, string]> {
  return part.checksum ? [[upper(part.checksum.algorithm), part.checksum.value]] : [];
}

/** UploadPart (or, with x-amz-copy-source, UploadPartCopy): a part to disk, its ETag (and checksum) answered. */
export async function uploadPart(ctx: Context, deps: MasterDeps, key: string, query: URLSearchParams): Promise<void> {
  authorize(identityOf(ctx.req), 'write', key);
  const uploadId = query.get('uploadId') ?? '';
  const upload = deps.uploads.get(uploadId, key);
  const number = partNumberOf(query.get('partNumber'));
  // A part sent again replaces the one sent before, which is gone after: as any write that destroys, it needs delete.
  if (deps.uploads.hasPart(uploadId, number) && !mayReplace(ctx, key))
    throw new MkvError('MKV_ACCESS_DENIED', `part ${number} of this upload was sent already, and replacing it needs the delete right`);
  if (ctx.get('x-amz-copy-source')) return uploadPartCopy(ctx, deps, upload, number);
  const carried = carriedAlgorithm(ctx);
  if (upload.checksumAlgorithm && carried && carried !== upload.checksumAlgorithm)
    throw new MkvError(
      'MKV_BAD_REQUEST',
      `Checksum Type mismatch occurred, expected checksum Type: ${upload.checksumAlgorithm}, actual checksum Type: ${carried}`,
    );
  // A part may be empty (pyarrow uploads one empty part for an empty file).
  const part = await deps.uploads.writePart(
    uploadId,
    number,
    requestBody(ctx.req, { allowEmpty: true }),
    deps.config.bodyTimeoutMs,
    upload.checksumAlgorithm,
  );
  ctx.status = 200;
  ctx.set('ETag', `"${part.md5}"`);
  for (const [algorithm, value] of partChecksumAnswer(part)) ctx.set(`x-amz-checksum-${algorithm.toLowerCase()}`, value);
  ctx.body = '';
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
async function uploadPartCopy(ctx: Context, deps: MasterDeps, upload: Upload, number: number): Promise<void> {
  const source = copySourceOf(ctx);
  const record = deps.index.get(source);
  if (!record || record.state !== 'live') throw new MkvError('MKV_NOT_FOUND', 'The specified key does not exist.');
  checkReadConditions(ctx.req.headers, record, 'x-amz-copy-source-');
  const size = record.size ?? 0;
  const range = copyRangeOf(ctx.get('x-amz-copy-source-range'), size);
  if (!range && size > MAX_PART_BYTES)
    throw new MkvError('MKV_BAD_QUERY', 'A copied part may be at most 5 GB: give x-amz-copy-source-range');
  const length = range ? range.end - range.start + 1 : size;
  const body = await openValue(deps, source, record, range && (range.start > 0 || range.end < size - 1) ? range : undefined);
  let part: Part;
  try {
    part = await deps.uploads.writePart(upload.uploadId, number, { body, length }, deps.config.bodyTimeoutMs, upload.checksumAlgorithm);
  } catch (error) {
    // A source that broke off is the volume's failure, not the client's.
    if (error instanceof MkvError && error.code === 'MKV_SHORT_BODY')
      throw new MkvError('MKV_VOLUME_FAILED', `reading ${source} from its replica broke off`, { cause: error });
    throw error;
  }
  xmlResponse(ctx, 'CopyPartResult', [
    element('LastModified', part.modified),
    element('ETag', `"${part.md5}"`),
    ...partChecksumAnswer(part).map(([algorithm, value]) => element(`Checksum${algorithm}`, value)),
  ]);
}

/** A part CompleteMultipartUpload names: its number, ETag and the checksums it says the part has. */
interface RequestedPart {
  number: number;
  etag: string;
  checksums: Array<{ algorithm: ChecksumAlgorithm; value: string }>;
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
  if (requested.length === 0) throw new MkvError('MKV_BAD_XML', 'the XML document is malformed: no <Part>');
  return requested;
}

/**
 * The stored parts the request names, checked as S3 does: ascending, each uploaded with that
 * ETag and those checksums (InvalidPart), each but the last at least 5 MiB (EntityTooSmall).
 */
export function chosenParts(requested: RequestedPart[], stored: Map<number, Part>): Part[] {
  const chosen: Part[] = [];
  for (let i = 0; i < requested.length; i++) {
    const { number } = requested[i]!;
    if (!Number.isInteger(number) || number <= (chosen.at(-1)?.number ?? 0))
      throw new MkvError('MKV_INVALID_PART', 'the parts must be listed in ascending order, each once');
    // A part named twice in a row (a client that uploaded it twice at once, and listed both
    // answers) counts once, by the answer of the upload that finished last: the part stored.
    // ceph's RGW takes it so (s3-tests' test_multipart_resend_first_finishes_last).
    let same = i;
    while (requested[same + 1]?.number === number) same++;
    const named = requested.slice(i, same + 1);
    i = same;
    const part = stored.get(number);
    const match = named.find(({ etag }) => part?.md5 === etag);
    if (!part || !match) throw new MkvError('MKV_INVALID_PART', `part ${number} was not uploaded with ETag ${named[0]!.etag}`);
    for (const { algorithm, value } of match.checksums) {
      if (part.checksum?.algorithm !== algorithm || part.checksum.value !== value)
        throw new MkvError('MKV_INVALID_PART', `part ${number} was not uploaded with the ${upper(algorithm)} checksum ${value}`);
    }
    chosen.push(part);
  }
  chosen.slice(0, -1).forEach((part) => {
    if (part.size < MIN_PART_BYTES)
      throw new MkvError(
        'MKV_ENTITY_TOO_SMALL',
        `Your proposed upload is smaller than the minimum allowed size: part ${part.number} is ${part.size} bytes, and every part but the last must be at least ${MIN_PART_BYTES}`,
      );
  });
  return chosen;
}

/** A stream of `body`'s bytes that computes their `algorithm` digest; `value()` once it has ended. */
function digesting(body: Readable, algorithm: ChecksumAlgorithm): { body: Readable; value: () => string } {
  const digest = createDigest(algorithm);
  let value = '';
  const through = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      digest.update(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      value = digest.digest().toString('base64');
      callback();
    },
  });
  body.on('error', (error) => through.destroy(error));
  return { body: body.pipe(through), value: () => value };
}

/** The value's checksum a CompleteMultipartUpload states (x-amz-checksum-ALGORITHM), if it states one. */
function statedChecksum(ctx: Context): { name: string; value: string } | undefined {
  const name = Object.keys(ctx.req.headers).find(
    (header) => header.startsWith('x-amz-checksum-') && header !== 'x-amz-checksum-type' && header !== 'x-amz-checksum-algorithm',
  );
  return name === undefined ? undefined : { name, value: ctx.get(name).trim() };
}

function badDigest(algorithm: string): MkvError {
  return new MkvError('MKV_BAD_DIGEST', `The ${upper(algorithm)} you specified did not match the calculated checksum.`);
}

/** The completions under way in this process, by upload id: one that arrives meanwhile waits for it, then answers as it did. */
const completing = new Map<string, Promise<void>>();

export async function completeUpload(ctx: Context, deps: MasterDeps, key: string, query: URLSearchParams): Promise<void> {
  authorize(identityOf(ctx.req), 'write', key);
  const uploadId = query.get('uploadId') ?? '';
  const earlier = completing.get(uploadId);
  if (earlier) await earlier.catch(() => undefined);
  const completion = completeOnce(ctx, deps, key, uploadId);
  completing.set(uploadId, completion);
  try {
    await completion;
  } finally {
    if (completing.get(uploadId) === completion) completing.delete(uploadId);
  }
}

async function completeOnce(ctx: Context, deps: MasterDeps, key: string, uploadId: string): Promise<void> {
  const completed = deps.uploads.completion(uploadId, key);
  if (completed) return completeAgain(ctx, deps, key, completed);
  const upload = deps.uploads.get(uploadId, key);
  const requested = requestedParts(await readXmlBody(ctx, deps, { checksumHeaders: false }));
  const parts = chosenParts(requested, new Map(deps.uploads.parts(uploadId).map((part) => [part.number, part])));
  const length = parts.reduce((sum, part) => sum + part.size, 0);
  // The size the client expects the value to have (x-amz-mp-object-size): a mismatch is refused, as S3 refuses it.
  const expectedSize = ctx.get('x-amz-mp-object-size');
  if (expectedSize !== '' && (!/^\d{1,15}$/.test(expectedSize) || Number(expectedSize) !== length))
    throw new MkvError('MKV_BAD_REQUEST', `x-amz-mp-object-size is ${expectedSize.slice(0, 20)}, but the parts named hold ${length} bytes`);
  // S3's ETag of a multipart upload: the md5 of the parts' md5s, then the number of parts.
  const partsMd5 = createHash('md5');
  for (const part of parts) partsMd5.update(Buffer.from(part.md5, 'hex'));
  const etag = `${partsMd5.digest('hex')}-${parts.length}`;

  const { checksumAlgorithm: algorithm, checksumType: type } = upload;
  const stated = statedChecksum(ctx);
  if (stated && (!algorithm || stated.name !== `x-amz-checksum-${algorithm}`))
    throw new MkvError('MKV_BAD_REQUEST', `${stated.name} is not the checksum this upload was created with (${algorithm ?? 'none'})`);
  let body = deps.uploads.concatenate(
    uploadId,
    parts.map((part) => part.number),
  );
  let checksum: Checksum | null | undefined = null;
  let fullObject: (() => Checksum) | undefined;
  if (algorithm && type === 'COMPOSITE') {
    checksum = {
      algorithm,
      value: compositeChecksum(
        algorithm,
        parts.map((part) => part.checksum!.value),
      ),
      type,
    };
    if (stated && stated.value !== checksum.value) throw badDigest(algorithm);
  } else if (algorithm && type === 'FULL_OBJECT') {
    // A CRC of every byte, computed as the parts stream to the replicas; one stated is checked
    // there, the last bytes held back until it matches (body-check.ts), so a wrong one stores nothing.
    checksum = undefined;
    const computed = digesting(body, algorithm);
    body = computed.body;
    if (stated) {
      let check: DigestCheck;
      try {
        check = checksumCheck(stated.name, stated.value);
      } catch {
        throw badDigest(algorithm);
      }
      body.on('error', (error) => check.destroy(error));
      body = body.pipe(check);
    }
    fullObject = () => ({ algorithm, value: computed.value(), type });
  }
  const valueParts: ValuePart[] = parts.map((part) => ({
    size: part.size,
    etag: part.md5,
    checksum: algorithm && part.checksum?.algorithm === algorithm ? part.checksum.value : null,
  }));
  const written = await storeValue(
    deps,
    key,
    { body, length, ...(fullObject ? { checksum: fullObject } : {}) },
    apiCause(ctx.state.client as string | null),
    {
      s3: {
        contentType: upload.contentType,
        metadata: upload.metadata,
        headers: upload.headers,
        etag,
        ...(checksum !== undefined ? { checksum } : {}),
        parts: valueParts,
      },
      clientGone: clientGoneOf(ctx),
      mayReplace: mayReplace(ctx, key),
      condition: writeConditionOf(ctx.req.headers),
    },
  );
  deps.uploads.complete(uploadId, { etag, checksum: written.checksum });
  completionAnswer(ctx, key, { etag, checksum: written.checksum });
}

/**
 * CompleteMultipartUpload of an upload already completed: S3 answers as it did the first time
 * while the key holds that upload's value; after that, as for any upload that is gone.
 */
async function completeAgain(
  ctx: Context,
  deps: MasterDeps,
  key: string,
  completed: { etag: string; checksum: Checksum | null },
): Promise<void> {
  const requested = requestedParts(await readXmlBody(ctx, deps, { checksumHeaders: false }));
  const record = deps.index.get(key);
  if (!record || record.state !== 'live' || etagOf(record) !== `"${completed.etag}"`)
    throw new MkvError('MKV_NO_SUCH_UPLOAD', 'no such upload (it was completed, and the key holds another value since)');
  // Answered as the first completion only when it names the same parts.
  const same = requested.length === record.parts.length && requested.every((part, i) => part.etag === record.parts[i]!.etag);
  if (!same) throw new MkvError('MKV_NO_SUCH_UPLOAD', 'no such upload (it was completed with other parts)');
  completionAnswer(ctx, key, completed);
}

function completionAnswer(ctx: Context, key: string, { etag, checksum }: { etag: string; checksum: Checksum | null }): void {
  const { bucket, objectKey } = splitBucket(key);
  xmlResponse(ctx, 'CompleteMultipartUploadResult', [
    element('Location', `http://${ctx.host}${ctx.path}`),
    element('Bucket', bucket),
    element('Key', objectKey),
    element('ETag', `"${etag}"`),
    ...(checksum ? [element(`Checksum${upper(checksum.algorithm)}`, checksum.value), element('ChecksumType', checksum.type)] : []),
  ]);
}

export function abortUpload(ctx: Context, deps: MasterDeps, key: string, query: URLSearchParams): void {
  authorize(identityOf(ctx.req), 'delete', key);
  const uploadId = query.get('uploadId') ?? '';
  deps.uploads.get(uploadId, key);
  deps.uploads.remove(uploadId);
  ctx.status = 204;
}

/** A count a listing query gives (max-parts, max-uploads): 0 to 1,000 (more is 1,000), else InvalidArgument. */
function maxCount(value: string | null, name: string): number {
  if (value === null) return 1000;
  if (!/^\d{1,10}$/.test(value)) throw new MkvError('MKV_BAD_QUERY', `${name} must be a non-negative integer`);
  return Math.min(Number(value), 1000);
}

function person(name: string): string[] {
  return [element('ID', name), element('DisplayName', name)];
}

/** ListParts: the parts of an upload in progress, from part-number-marker, max-parts at a time. */
export function listParts(ctx: Context, deps: MasterDeps, key: string, query: URLSearchParams): void {
  authorize(identityOf(ctx.req), 'write', key);
  const uploadId = query.get('uploadId') ?? '';
  const upload = deps.uploads.get(uploadId, key);
  const maxParts = maxCount(query.get('max-parts'), 'max-parts');
  const markerText = query.get('part-number-marker') ?? '0';
  if (!/^\d{1,5}$/.test(markerText)) throw new MkvError('MKV_BAD_QUERY', 'part-number-marker must be a part number');
  const marker = Number(markerText);
  const after = deps.uploads.parts(uploadId).filter((part) => part.number > marker);
  const page = after.slice(0, maxParts);
  const truncated = after.length > page.length;
  const { bucket, objectKey } = splitBucket(key);
  xmlResponse(ctx, 'ListPartsResult', [
    element('Bucket', bucket),
    element('Key', objectKey),
    element('UploadId', uploadId),
    element('Initiator', person(upload.initiator)),
    element('Owner', person('mkv')),
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
export function listUploads(ctx: Context, deps: MasterDeps, bucket: string, query: URLSearchParams): void {
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') ?? '';
  const keyMarker = query.get('key-marker') ?? '';
  const uploadIdMarker = query.get('upload-id-marker') ?? '';
  const maxUploads = maxCount(query.get('max-uploads'), 'max-uploads');
  const urlEncoded = query.get('encoding-type') === 'url';
  if (query.has('encoding-type') && !urlEncoded) throw new MkvError('MKV_BAD_QUERY', 'encoding-type may only be url');
  const encode = (text: string) => (urlEncoded ? encodeURIComponent(text) : text);
  authorize(identityOf(ctx.req), 'list', `/${bucket}/${prefix}`);
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
  xmlResponse(ctx, 'ListMultipartUploadsResult', [
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
        element('Owner', person('mkv')),
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
