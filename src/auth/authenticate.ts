// Who sent a request, and whether they may do what it asks (mkv server --credentials FILE).
//
//   request ─▶ Authorization: AWS4-HMAC-SHA256 …  ─▶ SigV4 (sigv4.ts)          ─┐
//              Authorization: Basic …             ─▶ access key : secret key   ─┼─▶ an identity ─▶ allows(right, key)?
//              Authorization: AWS KEY:SIG         ─▶ Signature Version 2       ─┤
//              X-Amz-Signature=… in the query     ─▶ a presigned URL (V4, V2)  ─┤     (credentials.ts)
//              none                               ─▶ anonymous                 ─┘
//
// Authentication happens once per request, before it is routed; each handler then asks for the
// right it needs on the key it touches (authorize). Without --credentials every request may do
// everything, as in the original.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { MkvError } from '../errors.js';
import { allows, type Credentials, type Grant, type Right } from './credentials.js';
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

function basic(credentials: Credentials, encoded: string): Identity {
  const decoded = Buffer.from(encoded.trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const accessKey = colon === -1 ? decoded : decoded.slice(0, colon);
  const key = credentials.keys.get(accessKey);
  if (!key || colon === -1 || !sameSecret(decoded.slice(colon + 1), key.secret)) {
    throw new MkvError('MKV_UNAUTHENTICATED', `wrong access key or secret key${key ? ` for ${accessKey}` : ''}`);
  }
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
    const { key, body } = verifyPresigned(credentials, request, new URLSearchParams(request.query), now);
    return { name: key.accessKey, grant: key, body };
  }
  if (/(?:^|&)AWSAccessKeyId=/.test(request.query)) {
    const key = verifyV2Presigned(credentials, request, new URLSearchParams(request.query), now);
    return { name: key.accessKey, grant: key, body: { kind: 'none' } };
  }
  return { name: 'anonymous', grant: credentials.anonymous, body: { kind: 'none' } };
}

/**
 * Throws unless `identity` may use `right` on `key` (a listing: on its prefix). An identity
 * whose signature is proved only by the body (no X-Amz-Content-SHA256) is good only for a
 * handler that checks the body before it acts (`checksBody`).
 */
export function authorize(identity: Identity, right: Right, key: string, options: { checksBody?: boolean } = {}): void {
  if (identity.body.kind === 'signed-sha256' && !options.checksBody) {
    throw new MkvError('MKV_SIGNATURE', 'this request signed its body, which this operation does not read: send X-Amz-Content-SHA256');
  }
  if (allows(identity.grant, right, key)) return;
  if (identity.name === 'anonymous') throw new MkvError('MKV_UNAUTHENTICATED', `${right} of ${key} needs credentials`);
  throw new MkvError('MKV_ACCESS_DENIED', `${identity.name} may not ${right} ${key}`);
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
