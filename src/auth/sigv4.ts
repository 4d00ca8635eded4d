// AWS Signature Version 4, as S3 checks it: in the Authorization header, or in a presigned
// URL's X-Amz-* query. What is signed:
//
//   canonical request = METHOD \n URI \n QUERY \n name:value\n... \n signed;headers \n payload hash
//   string to sign    = AWS4-HMAC-SHA256 \n X-Amz-Date \n date/region/service/aws4_request \n sha256(canonical request)
//   signature         = hex HMAC(signing key, string to sign), the key derived from the secret, date, region, service
//
// The payload hash is X-Amz-Content-SHA256, which a header-signed request with a body must
// send (as S3 requires; one without a body is signed over the empty payload's hash): a hex sha256 (checked against the body as it arrives), UNSIGNED-PAYLOAD, or
// STREAMING-…: aws-chunked framing whose every chunk is signed in turn (checked by the decoder,
// master/aws-chunked.ts, through ChunkSigning). Nothing here hands out an access key before its
// signature over the request line and headers has been checked; every x-amz-* header the
// request carries must be among those signed, and the credential's scope must be S3's (in the
// region the server was given, if any).
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
function hasBody(headers: IncomingHttpHeaders): boolean {
  return (headers['content-length'] !== undefined && headers['content-length'] !== '0') || headers['transfer-encoding'] !== undefined;
}

/** What a good signature proved, and what remains to check in the body. */
export interface Verified {
  key: AccessKey;
  /** How the body must be checked: its sha256, its chunks' signatures, or not at all. */
  body: BodyRule;
  /** x-amz-* headers a presigned URL carries in its query (the AWS SDK for JavaScript puts them there), signed with it. */
  hoisted?: Record<string, string>;
}

export type BodyRule =
  | { kind: 'none' }
  /** The body's sha256 must be this (X-Amz-Content-SHA256, which the signature covers). */
  | { kind: 'sha256'; expected: string }
  | { kind: 'chunks'; signing: ChunkSigning; trailer: boolean };

/** What the chunks of an aws-chunked body are signed with. */
export interface ChunkSigning {
  signingKey: Buffer;
  amzDate: string;
  scope: string;
  /** The signature of the request, which the first chunk's signature chains from. */
  seed: string;
}

function refused(code: 'MKV_SIGNATURE' | 'MKV_ACCESS_DENIED' | 'MKV_TIME_SKEWED' | 'MKV_AUTH_MALFORMED', message: string): MkvError {
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
    throw refused('MKV_AUTH_MALFORMED', 'the credential is not ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request');
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

function keyOf(credentials: Credentials, accessKey: string): AccessKey {
  const key = credentials.keys.get(accessKey);
  // S3's words, which do not repeat the name: a client that swapped its key and secret sent the secret as it.
  if (!key) throw new MkvError('MKV_UNKNOWN_ACCESS_KEY', 'The AWS Access Key Id you provided does not exist in our records.');
  return key;
}

/** A credential scoped to S3, in the server's region when it has one (mkv server --region); any region otherwise. */
function checkScope(credentials: Credentials, credential: Credential): void {
  if (credential.service !== 's3') {
    throw refused('MKV_AUTH_MALFORMED', `the credential is scoped to the service '${credential.service}'; it should be 's3'`);
  }
  if (credentials.region !== undefined && credential.region !== credentials.region) {
    throw refused('MKV_AUTH_MALFORMED', `the region '${credential.region}' is wrong; expecting '${credentials.region}'`);
  }
}

/** Refuses a request that carries an x-amz-* header its signature does not cover (it could change what the request does). */
function checkAllSigned(headers: IncomingHttpHeaders, signed: readonly string[], covered: readonly string[] = []): void {
  const unsigned = Object.keys(headers).filter((name) => name.startsWith('x-amz-') && !signed.includes(name) && !covered.includes(name));
  if (unsigned.length > 0) {
    throw refused('MKV_ACCESS_DENIED', `There were headers present in the request which were not signed: ${unsigned.sort().join(', ')}`);
  }
}

function checkSignature(key: AccessKey, credential: Credential, amzDate: string, canonical: string, signature: string): Buffer {
  const signing = signingKey(key.secret, credential.date, credential.region, credential.service);
  // Hashed as node:http read it, one char a byte: a header's UTF-8 (x-amz-meta-*) is hashed as sent.
  const stringToSign = `${ALGORITHM}\n${amzDate}\n${credential.scope}\n${createHash('sha256').update(canonical, 'latin1').digest('hex')}`;
  if (!sameSignature(createHmac('sha256', signing).update(stringToSign).digest('hex'), signature)) {
    throw refused('MKV_SIGNATURE', 'the signature does not match: check the secret key and how the request was signed');
  }
  return signing;
}

const STREAMING_SIGNED = new Set(['STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER']);
const UNSIGNED = new Set(['UNSIGNED-PAYLOAD', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER']);

/** Whether X-Amz-Content-SHA256 says something this server can check (or knows is unsigned). */
export function knownPayload(declared: string): boolean {
  return UNSIGNED.has(declared) || STREAMING_SIGNED.has(declared) || /^[0-9a-f]{64}$/.test(declared);
}

/**
 * Verifies an Authorization: AWS4-HMAC-SHA256 header: the scope, the time, that every x-amz-*
 * header is signed, and the signature over the request line, the headers and the declared
 * payload hash. Only then is there an access key; the body is checked as it arrives (BodyRule).
 */
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
    throw refused('MKV_AUTH_MALFORMED', 'the Authorization header lacks Credential, SignedHeaders or Signature');
  const credential = parseCredential(credentialText);
  checkScope(credentials, credential);
  const amzDate = headerValue(request.headers, 'x-amz-date');
  const time = parseAmzDate(amzDate);
  if (Number.isNaN(time)) throw refused('MKV_ACCESS_DENIED', 'a signed request needs an X-Amz-Date header (YYYYMMDDTHHMMSSZ)');
  if (!amzDate.startsWith(credential.date)) throw refused('MKV_SIGNATURE', "the credential's date is not the day of X-Amz-Date");
  if (Math.abs(now - time) > MAX_SKEW_MS)
    throw refused('MKV_TIME_SKEWED', "the difference between the request time and the server's time is too large");
  const signedHeaders = signedText.split(';');
  if (!signedHeaders.includes('host')) throw refused('MKV_SIGNATURE', 'the Host header must be signed');
  checkAllSigned(request.headers, signedHeaders);
  const key = keyOf(credentials, credential.accessKey);
  const declared = headerValue(request.headers, 'x-amz-content-sha256');
  if (declared === '') {
    // A body's hash must be declared, so that the signature is checked before the body is read.
    if (hasBody(request.headers)) throw new MkvError('MKV_BAD_REQUEST', 'Missing required header for this request: x-amz-content-sha256');
    // No body at all (curl --aws-sigv4 before 8.x sends no X-Amz-Content-SHA256): signed over the empty payload.
    checkSignature(key, credential, amzDate, canonicalRequest(request, signedHeaders, EMPTY_SHA256), signature);
    return { key, body: { kind: 'none' } };
  }
  if (!knownPayload(declared))
    throw new MkvError('MKV_BAD_REQUEST', 'X-Amz-Content-SHA256 is not a hex sha256, UNSIGNED-PAYLOAD or STREAMING-…');
  const signing = checkSignature(key, credential, amzDate, canonicalRequest(request, signedHeaders, declared), signature);
  if (UNSIGNED.has(declared)) return { key, body: { kind: 'none' } };
  if (STREAMING_SIGNED.has(declared)) {
    return {
      key,
      body: {
        kind: 'chunks',
        signing: { signingKey: signing, amzDate, scope: credential.scope, seed: signature },
        trailer: declared.endsWith('TRAILER'),
      },
    };
  }
  return { key, body: { kind: 'sha256', expected: declared } };
}

/** Verifies a presigned URL (X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders, -Signature in the query). */
export function verifyPresigned(credentials: Credentials, request: SignedRequest, query: URLSearchParams, now = Date.now()): Verified {
  if (query.get('X-Amz-Algorithm') !== ALGORITHM) throw refused('MKV_AUTH_MALFORMED', `only ${ALGORITHM} presigned URLs are accepted`);
  const credential = parseCredential(query.get('X-Amz-Credential') ?? '');
  checkScope(credentials, credential);
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
  // X-Amz-Content-SHA256 is the canonical request's payload line: the signature covers it either way.
  checkAllSigned(request.headers, signedHeaders, ['x-amz-content-sha256']);
  const key = keyOf(credentials, credential.accessKey);
  const payload = headerValue(request.headers, 'x-amz-content-sha256') || 'UNSIGNED-PAYLOAD';
  if (!knownPayload(payload) || STREAMING_SIGNED.has(payload))
    throw new MkvError('MKV_BAD_REQUEST', 'a presigned request sends its body unsigned or with its hex sha256 in X-Amz-Content-SHA256');
  checkSignature(
    key,
    credential,
    amzDate,
    canonicalRequest(request, signedHeaders, payload, 'X-Amz-Signature'),
    query.get('X-Amz-Signature') ?? '',
  );
  const body: BodyRule = UNSIGNED.has(payload) ? { kind: 'none' } : { kind: 'sha256', expected: payload };
  const hoisted = hoistedHeaders(query, request.headers);
  return hoisted ? { key, body, hoisted } : { key, body };
}

/** The query parameters of a presigned URL that are its own, not headers it carries. */
const PRESIGN_PARAMETERS = new Set([
  'x-amz-algorithm',
  'x-amz-credential',
  'x-amz-date',
  'x-amz-expires',
  'x-amz-signedheaders',
  'x-amz-signature',
]);

/**
 * The x-amz-* request headers a presigned URL carries in its query, as S3 reads them (the AWS
 * SDK for JavaScript hoists x-amz-meta-*, x-amz-acl and the like there); undefined: none. One
 * also sent as a header, with another value, is refused: which would S3 take?
 */
function hoistedHeaders(query: URLSearchParams, headers: IncomingHttpHeaders): Record<string, string> | undefined {
  let hoisted: Record<string, string> | undefined;
  for (const [name, value] of query) {
    const header = name.toLowerCase();
    if (!header.startsWith('x-amz-') || PRESIGN_PARAMETERS.has(header)) continue;
    if (header === 'x-amz-security-token')
      throw refused('MKV_AUTH_MALFORMED', 'temporary credentials (X-Amz-Security-Token) are not supported');
    if (headers[header] !== undefined && headerValue(headers, header) !== value.trim())
      throw new MkvError('MKV_BAD_REQUEST', `${header} is given twice, in the query and as a header, with different values`);
    (hoisted ??= {})[header] = value;
  }
  return hoisted;
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

function v2StringToSign(request: SignedRequest, date: string, path = request.rawPath): string {
  const amzHeaders = Object.keys(request.headers)
    .filter((name) => name.startsWith('x-amz-'))
    .sort()
    .map((name) => `${name}:${headerValue(request.headers, name)}\n`)
    .join('');
  const subresources = new URLSearchParams(request.query);
  const kept = [...subresources.keys()].filter((name) => V2_SUBRESOURCES.has(name)).sort();
  const resource =
    path +
    (kept.length === 0 ? '' : '?' + kept.map((name) => (subresources.get(name) ? `${name}=${subresources.get(name)}` : name)).join('&'));
  return `${request.method}\n${headerValue(request.headers, 'content-md5')}\n${headerValue(request.headers, 'content-type')}\n${date}\n${amzHeaders}${resource}`;
}

function v2Matches(key: AccessKey, stringToSign: string, signature: string): boolean {
  return sameSignature(createHmac('sha1', key.secret).update(stringToSign, 'latin1').digest('base64'), signature);
}

/**
 * Checks a V2 signature over the request. A bucket's own resource ("/bucket") is signed as
 * "/bucket/" by S3 and botocore, as it is sent by others: either is taken.
 */
function checkV2(key: AccessKey, request: SignedRequest, date: string, signature: string): void {
  if (v2Matches(key, v2StringToSign(request, date), signature)) return;
  if (/^\/[^/]+$/.test(request.rawPath) && v2Matches(key, v2StringToSign(request, date, `${request.rawPath}/`), signature)) return;
  throw refused('MKV_SIGNATURE', 'the signature does not match: check the secret key and how the request was signed');
}

/** Verifies Authorization: AWS ACCESS_KEY:SIGNATURE (Signature Version 2). */
export function verifyV2Header(credentials: Credentials, request: SignedRequest, authorization: string, now = Date.now()): AccessKey {
  const match = /^AWS ([^:\s]+):(\S+)$/.exec(authorization);
  if (!match) throw refused('MKV_SIGNATURE', 'the Authorization header is not AWS ACCESS_KEY:SIGNATURE');
  const key = keyOf(credentials, match[1]!);
  // With X-Amz-Date (signed among the x-amz-* headers), the date line is empty, and X-Amz-Date
  // is the request's time, even empty: then it has none (S3 does not fall back to Date).
  const hasAmzDate = request.headers['x-amz-date'] !== undefined;
  const date = hasAmzDate ? '' : headerValue(request.headers, 'date');
  const time = Date.parse(hasAmzDate ? headerValue(request.headers, 'x-amz-date') : date);
  if (Number.isNaN(time)) throw refused('MKV_ACCESS_DENIED', 'a signed request needs a Date or X-Amz-Date header');
  if (Math.abs(now - time) > MAX_SKEW_MS)
    throw refused('MKV_TIME_SKEWED', "the difference between the request time and the server's time is too large");
  checkV2(key, request, date, match[2]!);
  return key;
}

/** Verifies a Signature Version 2 presigned URL (AWSAccessKeyId, Expires, Signature in the query). */
export function verifyV2Presigned(credentials: Credentials, request: SignedRequest, query: URLSearchParams, now = Date.now()): AccessKey {
  const key = keyOf(credentials, query.get('AWSAccessKeyId') ?? '');
  const expires = query.get('Expires') ?? '';
  if (!/^\d{1,12}$/.test(expires)) throw refused('MKV_ACCESS_DENIED', 'Expires is missing or not a time');
  if (now > Number(expires) * 1000) throw refused('MKV_ACCESS_DENIED', 'Request has expired');
  // As a V4 URL's X-Amz-Expires: a link that outlives a week is a key that was never meant to be given.
  if (Number(expires) * 1000 - now > MAX_EXPIRES_S * 1000 + MAX_SKEW_MS)
    throw refused('MKV_ACCESS_DENIED', 'Expires is more than 7 days away (a presigned URL is valid for 7 days at most)');
  checkV2(key, request, expires, query.get('Signature') ?? '');
  return key;
}
