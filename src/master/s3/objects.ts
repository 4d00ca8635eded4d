// S3's objects, path-style: the object "k" of bucket "b" is the key "/b/k".
//
//   GetObject, HeadObject  readValue (keys/read-value.ts): the bytes through the master, Range passed on
//   PutObject              storeValue (keys/store-value.ts)
//   CopyObject             copyValue (keys/copy-value.ts)
//   DeleteObject(s)        deleteKey (keys/remove.ts)
//
// S3 clients do not follow a 302 on GET/HEAD, so a request that is S3's is answered directly:
// the bytes stream from a replica through the master. Plain HTTP clients keep the redirect. A
// PutObject over a live key replaces its value, as S3 does (the native PUT keeps the original's
// write-once rule): overwrites of one key may overlap, the last to commit wins, and readers get
// the old value or a new one throughout.
import { authorize } from '../../auth/authenticate.js';
import { checksumAlgorithm, checksumAlgorithmOf, checksumCheck } from '../../auth/body-check.js';
import { createDigest } from '../../checksums.js';
import { isMkvError, MkvError } from '../../errors.js';
import type { KeyRecord } from '../../index/evolve.js';
import { copyValue, type Copy } from '../../keys/copy-value.js';
import { checkedKey, type Key } from '../../keys/key-limits.js';
import { findReplica, readValue } from '../../keys/read-value.js';
import { readSmallBody } from '../../keys/slow-body.js';
import { deleteKey } from '../../keys/remove.js';
import { removeVersion } from '../../keys/remove-version.js';
import { storeValue } from '../../keys/store-value.js';
import { checkDeleteCondition, etagOf, type DeleteCondition } from '../../keys/write-condition.js';
import type { Answer } from '../answer.js';
import type { MasterDeps } from '../deps.js';
import { clientMessage, isAuthFailure, recordFailure } from '../errors.js';
import { requestBody } from '../request-body.js';
import { clientGoneOf, headerOf, type S3Call } from './call.js';
import { checkReadConditions } from './conditions.js';
import { S3_ERRORS } from './errors.js';
import { partOf } from './parts.js';
import { parseVersionId, recordToRead } from './versions.js';
import { checkVersionId, copySourceOf, person, readXmlBody, valueAttributesOf, writeOptionsOf, xmlAnswer } from './s3.js';
import { childElements, document, element, parseXml, requiredText } from './xml.js';

function httpDate(time: number): string {
  return new Date(time).toUTCString();
}

/** What S3 calls a value of no stated type. */
const DEFAULT_TYPE = 'binary/octet-stream';

/** What a GET may ask its answer's headers to say instead of the value's (S3 takes them from a signed request only). */
const RESPONSE_OVERRIDES: ReadonlyArray<[string, string]> = [
  ['response-content-type', 'content-type'],
  ['response-content-language', 'content-language'],
  ['response-expires', 'expires'],
  ['response-cache-control', 'cache-control'],
  ['response-content-disposition', 'content-disposition'],
  ['response-content-encoding', 'content-encoding'],
];

/**
 * A user metadata value as a header: one byte a char when every char fits in one (botocore and
 * the JavaScript SDK read a header as latin-1, so they get back the text they sent as UTF-8);
 * else RFC 2047's encoded word of its UTF-8, as S3 sends a value that is not ASCII.
 */
function asHeaderBytes(text: string): string {
  return /^[\x00-\xff]*$/.test(text) ? text : `=?UTF-8?B?${Buffer.from(text, 'utf8').toString('base64')}?=`;
}

function notFound(): MkvError {
  return new MkvError('MKV_NOT_FOUND', 'The specified key does not exist.');
}

/**
 * The headers a GET's response-* parameters ask its answer to have instead of the value's (by
 * lower-case name): S3 takes them from a signed request only.
 */
function overridesOf(call: S3Call): Record<string, string> {
  const overrides = RESPONSE_OVERRIDES.filter(([parameter]) => call.query.has(parameter));
  if (overrides.length > 0 && call.identity.name === 'anonymous')
    throw new MkvError('MKV_BAD_REQUEST', 'Request specific response headers cannot be used for anonymous GET requests.');
  return Object.fromEntries(overrides.map(([parameter, name]) => [name, asHeaderBytes(call.query.get(parameter)!)]));
}

/**
 * The headers S3 answers a GET or HEAD of a value with (lower-case names): when it was written,
 * its ETag, type, object headers and user metadata, its checksum when asked
 * (x-amz-checksum-mode: ENABLED, a whole value).
 */
function valueHeaders(call: S3Call, record: KeyRecord, whole: boolean): Record<string, string> {
  const headers: Record<string, string> = {
    'accept-ranges': 'bytes',
    'last-modified': httpDate(record.modified),
    etag: etagOf(record),
    'content-type': record.contentType ?? DEFAULT_TYPE,
    ...record.headers,
  };
  for (const [name, value] of Object.entries(record.metadata)) headers[`x-amz-meta-${name}`] = asHeaderBytes(value);
  if (record.parts.length > 0) headers['x-amz-mp-parts-count'] = String(record.parts.length);
  if (record.checksum && whole && headerOf(call, 'x-amz-checksum-mode').toUpperCase() === 'ENABLED') {
    headers[`x-amz-checksum-${record.checksum.algorithm}`] = record.checksum.value;
    headers['x-amz-checksum-type'] = record.checksum.type;
  }
  return headers;
}

/**
 * GetObject / HeadObject: the bytes through the master, Range passed to the volume; a
 * conditional request (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since)
 * answered from the record before a volume is asked; ?partNumber=N a multipart value's part N.
 */
export async function getObject(deps: MasterDeps, call: S3Call): Promise<Answer> {
  const { key } = call;
  authorize(call.identity, 'read', key);
  // ?versionId: a version --retain keeps (versions.ts).
  const { record, versionId } = recordToRead(deps, key, call.query.get('versionId'));
  if (!record || record.state !== 'live') throw notFound();
  if (checkReadConditions(call.headers, record) === 'not-modified')
    return { status: 304, headers: { ETag: etagOf(record), 'Last-Modified': httpDate(record.modified) } };
  const overrides = overridesOf(call);
  // ?partNumber=N: the bytes of a multipart value's part N (the whole value is a single one's part 1).
  const part = partOf(record, call.query, headerOf(call, 'range'));
  const ranged = part !== undefined && part.part !== undefined && part.end >= part.start;
  let answer: Answer & { headers: Record<string, string> };
  if (call.method === 'HEAD' || (part?.part && !ranged)) {
    const found = await findReplica(deps, key, record);
    if (!found) throw new MkvError('MKV_NOT_FOUND', 'The specified key does not exist on any replica.');
    answer = { status: 200, headers: { 'content-length': String(found.size ?? record.size ?? 0) } };
    if (part?.part) {
      // A part's bytes, as a GET of them would answer (an empty part: none).
      answer = { status: 206, headers: { 'content-length': String(part.part.size) } };
      if (ranged) answer.headers['content-range'] = `bytes ${part.start}-${part.end}/${record.size ?? 0}`;
      if (call.method === 'GET') answer.body = '';
    }
  } else {
    const bytes = await readValue(deps, key, record, ranged ? `bytes=${part.start}-${part.end}` : headerOf(call, 'range') || undefined);
    answer = { status: bytes.status, headers: {}, body: bytes.body };
    if (bytes.length !== undefined) answer.headers['content-length'] = bytes.length;
    if (bytes.range !== undefined) answer.headers['content-range'] = bytes.range;
  }
  Object.assign(answer.headers, valueHeaders(call, record, answer.status === 200 && part?.part === undefined), overrides);
  if (versionId !== undefined) answer.headers['x-amz-version-id'] = versionId;
  if (part?.part) {
    answer.headers['x-amz-mp-parts-count'] = String(part.count);
    // A part's own checksum (the one its upload gave it), of the value's algorithm.
    if (part.part.checksum !== null && record.checksum) {
      answer.headers[`x-amz-checksum-${record.checksum.algorithm}`] = part.part.checksum;
      answer.headers['x-amz-checksum-type'] = record.checksum.type;
    }
  }
  return answer;
}

/**
 * PutObject: a value (empty ones too) under the key, replacing its value if it has one, as S3
 * does: readers get the old value until the new one is on every replica, then the new one.
 */
export async function putObject(deps: MasterDeps, call: S3Call): Promise<Answer> {
  checkVersionId(call.query.get('versionId'));
  authorize(call.identity, 'write', call.key);
  if (headerOf(call, 'x-amz-copy-source')) return copyObject(deps, call);
  // What the request says of the value, read (and refused if bad) before its body is.
  const s3 = valueAttributesOf(call);
  const options = writeOptionsOf(call);
  const body = requestBody(call.message, { allowEmpty: true });
  const written = await storeValue(deps, call.key, body, call.cause, { s3, ...options });
  const headers: Record<string, string> = { ETag: `"${written.md5 ?? ''}"` };
  if (deps.config.retainMs > 0) headers['x-amz-version-id'] = String(written.seq);
  if (written.checksum) headers[`x-amz-checksum-${written.checksum.algorithm}`] = written.checksum.value;
  return { status: 200, headers, body: '' };
}

/**
 * CopyObject (PUT with x-amz-copy-source: /bucket/key): the source's value into the key, with
 * its attributes (x-amz-metadata-directive COPY) or the request's (REPLACE), and the checksum
 * x-amz-checksum-algorithm asks for (keys/copy-value.ts).
 */
async function copyObject(deps: MasterDeps, call: S3Call): Promise<Answer> {
  const directive = headerOf(call, 'x-amz-metadata-directive').toUpperCase();
  if (directive !== '' && directive !== 'COPY' && directive !== 'REPLACE')
    throw new MkvError('MKV_BAD_QUERY', 'x-amz-metadata-directive is COPY or REPLACE');
  if (headerOf(call, 'x-amz-copy-source-range') !== '')
    throw new MkvError('MKV_BAD_QUERY', 'x-amz-copy-source-range is for UploadPartCopy: CopyObject copies the whole value');
  await checkNoBody(deps, call);
  const { key: source, versionId } = copySourceOf(call);
  // ?versionId: an earlier version --retain keeps, copied as bytes (onto its own key too: a restore).
  const { record, versionId: sourceVersion } = recordToRead(deps, source, versionId);
  if (!record || record.state !== 'live') throw notFound();
  checkReadConditions(call.headers, record, 'x-amz-copy-source-');
  const algorithm = headerOf(call, 'x-amz-checksum-algorithm');
  const copy: Copy = {
    source,
    record,
    ...(versionId !== null && versionId !== 'null' ? { earlierVersion: true } : {}),
    ...(directive === 'REPLACE' ? { attributes: valueAttributesOf(call) } : {}),
    ...(algorithm !== '' ? { checksumAlgorithm: checksumAlgorithmOf(algorithm) } : {}),
  };
  const options = writeOptionsOf(call);
  const { etag, checksum, seq } = await copyValue(deps, call.key, copy, call.cause, options);
  const headers: Record<string, string> = sourceVersion !== undefined ? { 'x-amz-copy-source-version-id': sourceVersion } : {};
  // The copy's version: a new one, or with only new attributes the value's own.
  if (deps.config.retainMs > 0) {
    const id = seq === null ? recordToRead(deps, call.key, null).versionId : String(seq);
    if (id !== undefined) headers['x-amz-version-id'] = id;
  }
  return xmlAnswer(
    'CopyObjectResult',
    [
      element('LastModified', new Date().toISOString()),
      element('ETag', etag),
      ...(checksum ? [element(`Checksum${checksum.algorithm.toUpperCase()}`, checksum.value)] : []),
    ],
    headers,
  );
}

/**
 * A copy's request carries no value: it has no body, and what it says of one (its signed
 * sha256, Content-MD5, an x-amz-checksum-CRC32…) must hold for none. x-amz-checksum-algorithm
 * alone asks for the copy's checksum, and is no statement about the body.
 */
async function checkNoBody(deps: MasterDeps, call: S3Call): Promise<void> {
  const { body } = requestBody(call.message, { allowEmpty: true, checksumHeaders: false });
  const hasBody = () => new MkvError('MKV_BAD_REQUEST', 'a CopyObject request has no body');
  await readSmallBody(body, 0, deps.config.bodyTimeoutMs, hasBody);
  for (const name of Object.keys(call.headers)) {
    if (!name.startsWith('x-amz-checksum-') || name === 'x-amz-checksum-algorithm' || name === 'x-amz-checksum-type') continue;
    checksumCheck(name, headerOf(call, name)).verify(createDigest(checksumAlgorithm(name)).digest());
  }
}

/** What a DeleteObject asks of the value it removes (keys/write-condition.ts): none, or its conditions. */
function deleteConditionOf(call: S3Call): DeleteCondition | undefined {
  if (headerOf(call, 'if-none-match') !== '' || headerOf(call, 'if-modified-since') !== '' || headerOf(call, 'if-unmodified-since') !== '')
    throw new MkvError(
      'MKV_UNKNOWN_OPERATION',
      'a DELETE may be conditional on If-Match, x-amz-if-match-size and x-amz-if-match-last-modified-time only (as S3 has it)',
    );
  const etags = headerOf(call, 'if-match');
  const size = headerOf(call, 'x-amz-if-match-size');
  const modified = headerOf(call, 'x-amz-if-match-last-modified-time');
  return deleteCondition(etags, size, modified, 'x-amz-if-match-');
}

/** A DELETE's condition from its parts as the request gives them ('' for none); `named` names them in an error. */
function deleteCondition(etags: string, size: string, modified: string, named: string): DeleteCondition | undefined {
  if (etags === '' && size === '' && modified === '') return undefined;
  const condition: DeleteCondition = {};
  if (etags !== '') condition.etags = etags;
  if (size !== '') {
    if (!/^\d{1,15}$/.test(size)) throw new MkvError('MKV_BAD_REQUEST', `${named}size is ${size.slice(0, 20)}, not a size in bytes`);
    condition.size = Number(size);
  }
  if (modified !== '') {
    const time = Date.parse(modified);
    if (!Number.isFinite(time)) throw new MkvError('MKV_BAD_REQUEST', `${named}last-modified-time is ${modified.slice(0, 40)}, not a time`);
    condition.modified = time;
  }
  return condition;
}

/**
 * DeleteObject: S3 answers 204 whether or not the key existed; with a condition (If-Match,
 * x-amz-if-match-size, x-amz-if-match-last-modified-time) only the value it names goes
 * (another: 412, none: 404), checked under the key's lock.
 */
export async function deleteObject(deps: MasterDeps, call: S3Call): Promise<Answer> {
  const condition = deleteConditionOf(call);
  const deleted = await deleteOne(deps, call, call.key, call.query.get('versionId'), condition, true);
  const headers: Record<string, string> = {};
  if (deleted.versionId !== undefined) headers['x-amz-version-id'] = deleted.versionId;
  if (deleted.deleteMarker) headers['x-amz-delete-marker'] = 'true';
  return { status: 204, headers };
}

/**
 * DeleteObject of one key (DeleteObjects' each): with a version id, that version --retain keeps
 * goes for good (keys/remove-version.ts; the purge right); without, the key (a delete marker
 * with --retain). What the answer names: the version removed or the marker left, and whether
 * that is a delete marker.
 */
async function deleteOne(
  deps: MasterDeps,
  call: S3Call,
  key: Key,
  versionId: string | null | undefined,
  condition: DeleteCondition | undefined,
  waitTurn = false,
): Promise<{ versionId?: string; deleteMarker: boolean }> {
  const version = versionId === null || versionId === undefined ? 'null' : parseVersionId(versionId);
  authorize(call.identity, version === 'null' ? 'delete' : 'purge', key);
  // Its answer says whether the value is the one named: as on S3, that needs the read right too.
  if (condition) authorize(call.identity, 'read', key);
  if (version !== 'null') {
    // Without --retain no version is kept beyond its value (and the sweep of a replaced one takes no lock).
    if (deps.config.retainMs === 0)
      throw new MkvError('MKV_BAD_QUERY', 'Invalid version id specified: versioning is off here (mkv server --retain keeps versions)');
    const removed = await removeVersion(deps, key, version, call.cause, condition);
    return { versionId: String(version), deleteMarker: removed.deleteMarker };
  }
  // With --retain every value has a version of its own: there is no "null" one to remove.
  if (versionId === 'null' && deps.config.retainMs > 0) return { versionId: 'null', deleteMarker: false };
  const marker = await removeObject(deps, call, key, { condition, waitTurn });
  return marker === undefined ? { deleteMarker: false } : { versionId: String(marker), deleteMarker: true };
}

/**
 * Deletes a key as S3 does: a key that is not there is not an error (with --retain it gets a
 * delete marker all the same), unless a condition asked for a value.
 */
async function removeObject(
  deps: MasterDeps,
  call: S3Call,
  key: string,
  options: { condition?: DeleteCondition | undefined; waitTurn?: boolean } = {},
): Promise<number | undefined> {
  const { condition, waitTurn = false } = options;
  const refuse = (record: KeyRecord | undefined): MkvError | undefined => {
    try {
      checkDeleteCondition(condition, record);
      return undefined;
    } catch (error) {
      return error as MkvError;
    }
  };
  try {
    // S3 takes a DELETE and a write of one key at once: unconditional, a DeleteObject waits for the
    // write to end (DeleteObjects does not: a thousand keys are answered at once, one held is OperationAborted).
    const wait = !condition && waitTurn ? { waitTurn, clientGone: clientGoneOf(call) } : {};
    const deleted = await deleteKey(deps, key, call.cause, condition ? { refuse } : { ...wait, markEvenAbsent: true });
    // With --retain the DELETE is a delete marker, named by its seq (one that finished a DELETE begun before is none).
    return deleted.marker ? deleted.seq : undefined;
  } catch (error) {
    if (condition && isMkvError(error, 'MKV_KEY_LOCKED'))
      throw new MkvError('MKV_CONDITIONAL_CONFLICT', 'A conflicting operation occurred: another write of this key is in flight; retry');
    if (!(error instanceof MkvError && error.code === 'MKV_NOT_FOUND' && condition === undefined)) throw error;
    return undefined;
  }
}

const MAX_DELETE_OBJECTS = 1000;

/** DeleteObjects: POST /bucket?delete with <Delete><Object><Key>…</Key></Object>…</Delete>. */
export async function deleteObjects(deps: MasterDeps, call: S3Call): Promise<Answer> {
  // As S3: the list of keys to delete comes with its digest, so a list altered on the way (or
  // replayed with another body, when the payload is unsigned) deletes nothing.
  const digests = Object.keys(call.headers).filter((name) => /^x-amz-(checksum-(crc32|crc32c|crc64nvme|sha1|sha256)|trailer)$/.test(name));
  if (call.headers['content-md5'] === undefined && digests.length === 0)
    throw new MkvError('MKV_BAD_REQUEST', 'Missing required header for this request: Content-Md5 (or an x-amz-checksum-*)');
  const content = parseXml(await readXmlBody(call, deps), 'Delete');
  const quiet = childElements(content, 'Quiet')[0]?.text.trim() === 'true';
  const objects = childElements(content, 'Object').map((object) => ({
    key: requiredText(object, 'Key'),
    versionId: childElements(object, 'VersionId')[0]?.text.trim(),
    // Deleted only if it is still this value (S3's conditional DeleteObjects).
    condition: deleteCondition(
      childElements(object, 'ETag')[0]?.text.trim() ?? '',
      childElements(object, 'Size')[0]?.text.trim() ?? '',
      childElements(object, 'LastModifiedTime')[0]?.text.trim() ?? '',
      "the Object's ",
    ),
  }));
  if (objects.length === 0) throw new MkvError('MKV_BAD_XML', 'the XML document is malformed: no <Object> to delete');
  if (objects.length > MAX_DELETE_OBJECTS) throw new MkvError('MKV_BAD_XML', `at most ${MAX_DELETE_OBJECTS} objects per request`);
  const results: string[] = [];
  const { identity } = call;
  let denied = 0;
  for (const { key: objectKey, versionId, condition } of objects) {
    try {
      const key = checkedKey(`/${call.bucket}/${objectKey}`);
      const deleted = await deleteOne(deps, call, key, versionId, condition);
      const marker = deleted.deleteMarker ? deleted.versionId : undefined;
      const named = [
        element('Key', objectKey),
        ...(versionId ? [element('VersionId', versionId)] : []),
        ...(marker !== undefined ? [element('DeleteMarker', true), element('DeleteMarkerVersionId', marker)] : []),
      ];
      if (!quiet) results.push(element('Deleted', named));
    } catch (error) {
      // A key the caller may not delete is its answer's business, logged once for the request below.
      const refused = error instanceof MkvError && isAuthFailure(error);
      if (refused) denied++;
      const mkv = refused ? error : recordFailure(error, deps, 'POST', call.path, call.message);
      const [code] = S3_ERRORS[mkv.code] ?? ['InternalError'];
      results.push(`<Error>${element('Key', objectKey)}${element('Code', code)}${element('Message', clientMessage(mkv))}</Error>`);
    }
  }
  if (denied > 0) {
    const what = `delete ${denied} of the ${objects.length} keys asked for`;
    recordFailure(
      new MkvError(identity.name === 'anonymous' ? 'MKV_UNAUTHENTICATED' : 'MKV_ACCESS_DENIED', what),
      deps,
      'POST',
      call.path,
      call.message,
    );
  }
  return { status: 200, type: 'application/xml', body: document('DeleteResult', results) };
}

/**
 * GetBucketAcl / GetObjectAcl: the owner has every permission, and no grant is given to anyone
 * else (who may do what is the credentials file's, by key prefix, not an ACL's).
 */
export function aclOf(call: S3Call): Answer {
  const bucketOnly = call.objectKey === '';
  authorize(call.identity, bucketOnly ? 'list' : 'read', bucketOnly ? `/${call.bucket}/` : call.key);
  const owner = person();
  return xmlAnswer('AccessControlPolicy', [
    element('Owner', owner),
    element('AccessControlList', [
      `<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">${owner.join('')}</Grantee>${element('Permission', 'FULL_CONTROL')}</Grant>`,
    ]),
  ]);
}
