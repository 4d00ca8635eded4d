// Multipart upload: CreateMultipartUpload (POST ?uploads), UploadPart (PUT ?partNumber&uploadId),
// CompleteMultipartUpload (POST ?uploadId), AbortMultipartUpload (DELETE ?uploadId),
// ListMultipartUploads (GET /bucket?uploads). Parts stream to disk (uploads.ts); completion
// streams them, in order, to every replica as one value.
import type { Context } from 'koa';
import { MkvError } from '../../errors.js';
import { authorize, identityOf } from '../../auth/authenticate.js';
import { checkKeyFits } from '../../keys/key-limits.js';
import { storeValue } from '../../keys/store-value.js';
import { createHash } from 'node:crypto';
import { apiCause, type MasterDeps } from '../deps.js';
import { requestBody } from '../native-api.js';
import { mayReplace, readXmlBody, splitBucket, valueAttributesOf, xmlResponse } from './s3.js';
import { childElements, element, parseXml, requiredText } from './xml.js';

export function createUpload(ctx: Context, deps: MasterDeps, key: string): void {
  checkKeyFits(key);
  authorize(identityOf(ctx.req), 'write', key);
  const { bucket, objectKey } = splitBucket(key);
  if (objectKey === '') throw new MkvError('MKV_BAD_REQUEST', 'a multipart upload needs an object key');
  const upload = deps.uploads.create(key, valueAttributesOf(ctx));
  xmlResponse(ctx, 'InitiateMultipartUploadResult', [
    element('Bucket', bucket),
    element('Key', objectKey),
    element('UploadId', upload.uploadId),
  ]);
}

export async function uploadPart(ctx: Context, deps: MasterDeps, key: string, query: URLSearchParams): Promise<void> {
  authorize(identityOf(ctx.req), 'write', key);
  const uploadId = query.get('uploadId') ?? '';
  deps.uploads.get(uploadId, key);
  const number = query.get('partNumber') ?? '';
  if (!/^\d{1,5}$/.test(number)) throw new MkvError('MKV_BAD_QUERY', 'partNumber must be an integer from 1 to 10000');
  // A part may be empty (pyarrow uploads one empty part for an empty file).
  const part = await deps.uploads.writePart(
    uploadId,
    Number(number),
    requestBody(ctx.req, { allowEmpty: true }),
    deps.config.bodyTimeoutMs,
  );
  ctx.status = 200;
  ctx.set('ETag', `"${part.md5}"`);
  ctx.body = '';
}

export async function completeUpload(ctx: Context, deps: MasterDeps, key: string, query: URLSearchParams): Promise<void> {
  authorize(identityOf(ctx.req), 'write', key);
  const uploadId = query.get('uploadId') ?? '';
  const upload = deps.uploads.get(uploadId, key);
  const content = parseXml(await readXmlBody(ctx, deps), 'CompleteMultipartUpload');
  const requested = childElements(content, 'Part').map((part) => ({
    number: Number(requiredText(part, 'PartNumber')),
    etag: requiredText(part, 'ETag').replace(/"/g, '').trim(),
  }));
  if (requested.length === 0) throw new MkvError('MKV_BAD_XML', 'the XML document is malformed: no <Part>');
  const stored = new Map(deps.uploads.parts(uploadId).map((part) => [part.number, part]));
  let previous = 0;
  for (const { number, etag } of requested) {
    if (!Number.isInteger(number) || number <= previous)
      throw new MkvError('MKV_INVALID_PART', 'the parts must be listed in ascending order, each once');
    previous = number;
    const part = stored.get(number);
    if (!part || part.md5 !== etag) throw new MkvError('MKV_INVALID_PART', `part ${number} was not uploaded with ETag ${etag}`);
  }
  const numbers = requested.map((part) => part.number);
  const length = numbers.reduce((sum, number) => sum + stored.get(number)!.size, 0);
  // S3's ETag of a multipart upload: the md5 of the parts' md5s, then the number of parts.
  const partsMd5 = createHash('md5');
  for (const number of numbers) partsMd5.update(Buffer.from(stored.get(number)!.md5, 'hex'));
  const etag = `${partsMd5.digest('hex')}-${numbers.length}`;
  await storeValue(deps, key, { body: deps.uploads.concatenate(uploadId, numbers), length }, apiCause(ctx.state.client as string | null), {
    s3: { contentType: upload.contentType, metadata: upload.metadata, headers: upload.headers, etag },
    mayReplace: mayReplace(ctx, key),
  });
  deps.uploads.remove(uploadId);
  const { bucket, objectKey } = splitBucket(key);
  xmlResponse(ctx, 'CompleteMultipartUploadResult', [
    element('Location', `http://${ctx.host}${ctx.path}`),
    element('Bucket', bucket),
    element('Key', objectKey),
    element('ETag', `"${etag}"`),
  ]);
}

export function abortUpload(ctx: Context, deps: MasterDeps, key: string, query: URLSearchParams): void {
  authorize(identityOf(ctx.req), 'delete', key);
  const uploadId = query.get('uploadId') ?? '';
  deps.uploads.get(uploadId, key);
  deps.uploads.remove(uploadId);
  ctx.status = 204;
}

/** ListMultipartUploads: the uploads begun under this bucket and not completed or aborted. */
export function listUploads(ctx: Context, deps: MasterDeps, bucket: string, query: URLSearchParams): void {
  const prefix = `/${bucket}/${query.get('prefix') ?? ''}`;
  authorize(identityOf(ctx.req), 'list', prefix);
  const uploads = deps.uploads.list().filter((upload) => upload.key.startsWith(prefix));
  xmlResponse(ctx, 'ListMultipartUploadsResult', [
    element('Bucket', bucket),
    element('KeyMarker', ''),
    element('UploadIdMarker', ''),
    element('MaxUploads', 1000),
    element('IsTruncated', false),
    ...uploads.map((upload) =>
      element('Upload', [
        element('Key', splitBucket(upload.key).objectKey),
        element('UploadId', upload.uploadId),
        element('Initiated', upload.initiated),
        element('StorageClass', 'STANDARD'),
      ]),
    ),
  ]);
}
