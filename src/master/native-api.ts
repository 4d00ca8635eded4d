// The minikeyvalue API, request by request: each handler turns a request into a call of one
// operation on a key (src/keys/) and its result into an Answer. They never touch a response:
// node:http (handler.ts, the hot verbs) and Koa (app.ts, everything) write the same Answer.
//
//   GET/HEAD /key       locateKey    302 to a replica, 404
//   PUT /key            storeValue   201
//   DELETE /key         deleteKey    204
//   UNLINK, LINK /key   setLinked    204
//   GET ?list ?unlinked ?history, POST ?rebalance
import type { IncomingMessage } from 'node:http';
import { pipeline, type Transform } from 'node:stream';
import { MkvError } from '../errors.js';
import { eventToJson } from '../events/event.js';
import type { KeyState } from '../index/evolve.js';
import { checkKeyFits } from '../keys/key-limits.js';
import { locateKey } from '../keys/locate.js';
import { rebalanceKey } from '../keys/rebalance-key.js';
import { deleteKey, setLinked } from '../keys/remove.js';
import { storeValue, type ValueSource } from '../keys/store-value.js';
import type { Checksum } from '../events/event.js';
import { authorize, identityOf } from '../auth/authenticate.js';
import { allows } from '../auth/credentials.js';
import { sha256Check, trailerChecksum, valueChecks } from '../auth/body-check.js';
import type { Answer } from './answer.js';
import { apiCause, type MasterDeps } from './deps.js';
import { decodeKey } from './request-key.js';
import { AwsChunkedDecoder } from './s3/aws-chunked.js';

/** A request of the native API, as both paths see it. */
export interface ApiRequest {
  method: string;
  /** The path as sent, percent-encoded (the fallback's URL keeps it). */
  rawPath: string;
  /** The query string, without "?". */
  query: string;
  message: IncomingMessage;
  /** The client's address, for the events' cause. */
  client: string | null;
}

/** The answer of a write: `Log-Seq: N`, so a client can read it from any master with Min-Log-Seq: N. */
function written(status: number, seq: number, headers: Record<string, string> = {}): Answer {
  return { status, headers: { ...headers, 'Log-Seq': String(seq) }, body: '' };
}

function unknownOperation(request: ApiRequest): MkvError {
  return new MkvError('MKV_UNKNOWN_OPERATION', `unknown operation ${request.method} ?${request.query}`);
}

/** The native API; `undefined` for a method it does not have (the router answers 405/501). */
export function answerNative(deps: MasterDeps, request: ApiRequest): Promise<Answer> | undefined {
  const { method, query } = request;
  switch (method) {
    case 'GET':
    case 'HEAD':
      return query === '' ? answerRead(deps, request) : answerQuery(deps, request);
    case 'PUT':
      return answerPut(deps, request);
    case 'DELETE':
      return answerDelete(deps, request);
    case 'UNLINK':
    case 'LINK':
      return answerLink(deps, request, method === 'LINK');
    case 'POST':
      if (new URLSearchParams(query).has('rebalance')) return answerRebalance(deps, request);
      return Promise.reject(unknownOperation(request));
    default:
      return undefined;
  }
}

/** The key a request names: one key, so it must fit the index and a volume's file names. */
export function singleKey(rawPath: string): string {
  const key = decodeKey(rawPath);
  checkKeyFits(key);
  return key;
}

/** GET/HEAD /key: 302 to a replica that a HEAD found holding the blob (or to --fallback); 404. */
async function answerRead(deps: MasterDeps, request: ApiRequest): Promise<Answer> {
  const key = singleKey(request.rawPath);
  authorize(identityOf(request.message), 'read', key);
  const { record, url, balanced } = await locateKey(deps, key);
  const headers: Record<string, string> = {};
  if (record?.md5) headers['Content-Md5'] = record.md5;
  const live = record?.state === 'live';
  if (live) {
    headers['Key-Balance'] = balanced ? 'balanced' : 'unbalanced';
    headers['Key-Volumes'] = record.volumes.join(',');
  }
  const location = url ?? (!live && deps.config.fallback ? `http://${deps.config.fallback}${request.rawPath}` : undefined);
  if (location === undefined) {
    // The common miss: answered as errorAnswer answers MKV_NOT_FOUND, without building an error.
    headers['Mkv-Error'] = 'MKV_NOT_FOUND';
    return { status: 404, headers };
  }
  headers.Location = location;
  return { status: 302, headers, body: '' };
}

/**
 * Where a PUT's value comes from: the request body, checked as it streams against what the
 * request said of it (the sha256 it was signed with, each chunk's signature, its Content-MD5)
 * and unwrapped from aws-chunked framing if so sent. A body that fails a check errors before its
 * last bytes go on (auth/body-check.ts).
 *
 *   request ─▶ [sha256 of the bytes as sent] ─▶ [aws-chunked decoder, chunk signatures] ─▶ [Content-MD5 of the value] ─▶ value
 */
export function requestBody(message: IncomingMessage, options: { allowEmpty?: boolean; checksumHeaders?: boolean } = {}): ValueSource {
  const { headers } = message;
  const rule = identityOf(message).body;
  // CompleteMultipartUpload's x-amz-checksum-* are of the value it forms, not of its XML body.
  const checks = valueChecks(headers, { checksums: options.checksumHeaders ?? true });
  // The sha256 the body was signed with; else one the request states (an open cluster verifies no
  // signature, but a body that is not what its request says it is is still refused).
  const stated = String(headers['x-amz-content-sha256'] ?? '');
  const sha256 = rule.kind === 'sha256' ? rule.expected : /^[0-9a-f]{64}$/i.test(stated) ? stated.toLowerCase() : undefined;
  const stages: Transform[] = sha256 ? [sha256Check(sha256)] : [];
  // aws-chunked framing: said by a STREAMING-… payload hash (minio-go, which restic uses, sends
  // no Content-Encoding), or by Content-Encoding with the decoded length it needs (an unsigned
  // client's); Content-Encoding alone is the value's own (S3 stores "gzip, aws-chunked" as gzip).
  const framed =
    /^STREAMING-/.test(String(headers['x-amz-content-sha256'] ?? '')) ||
    (/\baws-chunked\b/i.test(headers['content-encoding'] ?? '') && headers['x-amz-decoded-content-length'] !== undefined);
  let length: number | undefined;
  let decoder: AwsChunkedDecoder | undefined;
  if (framed || rule.kind === 'chunks') {
    const decoded = headers['x-amz-decoded-content-length'] as string | undefined;
    if (decoded !== undefined && !/^\d{1,15}$/.test(decoded))
      throw new MkvError('MKV_BAD_REQUEST', 'X-Amz-Decoded-Content-Length must be a byte count');
    length = decoded === undefined ? undefined : Number(decoded);
    if (length === 0 && !options.allowEmpty) throw new MkvError('MKV_EMPTY_BODY', 'a PUT needs a body (X-Amz-Decoded-Content-Length is 0)');
    const trailer = trailerChecksum(headers);
    decoder = new AwsChunkedDecoder({
      ...(length !== undefined ? { expected: length } : {}),
      ...(rule.kind === 'chunks' ? { signing: rule.signing, signedTrailer: rule.trailer } : {}),
      ...(trailer ? { trailerChecksum: trailer } : {}),
    });
    stages.push(decoder);
  } else {
    if (headers['x-amz-trailer'] !== undefined)
      throw new MkvError('MKV_BAD_REQUEST', 'x-amz-trailer needs an aws-chunked body to carry the trailer');
    const chunked = /\bchunked\b/i.test(headers['transfer-encoding'] ?? '');
    // Node's parser has already refused a malformed Content-Length.
    length = headers['content-length'] === undefined ? (chunked ? undefined : 0) : Number(headers['content-length']);
    if (length === 0 && !options.allowEmpty) throw new MkvError('MKV_EMPTY_BODY', 'a PUT needs a body (Content-Length is 0 or missing)');
  }
  stages.push(...checks);
  // The checksum the value came with (x-amz-checksum-*, as a header or a trailer): known, and
  // checked, once the body has ended well.
  const checksum = (): Checksum | null => {
    const stated = checks.find((check) => check.algorithm !== 'md5');
    const carried = stated ? { algorithm: stated.algorithm, value: stated.expectedBase64 } : decoder?.trailerChecksum();
    return carried ? { ...carried, type: 'FULL_OBJECT' } : null;
  };
  if (stages.length === 0) return { body: message, length, checksum };
  pipeline([message, ...stages], () => undefined); // errors surface on the last stage
  return { body: stages.at(-1)!, length, checksum };
}

/** PUT /key: 201 once every replica has the value; 403 a live key; 411 an empty body. */
async function answerPut(deps: MasterDeps, request: ApiRequest): Promise<Answer> {
  const key = decodeKey(request.rawPath);
  const identity = identityOf(request.message);
  authorize(identity, 'write', key);
  const stored = await storeValue(deps, key, requestBody(request.message), apiCause(request.client), {
    mayReplace: allows(identity.grant, 'delete', key),
  });
  return written(201, stored.seq, { ETag: `"${stored.md5 ?? ''}"` });
}

/** DELETE /key: 204 once gone from the index and every replica. */
async function answerDelete(deps: MasterDeps, request: ApiRequest): Promise<Answer> {
  const key = singleKey(request.rawPath);
  authorize(identityOf(request.message), 'delete', key);
  const seq = await deleteKey(deps, key, apiCause(request.client));
  return { ...written(204, seq), body: undefined };
}

/** UNLINK /key (a virtual delete) and LINK /key (its undo): 204, or 404. */
async function answerLink(deps: MasterDeps, request: ApiRequest, linked: boolean): Promise<Answer> {
  const key = singleKey(request.rawPath);
  authorize(identityOf(request.message), linked ? 'write' : 'delete', key);
  const seq = await setLinked(deps, key, linked, apiCause(request.client));
  return { ...written(204, seq), body: undefined };
}

/** POST /key?rebalance: 204 once the key is where placement puts it now; 404; 400 it could not. */
async function answerRebalance(deps: MasterDeps, request: ApiRequest): Promise<Answer> {
  const key = singleKey(request.rawPath);
  authorize(identityOf(request.message), 'admin', key);
  const seq = await rebalanceKey(deps, key, apiCause(request.client));
  // A key already in place appended nothing: what this master has applied covers it.
  return { ...written(204, seq ?? deps.index.checkpoint), body: undefined };
}

/** GET ?list, ?unlinked, ?history; any other query is 403, as in the original. */
async function answerQuery(deps: MasterDeps, request: ApiRequest): Promise<Answer> {
  const query = new URLSearchParams(request.query);
  const identity = identityOf(request.message);
  if (query.has('list') || query.has('unlinked')) {
    const prefix = decodeKey(request.rawPath);
    authorize(identity, 'list', prefix);
    // Unlinked keys, and the writes and DELETEs that never completed, as the original listed them.
    return answerList(deps, prefix, query.has('list') ? ['live'] : ['unlinked', 'pending', 'deleting'], query);
  }
  if (query.has('history')) {
    const key = singleKey(request.rawPath);
    authorize(identity, 'admin', key);
    return answerHistory(deps, key);
  }
  throw unknownOperation(request);
}

function parseLimit(value: string | null): number | undefined {
  if (value === null || value === '') return undefined;
  if (!/^[1-9][0-9]{0,15}$/.test(value))
    throw new MkvError('MKV_BAD_QUERY', `limit must be a positive integer, not ${JSON.stringify(value)}`);
  return Number(value);
}

/** GET /prefix?list: {"next":"","keys":[...]}, sorted bytewise; &limit=N pages, &start=K resumes. */
function answerList(deps: MasterDeps, prefix: string, states: readonly KeyState[], query: URLSearchParams): Answer {
  const limit = parseLimit(query.get('limit'));
  const start = query.get('start') || undefined;
  const page = deps.index.list({ prefix, states, ...(start !== undefined ? { start } : {}), ...(limit !== undefined ? { limit } : {}) });
  return { status: 200, type: 'application/json; charset=utf-8', body: JSON.stringify({ next: page.next, keys: page.keys }) };
}

/** GET /key?history: every event of the key, oldest first. */
function answerHistory(deps: MasterDeps, key: string): Answer {
  const events = deps.index.historyOf(key);
  if (events.length === 0) throw new MkvError('MKV_NOT_FOUND', 'no such key');
  return { status: 200, type: 'application/json; charset=utf-8', body: JSON.stringify(events.map(eventToJson)) };
}
