// AWS Signature Version 4, as S3 checks it: in the Authorization header, or in a presigned
// URL's X-Amz-* query. What is signed:
//
//   canonical request = METHOD \n URI \n QUERY \n name:value\n... \n signed;headers \n payload hash
//   string to sign    = AWS4-HMAC-SHA256 \n X-Amz-Date \n date/region/service/aws4_request \n sha256(canonical request)
//   signature         = hex HMAC(signing key, string to sign), the key derived from the secret, date, region, service
//
// The payload hash is X-Amz-Content-SHA256: a hex sha256 (checked against the body as it
// arrives), UNSIGNED-PAYLOAD, or STREAMING-…: aws-chunked framing whose every chunk is signed
// in turn (checked by the decoder, s3/aws-chunked.ts, through ChunkSigning). A request without
// it (curl --aws-sigv4 for a PUT, say) signed the body's sha256 itself.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { MkvError } from '../errors.js';
import type { AccessKey, Credentials } from './credentials.js';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** How far a request's X-Amz-Date may be from this server's clock (S3's 15 minutes). */
const MAX_SKEW_MS = 15 * 60 * 1000;
/** The longest a presigned URL may be valid (S3's 7 days). */
const MAX_EXPIRES_S = 7 * 24 * 3600;

/** What a request is, for its signature: as it arrived, before any decoding. */
export interface SignedRequest {
  method: string;
  /** The path as sent (percent-encoded). */
  rawPath: string;
  /** The query string as sent, without "?". */
  query: string;
  headers: IncomingHttpHeaders;
}

/** Whether a request comes with a body (a Content-Length above 0, or chunked). */
export function hasBody(headers: IncomingHttpHeaders): boolean {
  return (headers['content-length'] !== undefined && headers['content-length'] !== '0') || headers['transfer-encoding'] !== undefined;
}

/** What a good signature proved, and what remains to check in the body. */
export interface Verified {
  key: AccessKey;
  /** How the body must be checked: its sha256, its chunks' signatures, or not at all. */
  body: BodyRule;
}

export type BodyRule =
  | { kind: 'none' }
  | { kind: 'sha256'; expected: string }
  /** No payload hash was sent: the signature holds over the body's sha256, checked once it is all here. */
  | { kind: 'signed-sha256'; check: (sha256: string) => boolean }
  | { kind: 'chunks'; signing: ChunkSigning; trailer: boolean };

/** What the chunks of an aws-chunked body are signed with. */
export interface ChunkSigning {
  signingKey: Buffer;
  amzDate: string;
  scope: string;
  /** The signature of the request, which the first chunk's signature chains from. */
  seed: string;
}

function refused(code: 'MKV_SIGNATURE' | 'MKV_ACCESS_DENIED' | 'MKV_TIME_SKEWED', message: string): MkvError {
  return new MkvError(code, message);
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

/** Equal signatures, compared in constant time (hex of the same length, or not equal). */
export function sameSignature(a: string, b: string): boolean {
  const left = Buffer.from(a, 'latin1');
  const right = Buffer.from(b, 'latin1');
  return left.length === right.length && timingSafeEqual(left, right);
}

const signingKeys = new Map<string, Buffer>();

/** The key that signs for `secret` on `date` (YYYYMMDD) in region and service; a few are remembered. */
export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const id = `${secret}\n${date}\n${region}\n${service}`;
  let key = signingKeys.get(id);
  if (!key) {
    key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
    if (signingKeys.size > 1000) signingKeys.clear();
    signingKeys.set(id, key);
  }
  return key;
}

/** URI encoding as SigV4 wants it: every byte but A-Z a-z 0-9 - _ . ~ as %XX, upper-case. */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw refused('MKV_SIGNATURE', 'the request path or query is not valid percent-encoded UTF-8');
  }
}

/** The canonical URI: each segment of the path as sent, decoded and encoded again the SigV4 way (S3 encodes once). */
export function canonicalUri(rawPath: string): string {
  return rawPath
    .split('/')
    .map((segment) => uriEncode(decodeComponent(segment)))
    .join('/');
}

/** The canonical query: every parameter but `leaveOut`, encoded, sorted by name then value. */
export function canonicalQuery(query: string, leaveOut?: string): string {
  if (query === '') return '';
  const pairs: Array<[string, string]> = [];
  for (const part of query.split('&')) {
    if (part === '') continue;
    const equals = part.indexOf('=');
    const name = decodeComponent((equals === -1 ? part : part.slice(0, equals)).replace(/\+/g, '%20'));
    if (name === leaveOut) continue;
    const value = equals === -1 ? '' : decodeComponent(part.slice(equals + 1).replace(/\+/g, '%20'));
    pairs.push([uriEncode(name), uriEncode(value)]);
  }
  pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return pairs.map(([name, value]) => `${name}=${value}`).join('&');
}

function headerValue(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  const joined = Array.isArray(value) ? value.join(',') : (value ?? '');
  return joined.trim().replace(/\s+/g, ' ');
}

function canonicalRequest(request: SignedRequest, signedHeaders: string[], payloadHash: string, leaveOut?: string): string {
  const headers = signedHeaders.map((name) => `${name}:${headerValue(request.headers, name)}\n`).join('');
  return [
    request.method,
    canonicalUri(request.rawPath),
    canonicalQuery(request.query, leaveOut),
    headers,
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
}

interface Credential {
  accessKey: string;
  date: string;
  region: string;
  service: string;
  scope: string;
}

function parseCredential(text: string): Credential {
  const parts = text.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || !/^\d{8}$/.test(parts[1]!)) {
    throw refused('MKV_SIGNATURE', 'the credential is not ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request');
  }
  const [accessKey, date, region, service] = parts as [string, string, string, string];
  return { accessKey, date, region, service, scope: `${date}/${region}/${service}/aws4_request` };
}

/** "20261202T101500Z" → milliseconds, or NaN. */
function parseAmzDate(text: string): number {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!match) return Number.NaN;
  const [, y, mo, d, h, mi, s] = match.map(Number);
  return Date.UTC(y!, mo! - 1, d, h, mi, s);
}

function keyOf(credentials: Credentials, credential: Credential): AccessKey {
  const key = credentials.keys.get(credential.accessKey);
  if (!key) throw new MkvError('MKV_UNKNOWN_ACCESS_KEY', `the access key ${credential.accessKey} is not one of this server's`);
  return key;
}

function checkSignature(key: AccessKey, credential: Credential, amzDate: string, canonical: string, signature: string): Buffer {
  const signing = signingKey(key.secret, credential.date, credential.region, credential.service);
  const stringToSign = `${ALGORITHM}\n${amzDate}\n${credential.scope}\n${sha256(canonical)}`;
  if (!sameSignature(createHmac('sha256', signing).update(stringToSign).digest('hex'), signature)) {
    throw refused('MKV_SIGNATURE', 'the signature does not match: check the secret key and how the request was signed');
  }
  return signing;
}

/** Verifies an Authorization: AWS4-HMAC-SHA256 header. */
export function verifyHeaderSignature(credentials: Credentials, request: SignedRequest, authorization: string, now = Date.now()): Verified {
  const fields = new Map<string, string>();
  for (const part of authorization.slice(ALGORITHM.length).split(',')) {
    const equals = part.indexOf('=');
    if (equals !== -1) fields.set(part.slice(0, equals).trim(), part.slice(equals + 1).trim());
  }
  const credentialText = fields.get('Credential');
  const signedText = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!credentialText || !signedText || !signature)
    throw refused('MKV_SIGNATURE', 'the Authorization header lacks Credential, SignedHeaders or Signature');
  const credential = parseCredential(credentialText);
  const key = keyOf(credentials, credential);
  const amzDate = headerValue(request.headers, 'x-amz-date');
  const time = parseAmzDate(amzDate);
  if (Number.isNaN(time)) throw refused('MKV_ACCESS_DENIED', 'a signed request needs an X-Amz-Date header (YYYYMMDDTHHMMSSZ)');
  if (!amzDate.startsWith(credential.date)) throw refused('MKV_SIGNATURE', "the credential's date is not the day of X-Amz-Date");
  if (Math.abs(now - time) > MAX_SKEW_MS)
    throw refused('MKV_TIME_SKEWED', "the difference between the request time and the server's time is too large");
  const signedHeaders = signedText.split(';');
  if (!signedHeaders.includes('host')) throw refused('MKV_SIGNATURE', 'the Host header must be signed');
  const declared = headerValue(request.headers, 'x-amz-content-sha256');
  if (declared === '' && !hasBody(request.headers)) {
    // Signed over the sha256 of no body at all.
    checkSignature(key, credential, amzDate, canonicalRequest(request, signedHeaders, EMPTY_SHA256), signature);
    return { key, body: { kind: 'none' } };
  }
  if (declared === '') {
    // Signed over the body's own sha256: checked once the body is here.
    const check = (bodySha256: string) => {
      try {
        checkSignature(key, credential, amzDate, canonicalRequest(request, signedHeaders, bodySha256), signature);
        return true;
      } catch {
        return false;
      }
    };
    return { key, body: { kind: 'signed-sha256', check } };
  }
  const signing = checkSignature(key, credential, amzDate, canonicalRequest(request, signedHeaders, declared), signature);
  if (declared === 'UNSIGNED-PAYLOAD' || declared === 'STREAMING-UNSIGNED-PAYLOAD-TRAILER') return { key, body: { kind: 'none' } };
  if (declared === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' || declared === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER') {
    return {
      key,
      body: {
        kind: 'chunks',
        signing: { signingKey: signing, amzDate, scope: credential.scope, seed: signature },
        trailer: declared.endsWith('TRAILER'),
      },
    };
  }
  if (!/^[0-9a-f]{64}$/.test(declared))
    throw refused('MKV_SIGNATURE', 'X-Amz-Content-SHA256 is not a sha256, UNSIGNED-PAYLOAD or STREAMING-…');
  return { key, body: { kind: 'sha256', expected: declared } };
}

/** Verifies a presigned URL (X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders, -Signature in the query). */
export function verifyPresigned(credentials: Credentials, request: SignedRequest, query: URLSearchParams, now = Date.now()): Verified {
  if (query.get('X-Amz-Algorithm') !== ALGORITHM) throw refused('MKV_SIGNATURE', `only ${ALGORITHM} presigned URLs are accepted`);
  const credential = parseCredential(query.get('X-Amz-Credential') ?? '');
  const key = keyOf(credentials, credential);
  const amzDate = query.get('X-Amz-Date') ?? '';
  const time = parseAmzDate(amzDate);
  const expires = Number(query.get('X-Amz-Expires'));
  if (Number.isNaN(time) || !Number.isInteger(expires) || expires < 1 || expires > MAX_EXPIRES_S) {
    throw refused('MKV_ACCESS_DENIED', 'X-Amz-Date or X-Amz-Expires is missing or out of range (1 s to 7 days)');
  }
  if (!amzDate.startsWith(credential.date)) throw refused('MKV_SIGNATURE', "the credential's date is not the day of X-Amz-Date");
  if (now > time + expires * 1000) throw refused('MKV_ACCESS_DENIED', 'Request has expired');
  if (time - now > MAX_SKEW_MS) throw refused('MKV_TIME_SKEWED', 'the presigned URL is dated in the future');
  const signedHeaders = (query.get('X-Amz-SignedHeaders') ?? '').split(';');
  if (!signedHeaders.includes('host')) throw refused('MKV_SIGNATURE', 'the Host header must be signed');
  const payload = headerValue(request.headers, 'x-amz-content-sha256') || 'UNSIGNED-PAYLOAD';
  checkSignature(
    key,
    credential,
    amzDate,
    canonicalRequest(request, signedHeaders, payload, 'X-Amz-Signature'),
    query.get('X-Amz-Signature') ?? '',
  );
  return { key, body: payload === 'UNSIGNED-PAYLOAD' ? { kind: 'none' } : { kind: 'sha256', expected: payload } };
}

/** The signature one aws-chunked chunk must carry, chained from the one before it. */
export function chunkSignature(signing: ChunkSigning, previous: string, chunkSha256: string): string {
  const stringToSign = `${ALGORITHM}-PAYLOAD\n${signing.amzDate}\n${signing.scope}\n${previous}\n${EMPTY_SHA256}\n${chunkSha256}`;
  return createHmac('sha256', signing.signingKey).update(stringToSign).digest('hex');
}

/** The signature of an aws-chunked body's trailing headers, chained from the last chunk's. */
export function trailerSignature(signing: ChunkSigning, previous: string, trailers: string): string {
  const stringToSign = `${ALGORITHM}-TRAILER\n${signing.amzDate}\n${signing.scope}\n${previous}\n${sha256(trailers)}`;
  return createHmac('sha256', signing.signingKey).update(stringToSign).digest('hex');
}

// Signature Version 2, which the aws cli still uses for `aws s3 presign` against an endpoint of
// its own (?AWSAccessKeyId=…&Expires=…&Signature=…), as older S3 clients do in the
// Authorization header (AWS KEY:SIGNATURE): base64 HMAC-SHA1 of the method, Content-MD5,
// Content-Type, the date (or Expires), the x-amz-* headers and the resource with its
// sub-resources. It signs no payload.

/** The query parameters that are part of a V2 resource (S3's sub-resources and response overrides). */
const V2_SUBRESOURCES = new Set([
  'acl',
  'delete',
  'lifecycle',
  'location',
  'logging',
  'notification',
  'partNumber',
  'policy',
  'requestPayment',
  'tagging',
  'torrent',
  'uploadId',
  'uploads',
  'versionId',
  'versioning',
  'versions',
  'website',
  'response-cache-control',
  'response-content-disposition',
  'response-content-encoding',
  'response-content-language',
  'response-content-type',
  'response-expires',
]);

function v2StringToSign(request: SignedRequest, date: string): string {
  const amzHeaders = Object.keys(request.headers)
    .filter((name) => name.startsWith('x-amz-'))
    .sort()
    .map((name) => `${name}:${headerValue(request.headers, name)}\n`)
    .join('');
  const subresources = new URLSearchParams(request.query);
  const kept = [...subresources.keys()].filter((name) => V2_SUBRESOURCES.has(name)).sort();
  const resource =
    request.rawPath +
    (kept.length === 0 ? '' : '?' + kept.map((name) => (subresources.get(name) ? `${name}=${subresources.get(name)}` : name)).join('&'));
  return `${request.method}\n${headerValue(request.headers, 'content-md5')}\n${headerValue(request.headers, 'content-type')}\n${date}\n${amzHeaders}${resource}`;
}

function checkV2(key: AccessKey, stringToSign: string, signature: string): void {
  if (!sameSignature(createHmac('sha1', key.secret).update(stringToSign).digest('base64'), signature)) {
    throw refused('MKV_SIGNATURE', 'the signature does not match: check the secret key and how the request was signed');
  }
}

/** Verifies Authorization: AWS ACCESS_KEY:SIGNATURE (Signature Version 2). */
export function verifyV2Header(credentials: Credentials, request: SignedRequest, authorization: string, now = Date.now()): AccessKey {
  const match = /^AWS ([^:\s]+):(\S+)$/.exec(authorization);
  if (!match) throw refused('MKV_SIGNATURE', 'the Authorization header is not AWS ACCESS_KEY:SIGNATURE');
  const key = credentials.keys.get(match[1]!);
  if (!key) throw new MkvError('MKV_UNKNOWN_ACCESS_KEY', `the access key ${match[1]} is not one of this server's`);
  // With X-Amz-Date (signed among the x-amz-* headers), the date line is empty.
  const amzDate = headerValue(request.headers, 'x-amz-date');
  const date = amzDate === '' ? headerValue(request.headers, 'date') : '';
  const time = Date.parse(amzDate || date);
  if (Number.isNaN(time)) throw refused('MKV_ACCESS_DENIED', 'a signed request needs a Date or X-Amz-Date header');
  if (Math.abs(now - time) > MAX_SKEW_MS)
    throw refused('MKV_TIME_SKEWED', "the difference between the request time and the server's time is too large");
  checkV2(key, v2StringToSign(request, date), match[2]!);
  return key;
}

/** Verifies a Signature Version 2 presigned URL (AWSAccessKeyId, Expires, Signature in the query). */
export function verifyV2Presigned(credentials: Credentials, request: SignedRequest, query: URLSearchParams, now = Date.now()): AccessKey {
  const key = credentials.keys.get(query.get('AWSAccessKeyId') ?? '');
  if (!key) throw new MkvError('MKV_UNKNOWN_ACCESS_KEY', `the access key ${query.get('AWSAccessKeyId')} is not one of this server's`);
  const expires = query.get('Expires') ?? '';
  if (!/^\d{1,12}$/.test(expires)) throw refused('MKV_ACCESS_DENIED', 'Expires is missing or not a time');
  if (now > Number(expires) * 1000) throw refused('MKV_ACCESS_DENIED', 'Request has expired');
  checkV2(key, v2StringToSign(request, expires), query.get('Signature') ?? '');
  return key;
}
