// Who sent a request, and whether they may do what it asks (mkv server --credentials FILE).
//
//   request ─▶ Authorization: AWS4-HMAC-SHA256 …  ─▶ SigV4 (sigv4.ts)          ─┐
//              Authorization: Basic …             ─▶ access key : secret key   ─┼─▶ an identity ─▶ allows(right, key)?
//              Authorization: AWS KEY:SIG         ─▶ Signature Version 2       ─┤
//              X-Amz-Signature=… in the query     ─▶ a presigned URL (V4, V2)  ─┤     (credentials.ts)
//              none                               ─▶ anonymous                 ─┘
//
// Authentication happens once per request, before it is routed, and an identity exists only
// once its signature (or password) has been checked; a request signed over its body's sha256
// is checked again as the body streams (the BodyRule). Then admit() refuses at once a request
// its identity could not be allowed whatever it names (anonymous ones above all), before a
// body is read, a lock taken or a Min-Log-Seq waited for; each handler then asks for the right
// it needs on the key it touches (authorize). Without --credentials every request may do
// everything, as in the original.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { MkvError } from '../errors.js';
import { allows, RIGHTS, type Credentials, type Grant, type Right } from './credentials.js';
import {
  ALGORITHM,
  verifyHeaderSignature,
  verifyPresigned,
  verifyV2Header,
  verifyV2Presigned,
  type BodyRule,
  type SignedRequest,
} from './sigv4.js';

export interface Identity {
  /** The access key, or "anonymous". */
  name: string;
  grant: Grant | undefined;
  /** How the request's body must be checked against what was signed. */
  body: BodyRule;
  /** Headers the request carries signed in a presigned URL's query: they count as its headers (handler.ts). */
  hoisted?: Record<string, string>;
}

/** Everything allowed: a server without --credentials. */
export const EVERYONE: Identity = {
  name: 'anyone',
  grant: { rights: new Set(RIGHTS), prefixes: [] },
  body: { kind: 'none' },
};

/** Compares digests of equal length in constant time: the time says nothing of the secret, its length included. */
function sameSecret(given: string, secret: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(secret));
}

/** What a password given for an access key that does not exist is compared with, so that it takes as long as any other. */
const NO_SUCH_SECRET = 'not the secret of any access key';

function basic(credentials: Credentials, encoded: string): Identity {
  const decoded = Buffer.from(encoded.trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const key = colon === -1 ? undefined : credentials.keys.get(decoded.slice(0, colon));
  const matches = sameSecret(colon === -1 ? '' : decoded.slice(colon + 1), key?.secret ?? NO_SUCH_SECRET);
  // One answer for a wrong name and a wrong secret: the refusal does not confirm that a name exists.
  if (!key || !matches) throw new MkvError('MKV_UNAUTHENTICATED', 'wrong access key or secret key');
  return { name: key.accessKey, grant: key, body: { kind: 'none' } };
}

/** Who sent the request: a verified access key, or anonymous; throws when the credentials sent are wrong. */
export function authenticate(credentials: Credentials, request: SignedRequest, now = Date.now()): Identity {
  const authorization = request.headers.authorization ?? '';
  if (authorization.startsWith(`${ALGORITHM} `)) {
    const { key, body } = verifyHeaderSignature(credentials, request, authorization, now);
    return { name: key.accessKey, grant: key, body };
  }
  if (/^basic /i.test(authorization)) return basic(credentials, authorization.slice(6));
  if (authorization.startsWith('AWS ')) {
    const key = verifyV2Header(credentials, request, authorization, now);
    return { name: key.accessKey, grant: key, body: { kind: 'none' } };
  }
  if (authorization !== '') throw new MkvError('MKV_UNAUTHENTICATED', 'the Authorization header is neither Basic nor AWS4-HMAC-SHA256');
  if (/(?:^|&)X-Amz-(?:Signature|Credential)=/.test(request.query)) {
    const { key, body, hoisted } = verifyPresigned(credentials, request, new URLSearchParams(request.query), now);
    return { name: key.accessKey, grant: key, body, ...(hoisted ? { hoisted } : {}) };
  }
  if (/(?:^|&)AWSAccessKeyId=/.test(request.query)) {
    const key = verifyV2Presigned(credentials, request, new URLSearchParams(request.query), now);
    return { name: key.accessKey, grant: key, body: { kind: 'none' } };
  }
  return { name: 'anonymous', grant: credentials.anonymous, body: { kind: 'none' } };
}

/** Throws unless `identity` may use `right` on `key` (a listing: on its prefix). */
export function authorize(identity: Identity, right: Right, key: string): void {
  if (allows(identity.grant, right, key)) return;
  throw refusal(identity, `${right} ${key}`);
}

function refusal(identity: Identity, what: string): MkvError {
  if (identity.name === 'anonymous') return new MkvError('MKV_UNAUTHENTICATED', `${what} needs credentials`);
  return new MkvError('MKV_ACCESS_DENIED', `${identity.name} may not ${what}`);
}

/** What a request needs, as its handler will ask: one of `rights`, on `key` (a listing: on every key under it). */
interface Need {
  rights: readonly Right[];
  key: string;
  /** Any key a grant reaches will do (ListBuckets, a DeleteObjects of keys in a bucket, a method the API has not). */
  anywhere?: boolean;
}

/** The right a request needs, from its method, its path (a key, or an S3 bucket) and the operation its query names. */
/** Whether an S3 versionId names a version (not "null", the value now, nor absent). */
export function isVersionId(versionId: string | null): boolean {
  return versionId !== null && versionId !== 'null';
}

function needOf(method: string, path: string, query: URLSearchParams, s3: boolean): Need {
  const slash = path.indexOf('/', 1);
  const bucketLevel = s3 && (slash === -1 || slash === path.length - 1);
  const bucket = `/${path.slice(1, slash === -1 ? undefined : slash)}/`;
  switch (method) {
    case 'GET':
    case 'HEAD':
      if (query.has('history')) return { rights: ['admin'], key: path };
      if (!s3 && (query.has('list') || query.has('unlinked'))) return { rights: ['list'], key: path };
      if (bucketLevel) {
        // ListBuckets lists what a key may; a bucket's listings and descriptions need the list right on it (or its prefix).
        if (path === '/') return { rights: ['list'], key: path, anywhere: true };
        return { rights: ['list'], key: bucket + (query.get('prefix') ?? '') };
      }
      return { rights: ['read'], key: path };
    case 'PUT':
      return { rights: ['write'], key: bucketLevel ? bucket : path };
    case 'POST':
      // DeleteObjects: of keys (delete) or of versions (purge), each checked as its object says.
      if (query.has('delete')) return { rights: ['delete', 'purge'], key: bucket, anywhere: true };
      if (query.has('rebalance')) return { rights: ['admin'], key: path };
      return { rights: ['write'], key: path };
    case 'DELETE':
      // Aborting an upload destroys parts others may have sent: as any destruction, it needs delete.
      if (query.has('uploadId')) return { rights: ['delete'], key: path };
      // DeleteObjectTagging removes no value (no key has tags here: master/s3/tagging.ts).
      if (s3 && query.has('tagging')) return { rights: ['write'], key: bucketLevel ? bucket : path };
      // A version removed for good (--retain's, by its id): purge, not delete, which only leaves a marker.
      if (s3 && isVersionId(query.get('versionId'))) return { rights: ['purge'], key: path };
      return { rights: ['delete'], key: bucketLevel ? bucket : path };
    case 'UNLINK':
      return { rights: ['delete'], key: path };
    case 'LINK':
      return { rights: ['write'], key: path };
    default:
      return { rights: RIGHTS, key: path, anywhere: true };
  }
}

/**
 * Refuses at once a request that `identity` is not allowed, before anything is done for it (its
 * body read, Min-Log-Seq waited for, a lock taken): the right its operation needs on the key it
 * names (`path`, decoded), as its handler will ask again (authorize). What costs a caller without
 * that right a 401 or 403 and nothing else. A request for keys in a bucket (DeleteObjects, whose
 * keys are in its body) only needs the right on some key of the bucket here; each key is checked.
 */
export function admit(identity: Identity, method: string, path: string, query: URLSearchParams, s3: boolean): void {
  const need = needOf(method, path, query, s3);
  const { grant } = identity;
  const reaches =
    grant !== undefined &&
    need.rights.some((right) => grant.rights.has(right)) &&
    (grant.prefixes.length === 0 ||
      grant.prefixes.some((prefix) => need.key.startsWith(prefix) || (need.anywhere === true && prefix.startsWith(need.key))));
  if (!reaches) throw refusal(identity, `${need.rights.join(' or ')} ${need.key}`);
}

const identities = new WeakMap<IncomingMessage, Identity>();

/** The identity authenticate() found for a request (everyone, on a server without --credentials). */
export function identityOf(message: IncomingMessage): Identity {
  return identities.get(message) ?? EVERYONE;
}

export function rememberIdentity(message: IncomingMessage, identity: Identity): void {
  identities.set(message, identity);
}

/**
 * The access key a request names, for logs: from Basic, a SigV4 header or a presigned URL, and
 * only when it is one of `credentials`' (else "unknown"): a client that swapped its access key and
 * its secret sent the secret where the name goes. Never a secret.
 */
export function accessKeyOf(message: IncomingMessage, credentials: Credentials | undefined): string | undefined {
  const authorization = message.headers.authorization ?? '';
  let claimed: string | undefined;
  if (/^basic /i.test(authorization)) claimed = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8').split(':')[0];
  else {
    const credential =
      /Credential=([^/,\s]+)/.exec(authorization) ??
      /^AWS ([^:\s]+):/.exec(authorization) ??
      /[?&](?:X-Amz-Credential|AWSAccessKeyId)=([^%/&]+)/.exec(message.url ?? '');
    claimed = credential?.[1];
  }
  if (claimed === undefined) return undefined;
  return credentials?.keys.has(claimed) ? claimed : 'unknown';
}
