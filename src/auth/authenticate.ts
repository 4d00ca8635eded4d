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
  grant: { rights: new Set(['read', 'write', 'delete', 'list', 'admin']), prefixes: [] },
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
  throw refusal(identity, `${right} of ${key}`);
}

function refusal(identity: Identity, what: string): MkvError {
  if (identity.name === 'anonymous') return new MkvError('MKV_UNAUTHENTICATED', `${what} needs credentials`);
  return new MkvError('MKV_ACCESS_DENIED', `${identity.name} may not ${what}`);
}

/**
 * The rights a request of each method may need, whatever its query names: GET lists, reads or
 * shows a history; POST completes an upload, deletes objects or rebalances; DELETE of an upload
 * is a write. The handler then asks for the one it needs.
 */
const METHOD_RIGHTS: Readonly<Record<string, readonly Right[]>> = {
  GET: ['read', 'list', 'admin'],
  HEAD: ['read', 'list', 'admin'],
  PUT: ['write'],
  POST: ['write', 'delete', 'admin'],
  DELETE: ['delete', 'write'],
  UNLINK: ['delete'],
  LINK: ['write'],
};

/**
 * Refuses at once a request that `identity` could not be allowed, whatever its query: it holds
 * none of the rights its method may need on any key at or under `path` (the decoded request
 * path; a grant under it counts, for a listing or a bucket). What passes is checked exactly by
 * the handler (authorize); what does not costs a 401 or 403 and nothing else.
 */
export function admit(identity: Identity, method: string, path: string): void {
  const { grant } = identity;
  const rights = METHOD_RIGHTS[method] ?? RIGHTS;
  const reaches =
    grant !== undefined &&
    rights.some((right) => grant.rights.has(right)) &&
    (grant.prefixes.length === 0 || grant.prefixes.some((prefix) => path.startsWith(prefix) || prefix.startsWith(path)));
  if (!reaches) throw refusal(identity, `${method} ${path}`);
}

const identities = new WeakMap<IncomingMessage, Identity>();

/** The identity authenticate() found for a request (everyone, on a server without --credentials). */
export function identityOf(message: IncomingMessage): Identity {
  return identities.get(message) ?? EVERYONE;
}

export function rememberIdentity(message: IncomingMessage, identity: Identity): void {
  identities.set(message, identity);
}

/** The access key a request names, for logs: from Basic, a SigV4 header or a presigned URL; never its secret. */
export function accessKeyOf(message: IncomingMessage): string | undefined {
  const authorization = message.headers.authorization ?? '';
  if (/^basic /i.test(authorization)) return Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8').split(':')[0];
  const credential = /Credential=([^/,\s]+)/.exec(authorization) ?? /[?&]X-Amz-Credential=([^%/&]+)/.exec(message.url ?? '');
  return credential?.[1];
}
