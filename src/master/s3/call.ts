// An S3 request as its handlers see it, read once at the edge (router.ts): the key its path
// names (decoded, and checked to fit), its query, who sent it and what
// its events are caused by. Handlers take one and return an Answer; none touches Koa's context.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import { identityOf, type Identity } from '../../auth/authenticate.js';
import type { Cause } from '../../events/event.js';
import { checkedKey, type Key } from '../../keys/key-limits.js';
import { MkvError } from '../../errors.js';
import { apiCause } from '../deps.js';
import { decodeKey } from '../request-key.js';

export interface S3Call {
  method: string;
  /** The path as sent, percent-encoded: an error's Resource, a completion's Location. */
  path: string;
  host: string;
  /** The mkv key the path names, checked to fit: "/b/k" for object k of bucket b, "/b" for the bucket, "/" for the service. */
  key: Key;
  bucket: string;
  /** "" for the bucket itself (and the service). */
  objectKey: string;
  query: URLSearchParams;
  /** The query string as sent, without "?". */
  querystring: string;
  headers: IncomingHttpHeaders;
  /** The request: its body, its socket. */
  message: IncomingMessage;
  identity: Identity;
  /** What the events this request appends name as their cause. */
  cause: Cause;
}

/** "/bucket/a/b" → { bucket: "bucket", objectKey: "a/b" }; objectKey is "" for the bucket itself. */
export function splitBucket(key: string): { bucket: string; objectKey: string } {
  const slash = key.indexOf('/', 1);
  return slash === -1 ? { bucket: key.slice(1), objectKey: '' } : { bucket: key.slice(1, slash), objectKey: key.slice(slash + 1) };
}

/** The S3 call a Koa request is; its key checked, once, to fit the index and a volume's file names. */
export function s3CallOf(ctx: Context): S3Call {
  const key = keyOf(ctx.method, ctx.path);
  const { bucket, objectKey } = key === '/' ? { bucket: '', objectKey: '' } : splitBucket(key);
  const identity = identityOf(ctx.req);
  return {
    method: ctx.method,
    path: ctx.path,
    host: ctx.host,
    key,
    bucket,
    objectKey,
    query: new URLSearchParams(ctx.querystring),
    querystring: ctx.querystring,
    headers: ctx.req.headers,
    message: ctx.req,
    identity,
    cause: apiCause(ctx.state.client as string | null, identity),
  };
}

/**
 * The key a path names. A path that names only a bucket, but no key could be (too long, "."),
 * names no bucket there can be: creating it is InvalidBucketName, anything else NoSuchBucket.
 */
function keyOf(method: string, path: string): Key {
  try {
    return checkedKey(decodeKey(path));
  } catch (error) {
    if (!/^\/[^/]+\/?$/.test(path)) throw error;
    if (method === 'PUT') throw new MkvError('MKV_INVALID_BUCKET_NAME', 'The specified bucket is not valid: it cannot be a key');
    throw new MkvError('MKV_NO_SUCH_BUCKET', 'The specified bucket does not exist');
  }
}

/** A header's value, '' when the request has none (several: joined with ", "). */
export function headerOf(call: Pick<S3Call, 'headers'>, name: string): string {
  const value = call.headers[name.toLowerCase()];
  return value === undefined ? '' : Array.isArray(value) ? value.join(', ') : value;
}

/** Whether the client has gone (its connection closed): a write waiting for its key is then not made. */
export function clientGoneOf(call: S3Call): () => boolean {
  return () => call.message.socket.destroyed;
}
