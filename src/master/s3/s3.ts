// The S3 subset, path-style: the object "k" of bucket "b" is the key "/b/k".
//
// S3 clients do not follow a 302 on GET/HEAD, so a request that is S3-signed is answered
// directly: the bytes stream from a replica through the master (with Range). Plain HTTP
// clients keep the redirect. A PutObject over a live key replaces its value, as S3 does (the
// native PUT keeps the original's write-once rule): overwrites of one key may overlap, the last
// to commit wins, and readers get the old value or a new one throughout (keys/store-value.ts).
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { isMkvError, MkvError, type ErrorCode } from '../../errors.js';
import { checkKeyFits } from '../../keys/key-limits.js';
import { findReplica, readValue } from '../../keys/read-value.js';
import { deleteKey } from '../../keys/remove.js';
import { storeValue } from '../../keys/store-value.js';
import type { KeyRecord } from '../../index/evolve.js';
import { PassThrough, pipeline, type Readable } from 'node:stream';
import { createDigest, type ChecksumAlgorithm } from '../../checksums.js';
import type { Checksum } from '../../events/event.js';
import { checksumAlgorithmOf } from '../../auth/body-check.js';
import { replaceMetadata } from '../../keys/store-value.js';
import { checkWriteCondition, etagOf, type WriteCondition } from '../../keys/write-condition.js';
import { checkReadConditions, writeConditionOf } from './conditions.js';
import { partOf } from './parts.js';
import { readSmallBody } from '../../keys/slow-body.js';
import type { Answer } from '../answer.js';
import { authorize, identityOf } from '../../auth/authenticate.js';
import { allows } from '../../auth/credentials.js';
import { apiCause, type MasterDeps } from '../deps.js';
import { isAuthFailure, recordFailure } from '../errors.js';
import { decodeKey } from '../request-key.js';
import { requestBody } from '../request-body.js';
import { MAX_XML_BYTES, childElements, document, element, parseXml, requiredText } from './xml.js';

/** "/bucket/a/b" → { bucket: "bucket", objectKey: "a/b" }; objectKey is "" for the bucket itself. */
export function splitBucket(key: string): { bucket: string; objectKey: string } {
  const slash = key.indexOf('/', 1);
  return slash === -1 ? { bucket: key.slice(1), objectKey: '' } : { bucket: key.slice(1, slash), objectKey: key.slice(slash + 1) };
}

const S3_ERRORS: Partial<Record<ErrorCode, [string, number]>> = {
  MKV_NOT_FOUND: ['NoSuchKey', 404],
  MKV_NO_SUCH_UPLOAD: ['NoSuchUpload', 404],
  MKV_EXISTS: ['PreconditionFailed', 412],
  MKV_PRECONDITION_FAILED: ['PreconditionFailed', 412],
  MKV_KEY_LOCKED: ['OperationAborted', 409],
  MKV_DELETING: ['OperationAborted', 409],
  MKV_BUCKET_NOT_EMPTY: ['BucketNotEmpty', 409],
  MKV_NO_SUCH_BUCKET: ['NoSuchBucket', 404],
  MKV_INVALID_BUCKET_NAME: ['InvalidBucketName', 400],
  MKV_BUCKET_EXISTS: ['BucketAlreadyExists', 409],
  MKV_NO_TAG_SET: ['NoSuchTagSet', 404],
  MKV_METADATA_TOO_LARGE: ['MetadataTooLarge', 400],
  MKV_CONDITIONAL_CONFLICT: ['ConditionalRequestConflict', 409],
  MKV_BAD_KEY: ['InvalidURI', 400],
  MKV_KEY_TOO_LONG: ['KeyTooLongError', 400],
  MKV_BAD_QUERY: ['InvalidArgument', 400],
  MKV_BAD_XML: ['MalformedXML', 400],
  MKV_INVALID_PART: ['InvalidPart', 400],
  MKV_ENTITY_TOO_SMALL: ['EntityTooSmall', 400],
  MKV_INVALID_RANGE: ['InvalidRange', 416],
  MKV_EMPTY_BODY: ['MissingContentLength', 411],
  MKV_SHORT_BODY: ['IncompleteBody', 400],
  MKV_BAD_REQUEST: ['InvalidRequest', 400],
  MKV_READ_ONLY: ['AccessDenied', 403],
  MKV_PROTECTED: ['AccessDenied', 403],
  MKV_UNKNOWN_OPERATION: ['NotImplemented', 501],
  MKV_UNAUTHENTICATED: ['AccessDenied', 403],
  MKV_ACCESS_DENIED: ['AccessDenied', 403],
  MKV_SIGNATURE: ['SignatureDoesNotMatch', 403],
  MKV_UNKNOWN_ACCESS_KEY: ['InvalidAccessKeyId', 403],
  MKV_TIME_SKEWED: ['RequestTimeTooSkewed', 403],
  MKV_CONTENT_SHA256_MISMATCH: ['XAmzContentSHA256Mismatch', 400],
  MKV_BAD_DIGEST: ['BadDigest', 400],
  MKV_INVALID_DIGEST: ['InvalidDigest', 400],
  MKV_AUTH_MALFORMED: ['AuthorizationHeaderMalformed', 400],
  MKV_LOG_FULL: ['ServiceUnavailable', 503],
  MKV_UPLOADS_FULL: ['ServiceUnavailable', 503],
  MKV_LOG_UNAVAILABLE: ['ServiceUnavailable', 503],
};

/** An S3 request's id, as S3 gives one (16 hex digits): in its x-amz-request-id header, and in its error document. */
export function newRequestId(): string {
  return randomBytes(8).toString('hex').toUpperCase();
}

/** An MkvError as S3's XML error document; `resource` is the request's path. */
export function s3ErrorAnswer(error: MkvError, resource: string, requestId = newRequestId()): Answer {
  const [code, status] = S3_ERRORS[error.code] ?? ['InternalError', error.status >= 500 ? error.status : 500];
  return {
    status,
    headers: { 'Mkv-Error': error.code, 'x-amz-request-id': requestId },
    type: 'application/xml',
    body:
      `<?xml version="1.0" encoding="UTF-8"?>\n<Error>${element('Code', code)}${element('Message', error.message)}` +
      `${element('Resource', resource)}${element('RequestId', requestId)}</Error>`,
  };
}

function httpDate(time: number): string {
  return new Date(time).toUTCString();
}

/** What S3 calls a value of no stated type. */
const DEFAULT_TYPE = 'binary/octet-stream';

/** The object headers S3 keeps with a value and serves back on GET and HEAD, by lower-case name. */
export const OBJECT_HEADERS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'] as const;

/**
 * The object headers a PUT (or CreateMultipartUpload, a copy with REPLACE) gives its value.
 * Content-Encoding is kept without aws-chunked, which only frames the request's body.
 */
export function objectHeadersOf(ctx: Context): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of OBJECT_HEADERS) {
    let value = ctx.get(name);
    if (name === 'content-encoding')
      value = value
        .split(',')
        .map((coding) => coding.trim())
        .filter((coding) => coding !== '' && coding.toLowerCase() !== 'aws-chunked')
        .join(', ');
    if (value === '') continue;
    if (value.length > 1024) throw new MkvError('MKV_BAD_REQUEST', `the ${name} header is longer than 1024 characters`);
    headers[name] = value;
  }
  return headers;
}

/** What a request gives the value it writes: its Content-Type, user metadata and object headers. */
export function valueAttributesOf(ctx: Context): {
  contentType: string | null;
  metadata: Record<string, string>;
  headers: Record<string, string>;
} {
  return { contentType: contentTypeOf(ctx), metadata: metadataOf(ctx), headers: objectHeadersOf(ctx) };
}

/** The Content-Type a PUT gives its value, kept and served back; none: S3's default. */
export function contentTypeOf(ctx: Context): string | null {
  const type = ctx.get('content-type');
  if (type === '') return null;
  if (type.length > 1024) throw new MkvError('MKV_BAD_REQUEST', 'the Content-Type is longer than 1024 characters');
  return type;
}

/** What a GET may ask its answer's headers to say instead of the value's (S3 takes them from a signed request only). */
const RESPONSE_OVERRIDES: ReadonlyArray<[string, string]> = [
  ['response-content-type', 'Content-Type'],
  ['response-content-language', 'Content-Language'],
  ['response-expires', 'Expires'],
  ['response-cache-control', 'Cache-Control'],
  ['response-content-disposition', 'Content-Disposition'],
  ['response-content-encoding', 'Content-Encoding'],
];

/**
 * A user metadata value as a header: one byte a char when every char fits in one (botocore and
 * the JavaScript SDK read a header as latin-1, so they get back the text they sent as UTF-8);
 * else RFC 2047's encoded word of its UTF-8, as S3 sends a value that is not ASCII.
 */
function asHeaderBytes(text: string): string {
  return /^[\x00-\xff]*$/.test(text) ? text : `=?UTF-8?B?${Buffer.from(text, 'utf8').toString('base64')}?=`;
}

/**
 * The headers S3 answers a GET or HEAD of a value with: when it was written, its ETag, type,
 * object headers and user metadata, its checksum when asked (x-amz-checksum-mode: ENABLED, a
 * whole value), then what the request's response-* parameters override.
 */
function valueHeaders(ctx: Context, record: KeyRecord, whole: boolean): void {
  ctx.set('Accept-Ranges', 'bytes');
  ctx.set('Last-Modified', httpDate(record.modified));
  ctx.set('ETag', etagOf(record));
  ctx.set('Content-Type', record.contentType ?? DEFAULT_TYPE);
  for (const [name, value] of Object.entries(record.headers)) ctx.set(name, value);
  for (const [name, value] of Object.entries(record.metadata)) ctx.set(`x-amz-meta-${name}`, asHeaderBytes(value));
  if (record.parts.length > 0) ctx.set('x-amz-mp-parts-count', String(record.parts.length));
  if (record.checksum && whole && ctx.get('x-amz-checksum-mode').toUpperCase() === 'ENABLED') {
    ctx.set(`x-amz-checksum-${record.checksum.algorithm}`, record.checksum.value);
    ctx.set('x-amz-checksum-type', record.checksum.type);
  }
  const query = new URLSearchParams(ctx.querystring);
  const overrides = RESPONSE_OVERRIDES.filter(([parameter]) => query.has(parameter));
  if (overrides.length === 0) return;
  if (identityOf(ctx.req).name === 'anonymous')
    throw new MkvError('MKV_BAD_REQUEST', 'Request specific response headers cannot be used for anonymous GET requests.');
  for (const [parameter, name] of overrides) ctx.set(name, asHeaderBytes(query.get(parameter)!));
}

/**
 * GetObject / HeadObject for S3 clients: the bytes through the master, Range passed to the
 * volume; a conditional request (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since)
 * answered from the record before a volume is asked.
 */
export async function getObjectDirect(ctx: Context, deps: MasterDeps, key: string): Promise<void> {
  checkVersionId(new URLSearchParams(ctx.querystring).get('versionId') ?? undefined);
  authorize(identityOf(ctx.req), 'read', key);
  const record = deps.index.get(key);
  if (!record || record.state !== 'live') throw new MkvError('MKV_NOT_FOUND', 'The specified key does not exist.');
  if (checkReadConditions(ctx.req.headers, record) === 'not-modified') {
    ctx.status = 304;
    ctx.set('ETag', etagOf(record));
    ctx.set('Last-Modified', httpDate(record.modified));
    return;
  }
  // ?partNumber=N: the bytes of a multipart value's part N (the whole value is a single one's part 1).
  const part = partOf(record, new URLSearchParams(ctx.querystring), ctx.get('range'));
  const ranged = part !== undefined && part.part !== undefined && part.end >= part.start;
  if (ctx.method === 'HEAD' || (part?.part && !ranged)) {
    const found = await findReplica(deps, key, record);
    if (!found) throw new MkvError('MKV_NOT_FOUND', 'The specified key does not exist on any replica.');
    ctx.status = 200;
    ctx.set('Content-Length', String(found.size ?? record.size ?? 0));
    if (part?.part) {
      // A part's bytes, as a GET of them would answer (an empty part: none).
      ctx.status = 206;
      ctx.set('Content-Length', String(part.part.size));
      if (ranged) ctx.set('Content-Range', `bytes ${part.start}-${part.end}/${record.size ?? 0}`);
      if (ctx.method === 'GET') ctx.body = '';
    }
  } else {
    const bytes = await readValue(deps, key, record, ranged ? `bytes=${part.start}-${part.end}` : ctx.get('range') || undefined);
    ctx.status = bytes.status;
    if (bytes.length !== undefined) ctx.set('Content-Length', bytes.length);
    if (bytes.range !== undefined) ctx.set('Content-Range', bytes.range);
    ctx.body = bytes.body;
  }
  valueHeaders(ctx, record, ctx.status === 200 && part?.part === undefined);
  if (part?.part) {
    ctx.set('x-amz-mp-parts-count', String(part.count));
    // A part's own checksum (the one its upload gave it), of the value's algorithm.
    if (part.part.checksum !== null && record.checksum) {
      ctx.set(`x-amz-checksum-${record.checksum.algorithm}`, part.part.checksum);
      ctx.set('x-amz-checksum-type', record.checksum.type);
    }
  }
}

/** Whether the client of a request has gone (its connection closed): a write waiting for its key is then not made. */
export function clientGoneOf(ctx: Context): () => boolean {
  return () => ctx.req.socket.destroyed;
}

/** Whether the request may replace a value `key` holds: that destroys it, so it needs the delete right as well as write. */
export function mayReplace(ctx: Context, key: string): boolean {
  return allows(identityOf(ctx.req).grant, 'delete', key);
}

/**
 * Refuses a version other than the current one. No key has versions here (yet): its value is
 * its one version, "null", as S3 names the object of a bucket that never had versioning.
 */
export function checkVersionId(versionId: string | undefined): void {
  if (versionId !== undefined && versionId !== 'null') throw new MkvError('MKV_BAD_QUERY', 'Invalid version id specified');
}

/** S3 keeps at most 2 KB of user metadata a value. */
const MAX_METADATA_BYTES = 2048;

/** The user metadata a PUT gives its value: its x-amz-meta-* headers, by lower-case name. */
export function metadataOf(ctx: Context): Record<string, string> {
  const metadata: Record<string, string> = {};
  let bytes = 0;
  for (const [name, value] of Object.entries(ctx.req.headers)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    // node:http reads a header one char a byte. A value whose bytes are UTF-8 (what botocore and
    // the JavaScript SDK send) is kept as the text they encode; any other as its bytes (latin-1).
    const raw = Array.isArray(value) ? value.join(',') : value;
    const sent = /[\x80-\xff]/.test(raw) ? Buffer.from(raw, 'latin1') : undefined;
    const text = sent && isUtf8(sent) ? sent.toString('utf8') : raw;
    metadata[name.slice('x-amz-meta-'.length)] = text;
    bytes += Buffer.byteLength(name) - 'x-amz-meta-'.length + Buffer.byteLength(text);
  }
  if (bytes > MAX_METADATA_BYTES)
    throw new MkvError(
      'MKV_METADATA_TOO_LARGE',
      `Your metadata headers exceed the maximum allowed metadata size: ${bytes} bytes of x-amz-meta-*, S3 allows ${MAX_METADATA_BYTES}`,
    );
  return metadata;
}

/**
 * PutObject: a value (empty ones too) under the key, replacing its value if it has one, as S3
 * does: readers get the old value until the new one is on every replica, then the new one.
 */
export async function putObject(ctx: Context, deps: MasterDeps, key: string): Promise<void> {
  checkVersionId(new URLSearchParams(ctx.querystring).get('versionId') ?? undefined);
  authorize(identityOf(ctx.req), 'write', key);
  if (ctx.get('x-amz-copy-source')) return copyObject(ctx, deps, key);
  const written = await storeValue(deps, key, requestBody(ctx.req, { allowEmpty: true }), apiCause(ctx.state.client as string | null), {
    s3: valueAttributesOf(ctx),
    mayReplace: mayReplace(ctx, key),
    condition: writeConditionOf(ctx.req.headers),
    clientGone: clientGoneOf(ctx),
  });
  ctx.status = 200;
  ctx.set('ETag', `"${written.md5 ?? ''}"`);
  if (written.checksum) ctx.set(`x-amz-checksum-${written.checksum.algorithm}`, written.checksum.value);
  ctx.body = '';
}

/**
 * CopyObject (PUT with x-amz-copy-source: /bucket/key): the source's value streamed from one of
 * its replicas into the destination, with its Content-Type and metadata (directive COPY) or the
 * request's (REPLACE). A key copied onto itself with REPLACE keeps its value and changes only
 * its metadata (rclone sets a file's time this way); with x-amz-checksum-algorithm it is copied
 * whole, as an overwrite of itself, to be given that checksum.
 */
async function copyObject(ctx: Context, deps: MasterDeps, key: string): Promise<void> {
  const source = copySourceOf(ctx);
  const replace = ctx.get('x-amz-metadata-directive').toUpperCase() === 'REPLACE';
  const cause = apiCause(ctx.state.client as string | null);
  const record = deps.index.get(source);
  if (!record || record.state !== 'live') throw new MkvError('MKV_NOT_FOUND', 'The specified key does not exist.');
  checkReadConditions(ctx.req.headers, record, 'x-amz-copy-source-');
  // A checksum the copy is to be given (S3 computes it as it copies); else the source's, when it holds for the copy.
  const asked = ctx.get('x-amz-checksum-algorithm') === '' ? undefined : checksumAlgorithmOf(ctx.get('x-amz-checksum-algorithm'));
  let etag: string;
  let checksum: Checksum | null = null;
  if (source === key && !asked) {
    if (!replace)
      throw new MkvError('MKV_BAD_REQUEST', 'copying an object onto itself changes nothing without x-amz-metadata-directive: REPLACE');
    // New metadata replaces the old, which is gone after: as any write that destroys, it needs delete.
    if (!mayReplace(ctx, key)) throw new MkvError('MKV_ACCESS_DENIED', `replacing the metadata of ${key} needs the delete right`);
    await replaceMetadata(deps, key, valueAttributesOf(ctx), cause);
    etag = etagOf(record);
  } else {
    const value = await openValue(deps, source, record);
    const s3 = replace ? valueAttributesOf(ctx) : { contentType: record.contentType, metadata: record.metadata, headers: record.headers };
    const digest = asked && digesting(value, asked);
    const written = await storeValue(
      deps,
      key,
      { body: digest?.body ?? value, length: record.size ?? undefined, ...(digest ? { checksum: digest.checksum } : {}) },
      cause,
      {
        // A whole value's checksum holds for its copy; a multipart one's (of its parts) does not.
        s3: { ...s3, ...(digest ? {} : { checksum: record.checksum?.type === 'FULL_OBJECT' ? record.checksum : null }) },
        mayReplace: mayReplace(ctx, key),
        condition: writeConditionOf(ctx.req.headers),
        clientGone: clientGoneOf(ctx),
      },
    );
    etag = `"${written.md5 ?? ''}"`;
    checksum = written.checksum;
  }
  const checksumElements = checksum ? [element(`Checksum${checksum.algorithm.toUpperCase()}`, checksum.value)] : [];
  xmlResponse(ctx, 'CopyObjectResult', [element('LastModified', new Date().toISOString()), element('ETag', etag), ...checksumElements]);
}

/** `body` passed through a running digest of `algorithm`: the value's checksum once it has ended. */
function digesting(body: Readable, algorithm: ChecksumAlgorithm): { body: Readable; checksum: () => Checksum } {
  const digest = createDigest(algorithm);
  const through = new PassThrough();
  body.on('data', (chunk: Buffer) => digest.update(chunk));
  pipeline(body, through, () => undefined); // an error reaches `through`, which the store reads
  let value: string | undefined;
  return { body: through, checksum: () => ({ algorithm, value: (value ??= digest.digest().toString('base64')), type: 'FULL_OBJECT' }) };
}

/**
 * The key a copy reads (x-amz-copy-source: [/]bucket/key[?versionId=…], percent-encoded), once
 * the request may read it: CopyObject and UploadPartCopy alike.
 */
export function copySourceOf(ctx: Context): string {
  const [path, query] = ctx.get('x-amz-copy-source').split('?', 2) as [string, string | undefined];
  let source: string;
  try {
    source = decodeURIComponent(path);
  } catch {
    throw new MkvError('MKV_BAD_REQUEST', 'x-amz-copy-source is not valid percent-encoded UTF-8');
  }
  if (!source.startsWith('/')) source = `/${source}`;
  checkKeyFits(source);
  checkVersionId(new URLSearchParams(query ?? '').get('versionId') ?? undefined);
  authorize(identityOf(ctx.req), 'read', source);
  return source;
}

/** A live value's bytes (those from `start` to `end`, inclusive, when given), from the first replica that serves them. */
export async function openValue(
  deps: MasterDeps,
  key: string,
  record: KeyRecord,
  range?: { start: number; end: number },
): Promise<Readable> {
  const bytes = await readValue(deps, key, record, range && `bytes=${range.start}-${range.end}`);
  if (range && bytes.status !== 206) {
    // A volume that sent the whole value for a range would make a part of the wrong bytes.
    bytes.body.destroy();
    throw new MkvError('MKV_VOLUME_FAILED', 'a replica answered a range with the whole value');
  }
  return bytes.body;
}

/**
 * DeleteObject: S3 answers 204 whether or not the key existed; with If-Match, only the value
 * it names goes (another: 412, none: 404), checked under the key's lock.
 */
export async function deleteObject(ctx: Context, deps: MasterDeps, key: string): Promise<void> {
  checkVersionId(new URLSearchParams(ctx.querystring).get('versionId') ?? undefined);
  if (ctx.get('if-none-match') !== '' || ctx.get('if-modified-since') !== '' || ctx.get('if-unmodified-since') !== '')
    throw new MkvError('MKV_UNKNOWN_OPERATION', 'a DELETE may be conditional on If-Match only (as S3 has it)');
  authorize(identityOf(ctx.req), 'delete', key);
  const ifMatch = ctx.get('if-match') || undefined;
  // Its answer says whether the value is the one named: as on S3, that needs the read right too.
  if (ifMatch) authorize(identityOf(ctx.req), 'read', key);
  await removeObject(ctx, deps, key, { ifMatch, waitTurn: true });
  ctx.status = 204;
}

/** Deletes a key as S3 does: a key that is not there is not an error, unless `ifMatch` (ETags, or *) asked for a value. */
async function removeObject(
  ctx: Context,
  deps: MasterDeps,
  key: string,
  options: { ifMatch?: string; waitTurn?: boolean } = {},
): Promise<void> {
  const { ifMatch, waitTurn = false } = options;
  const condition: WriteCondition = ifMatch === undefined ? undefined : { kind: 'match', etags: ifMatch };
  const refuse = (record: KeyRecord | undefined): MkvError | undefined => {
    try {
      checkWriteCondition(condition, record);
      return undefined;
    } catch (error) {
      return error as MkvError;
    }
  };
  try {
    // S3 takes a DELETE and a write of one key at once: unconditional, a DeleteObject waits for the
    // write to end (DeleteObjects does not: a thousand keys are answered at once, one held is OperationAborted).
    const wait = !condition && waitTurn ? { waitTurn, clientGone: clientGoneOf(ctx) } : {};
    await deleteKey(deps, key, apiCause(ctx.state.client as string | null), condition ? { refuse } : wait);
  } catch (error) {
    if (condition && isMkvError(error, 'MKV_KEY_LOCKED'))
      throw new MkvError('MKV_CONDITIONAL_CONFLICT', 'A conflicting operation occurred: another write of this key is in flight; retry');
    if (!(error instanceof MkvError && error.code === 'MKV_NOT_FOUND' && condition === undefined)) throw error;
  }
}

const MAX_DELETE_OBJECTS = 1000;

/**
 * A client's XML document (DeleteObjects, CompleteMultipartUpload): at most MAX_XML_BYTES, under
 * the body timeout, and checked as any body is (the sha256 it was signed with, its Content-MD5)
 * before anything is done with it.
 */
export async function readXmlBody(ctx: Context, deps: MasterDeps, options: { checksumHeaders?: boolean } = {}): Promise<string> {
  const tooLarge = () => new MkvError('MKV_BAD_XML', `the XML body is larger than ${MAX_XML_BYTES} bytes`);
  const { body } = requestBody(ctx.req, { allowEmpty: true, ...options });
  return (await readSmallBody(body, MAX_XML_BYTES, deps.config.bodyTimeoutMs, tooLarge)).toString('utf8');
}

/** DeleteObjects: POST /bucket?delete with <Delete><Object><Key>…</Key></Object>…</Delete>. */
export async function deleteObjects(ctx: Context, deps: MasterDeps, bucket: string): Promise<void> {
  // As S3: the list of keys to delete comes with its digest, so a list altered on the way (or
  // replayed with another body, when the payload is unsigned) deletes nothing.
  const headers = ctx.req.headers;
  const digests = Object.keys(headers).filter((name) => /^x-amz-(checksum-(crc32|crc32c|crc64nvme|sha1|sha256)|trailer)$/.test(name));
  if (headers['content-md5'] === undefined && digests.length === 0)
    throw new MkvError('MKV_BAD_REQUEST', 'Missing required header for this request: Content-Md5 (or an x-amz-checksum-*)');
  const content = parseXml(await readXmlBody(ctx, deps), 'Delete');
  const quiet = childElements(content, 'Quiet')[0]?.text.trim() === 'true';
  const objects = childElements(content, 'Object').map((object) => ({
    key: requiredText(object, 'Key'),
    versionId: childElements(object, 'VersionId')[0]?.text.trim(),
    // Deleted only if it is still this value (S3's conditional DeleteObjects).
    etag: childElements(object, 'ETag')[0]?.text.trim(),
  }));
  const keys = objects.map((object) => object.key);
  if (keys.length === 0) throw new MkvError('MKV_BAD_XML', 'the XML document is malformed: no <Object> to delete');
  if (keys.length > MAX_DELETE_OBJECTS) throw new MkvError('MKV_BAD_XML', `at most ${MAX_DELETE_OBJECTS} objects per request`);
  const results: string[] = [];
  const identity = identityOf(ctx.req);
  let denied = 0;
  for (const { key: objectKey, versionId, etag } of objects) {
    const key = `/${bucket}/${objectKey}`;
    try {
      checkKeyFits(key);
      checkVersionId(versionId);
      authorize(identity, 'delete', key);
      if (etag) authorize(identity, 'read', key);
      await removeObject(ctx, deps, key, etag === undefined ? {} : { ifMatch: etag });
      if (!quiet) results.push(element('Deleted', [element('Key', objectKey), ...(versionId ? [element('VersionId', versionId)] : [])]));
    } catch (error) {
      // A key the caller may not delete is its answer's business, logged once for the request below.
      const refused = error instanceof MkvError && isAuthFailure(error);
      if (refused) denied++;
      const mkv = refused ? error : recordFailure(error, deps, 'POST', ctx.path, ctx.req);
      const [code] = S3_ERRORS[mkv.code] ?? ['InternalError'];
      results.push(`<Error>${element('Key', objectKey)}${element('Code', code)}${element('Message', mkv.message)}</Error>`);
    }
  }
  if (denied > 0) {
    const what = `delete ${denied} of the ${keys.length} keys asked for`;
    recordFailure(
      new MkvError(identity.name === 'anonymous' ? 'MKV_UNAUTHENTICATED' : 'MKV_ACCESS_DENIED', what),
      deps,
      'POST',
      ctx.path,
      ctx.req,
    );
  }
  ctx.status = 200;
  ctx.type = 'application/xml';
  ctx.body = document('DeleteResult', results);
}

export function xmlResponse(ctx: Context, root: string, children: string[]): void {
  ctx.status = 200;
  ctx.type = 'application/xml';
  ctx.body = document(root, children);
}

/**
 * GetBucketAcl / GetObjectAcl: the owner has every permission, and no grant is given to anyone
 * else (who may do what is the credentials file's, by key prefix, not an ACL's).
 */
export function aclOf(ctx: Context, bucket: string, right: 'list' | 'read'): void {
  authorize(identityOf(ctx.req), right, right === 'list' ? `/${bucket}/` : decodeKey(ctx.path));
  const owner = [element('ID', 'mkv'), element('DisplayName', 'mkv')];
  xmlResponse(ctx, 'AccessControlPolicy', [
    element('Owner', owner),
    element('AccessControlList', [
      `<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">${owner.join('')}</Grantee>${element('Permission', 'FULL_CONTROL')}</Grant>`,
    ]),
  ]);
}
