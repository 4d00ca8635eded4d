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
import { MkvError } from '../errors.js';
import { eventToJson } from '../events/event.js';
import type { KeyState } from '../index/evolve.js';
import { checkedKey, type Key } from '../keys/key-limits.js';
import { locateKey } from '../keys/locate.js';
import { rebalanceKey } from '../keys/rebalance-key.js';
import { deleteKey, setLinked } from '../keys/remove.js';
import { storeValue } from '../keys/store-value.js';
import { locateVersion, versionAt, versionsOf } from '../keys/versions.js';
import { requestBody } from './request-body.js';
import { authorize, identityOf } from '../auth/authenticate.js';
import { allows } from '../auth/credentials.js';
import type { Answer } from './answer.js';
import { apiCause, type MasterDeps } from './deps.js';
import { decodeKey } from './request-key.js';

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
  // A write takes no query: one it does not know is an operation it does not do (a DELETE of
  // /k?tagging must not delete k), refused, never dropped.
  if (query !== '' && (method === 'PUT' || method === 'DELETE' || method === 'UNLINK' || method === 'LINK'))
    return Promise.reject(
      new MkvError('MKV_BAD_QUERY', `${method} takes no query (?${query.slice(0, 64)}): the key is the path, percent-encoded`),
    );
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
export function singleKey(rawPath: string): Key {
  return checkedKey(decodeKey(rawPath));
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

/** PUT /key: 201 once every replica has the value; 403 a live key; 411 an empty body. */
async function answerPut(deps: MasterDeps, request: ApiRequest): Promise<Answer> {
  const key = singleKey(request.rawPath);
  const identity = identityOf(request.message);
  authorize(identity, 'write', key);
  const stored = await storeValue(deps, key, requestBody(request.message), apiCause(request.client, identityOf(request.message)), {
    mayReplace: allows(identity.grant, 'delete', key),
  });
  return written(201, stored.seq, { ETag: `"${stored.md5 ?? ''}"` });
}

/** DELETE /key: 204 once gone from the index and every replica. */
async function answerDelete(deps: MasterDeps, request: ApiRequest): Promise<Answer> {
  const key = singleKey(request.rawPath);
  authorize(identityOf(request.message), 'delete', key);
  const { seq } = await deleteKey(deps, key, apiCause(request.client, identityOf(request.message)));
  return { ...written(204, seq), body: undefined };
}

/** UNLINK /key (a virtual delete) and LINK /key (its undo): 204, or 404. */
async function answerLink(deps: MasterDeps, request: ApiRequest, linked: boolean): Promise<Answer> {
  const key = singleKey(request.rawPath);
  authorize(identityOf(request.message), linked ? 'write' : 'delete', key);
  const seq = await setLinked(deps, key, linked, apiCause(request.client, identityOf(request.message)));
  return { ...written(204, seq), body: undefined };
}

/** POST /key?rebalance: 204 once the key is where placement puts it now; 404; 400 it could not. */
async function answerRebalance(deps: MasterDeps, request: ApiRequest): Promise<Answer> {
  const key = singleKey(request.rawPath);
  authorize(identityOf(request.message), 'admin', key);
  const seq = await rebalanceKey(deps, key, apiCause(request.client, identityOf(request.message)));
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
  if (query.has('version') || query.has('at')) {
    const key = singleKey(request.rawPath);
    authorize(identity, 'read', key);
    return answerVersion(deps, key, query);
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

/** ?history: every event of the key; each that made a value says whether its bytes are held still (`held`). */
function answerHistory(deps: MasterDeps, key: string): Answer {
  const events = deps.index.historyOf(key);
  if (events.length === 0) throw new MkvError('MKV_NOT_FOUND', 'no such key');
  const held = new Map(versionsOf(events).versions.map((version) => [version.seq, version.held]));
  const shown = events.map((event) => {
    const json = eventToJson(event);
    const version = held.get(event.seq);
    return version === undefined ? json : { ...json, held: version };
  });
  return { status: 200, type: 'application/json; charset=utf-8', body: JSON.stringify(shown) };
}

/** A time as ?at gives it: RFC 3339, or milliseconds since the epoch. */
function timeOfQuery(text: string): number {
  const time = /^\d{1,15}$/.test(text) ? Number(text) : /^\d{4}-\d\d-\d\dT/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(time))
    throw new MkvError(
      'MKV_BAD_QUERY',
      `at must be a time, RFC 3339 (2026-12-06T09:00:00Z) or milliseconds, not ${JSON.stringify(text.slice(0, 64))}`,
    );
  return time;
}

/**
 * GET/HEAD /key?version=SEQ and /key?at=TIME: 302 to the bytes of that version of the key (the
 * value that SEQ made it, or the one it served at TIME), as GET redirects to the live value;
 * 404 when there was none; 410 when its bytes were removed since.
 */
async function answerVersion(deps: MasterDeps, key: Key, query: URLSearchParams): Promise<Answer> {
  const seqText = query.get('version');
  const atText = query.get('at');
  if (seqText !== null && atText !== null) throw new MkvError('MKV_BAD_QUERY', 'give version or at, not both');
  if (query.getAll('version').length > 1 || query.getAll('at').length > 1)
    throw new MkvError('MKV_BAD_QUERY', 'give one version or one at, not several');
  const found = versionsOf(deps.index.historyOf(key));
  let version;
  let what;
  if (seqText !== null) {
    if (!/^[1-9][0-9]{0,15}$/.test(seqText))
      throw new MkvError('MKV_BAD_QUERY', `version must be a seq (a positive integer), not ${JSON.stringify(seqText.slice(0, 64))}`);
    version = found.versions.find((candidate) => candidate.seq === Number(seqText));
    what = `version ${seqText}`;
    if (!version) throw new MkvError('MKV_NOT_FOUND', `${what}: no event of this key made a value at that seq`);
  } else {
    const time = timeOfQuery(atText!);
    version = versionAt(found, time);
    what = `at ${new Date(time).toISOString()}`;
  }
  const located = await locateVersion(deps, key, version, what);
  const headers: Record<string, string> = { Location: located.url, 'Key-Version': String(located.version.seq) };
  if (located.version.md5) headers['Content-Md5'] = located.version.md5;
  return { status: 302, headers, body: '' };
}
