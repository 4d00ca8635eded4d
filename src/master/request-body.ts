// A request's body as the value (or document) it carries, checked as it streams against what
// the request said of it: the sha256 it was signed with (or states), each aws-chunked chunk's
// signature, its Content-MD5 and x-amz-checksum-*. The native API and S3 take bodies alike.
import type { IncomingMessage } from 'node:http';
import { pipeline, type Transform } from 'node:stream';
import { identityOf } from '../auth/authenticate.js';
import { sha256Check, trailerChecksum, valueChecks } from '../auth/body-check.js';
import { knownPayload } from '../auth/sigv4.js';
import { MkvError } from '../errors.js';
import type { Checksum } from '../events/event.js';
import type { ValueSource } from '../keys/store-value.js';
import { AwsChunkedDecoder } from './aws-chunked.js';

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
  // Unsigned (no credentials to check it against), it is still a statement about the body.
  if (rule.kind === 'none' && stated !== '' && !knownPayload(stated))
    throw new MkvError('MKV_BAD_REQUEST', 'X-Amz-Content-SHA256 is not a hex sha256, UNSIGNED-PAYLOAD or STREAMING-…');
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
