// Signing requests as S3 clients do, for tests that attack the master: the AWS SDK's own signer
// (@smithy/signature-v4) for headers and presigned URLs, and aws-chunked bodies whose chunks are
// signed in turn, written out from AWS's description ("Signature Calculation: Transfer Payload in
// Multiple Chunks"), not from the server's code.
import { createHash, createHmac, type BinaryLike } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

/** The hash the SDK's signer asks for: sha256, or an HMAC-sha256 when given a secret. */
class Sha256 {
  private readonly hash;
  constructor(secret?: BinaryLike) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', secret);
  }
  update(data: BinaryLike): void {
    this.hash.update(data);
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
  reset(): void {}
}

export interface Signer {
  accessKey: string;
  secret: string;
  region?: string;
  service?: string;
}

function signerOf(who: Signer): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId: who.accessKey, secretAccessKey: who.secret },
    region: who.region ?? 'us-east-1',
    service: who.service ?? 's3',
    sha256: Sha256 as never, // the shape the SDK's HashConstructor wants; its type lives in a package of the SDK's own
    uriEscapePath: false,
    applyChecksum: false,
  });
}

function requestOf(method: string, url: string, headers: Record<string, string>) {
  const parsed = new URL(url);
  const query: Record<string, string> = {};
  for (const [name, value] of parsed.searchParams) query[name] = value;
  return {
    method,
    protocol: parsed.protocol,
    hostname: parsed.hostname,
    port: Number(parsed.port),
    path: parsed.pathname,
    query,
    headers: { host: parsed.host, ...headers },
  };
}

/**
 * The headers of a request signed in its Authorization header, over `headers` (all of them are
 * signed) and the payload hash X-Amz-Content-SHA256 says (the sha256 of `body` by default).
 */
export async function signedHeaders(
  who: Signer,
  method: string,
  url: string,
  headers: Record<string, string> = {},
  body: string | Buffer = '',
  signingDate = new Date(),
): Promise<Record<string, string>> {
  const payload = headers['x-amz-content-sha256'] ?? createHash('sha256').update(body).digest('hex');
  const signed = await signerOf(who).sign(requestOf(method, url, { ...headers, 'x-amz-content-sha256': payload }), { signingDate });
  const out = { ...(signed.headers as Record<string, string>) };
  delete out.host; // the HTTP client sends its own
  return out;
}

/**
 * A presigned URL, valid for `expiresIn` seconds, signing `headers` too: sent as headers, or
 * with `hoist`, carried in the query as the AWS SDK for JavaScript's presigner does.
 */
export async function presignedUrl(
  who: Signer,
  method: string,
  url: string,
  expiresIn: number,
  headers: Record<string, string> = {},
  options: { hoist?: boolean } = {},
): Promise<string> {
  // As S3 presigners do, the payload is UNSIGNED-PAYLOAD.
  const signed = await signerOf(who).presign(requestOf(method, url, { ...headers, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' }), {
    expiresIn,
    unsignableHeaders: new Set(['x-amz-content-sha256']),
    unhoistableHeaders: new Set([...(options.hoist ? [] : Object.keys(headers)), 'x-amz-content-sha256']),
  });
  const out = new URL(url);
  out.search = new URLSearchParams(signed.query as Record<string, string>).toString();
  return out.toString();
}

const hmac = (key: BinaryLike, data: string) => createHmac('sha256', key).update(data).digest();
const sha256 = (data: BinaryLike) => createHash('sha256').update(data).digest('hex');

/**
 * A PUT whose body goes in signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, as minio-go sends
 * over plain HTTP): its headers, and the framed body, each chunk's signature chained from the
 * request's (the seed).
 */
export async function streamingPut(
  who: Signer,
  url: string,
  chunks: Buffer[],
  headers: Record<string, string> = {},
): Promise<{ headers: Record<string, string>; body: Buffer }> {
  const length = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const date = new Date();
  const signed = await signedHeaders(
    who,
    'PUT',
    url,
    {
      ...headers,
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': String(length),
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    },
    '',
    date,
  );
  const amzDate = signed['x-amz-date']!;
  const day = amzDate.slice(0, 8);
  const region = who.region ?? 'us-east-1';
  const scope = `${day}/${region}/s3/aws4_request`;
  const key = hmac(hmac(hmac(hmac(`AWS4${who.secret}`, day), region), 's3'), 'aws4_request');
  let previous = /Signature=([0-9a-f]{64})/.exec(signed.authorization!)![1]!;
  const parts: Buffer[] = [];
  for (const chunk of [...chunks, Buffer.alloc(0)]) {
    const toSign = ['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, previous, sha256(''), sha256(chunk)].join('\n');
    previous = hmac(key, toSign).toString('hex');
    parts.push(Buffer.from(`${chunk.length.toString(16)};chunk-signature=${previous}\r\n`), chunk, Buffer.from('\r\n'));
  }
  return { headers: signed, body: Buffer.concat(parts) };
}

/** Signature Version 2 in the Authorization header (AWS KEY:SIGNATURE) over the method, Content-MD5, Content-Type, Date, x-amz-* and the path. */
export function v2Headers(who: Signer, method: string, path: string, headers: Record<string, string> = {}): Record<string, string> {
  const date = new Date().toUTCString();
  const amz = Object.keys(headers)
    .filter((name) => name.startsWith('x-amz-'))
    .sort()
    .map((name) => `${name}:${headers[name]}\n`)
    .join('');
  const toSign = `${method}\n${headers['content-md5'] ?? ''}\n${headers['content-type'] ?? ''}\n${date}\n${amz}${path}`;
  const signature = createHmac('sha1', who.secret).update(toSign).digest('base64');
  return { ...headers, date, authorization: `AWS ${who.accessKey}:${signature}` };
}

/** A V2 presigned URL (AWSAccessKeyId, Expires, Signature), as `aws s3 presign` makes by default. */
export function v2PresignedUrl(who: Signer, method: string, base: string, path: string, expires: number): string {
  const signature = createHmac('sha1', who.secret).update(`${method}\n\n\n${expires}\n${path}`).digest('base64');
  return `${base}${path}?AWSAccessKeyId=${who.accessKey}&Expires=${expires}&Signature=${encodeURIComponent(signature)}`;
}
