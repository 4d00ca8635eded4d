// Checking a body against what its request said of it, as it streams: the sha256 its signature
// covers (X-Amz-Content-SHA256), its Content-MD5 and its x-amz-checksum-* (checksums.ts).
//
//   request body ─▶ DigestCheck ─▶ … ─▶ the value's consumers (volumes, a part's file, an XML parser)
//                   hashes every byte, holds the latest chunk back; at the end: the digest matches?
//                   yes ─▶ the held chunk, then the end      no ─▶ an error, and never the last bytes
//
// Holding the latest chunk back means no consumer has a body whole before it is known to be the
// one the request named: a volume keeps a PUT aside until its last byte, so a body that fails is
// never stored, and the write fails as any write whose body broke off.
import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { CHECKSUM_ALGORITHMS, createDigest, type ChecksumAlgorithm, type Digest } from '../checksums.js';
import { MkvError } from '../errors.js';

export class DigestCheck extends Transform {
  private readonly hash: Digest;
  private held: Buffer | undefined;

  /** `expected`: the digest the body must have; `mismatch`: the error when it does not. */
  constructor(
    readonly algorithm: ChecksumAlgorithm | 'md5',
    private readonly expected: Buffer,
    private readonly mismatch: () => MkvError,
  ) {
    super();
    this.hash = createDigest(algorithm);
  }

  /** The digest the body must have, as S3 headers carry it (base64). */
  get expectedBase64(): string {
    return this.expected.toString('base64');
  }

  /** Throws unless `digest`, computed elsewhere, is the one expected. */
  verify(digest: Buffer): void {
    if (!digest.equals(this.expected)) throw this.mismatch();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    const previous = this.held;
    this.held = chunk;
    if (previous) this.push(previous);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.verify(this.hash.digest());
    } catch (error) {
      return callback(error as Error);
    }
    if (this.held) this.push(this.held);
    this.held = undefined;
    callback();
  }
}

/** The check of a body's sha256 against the X-Amz-Content-SHA256 its request was signed with. */
export function sha256Check(expectedHex: string): DigestCheck {
  return new DigestCheck(
    'sha256',
    Buffer.from(expectedHex, 'hex'),
    () => new MkvError('MKV_CONTENT_SHA256_MISMATCH', "The provided 'x-amz-content-sha256' header does not match what was computed."),
  );
}

/** The length of each digest, in bytes. */
const DIGEST_BYTES: Record<ChecksumAlgorithm | 'md5', number> = { md5: 16, crc32: 4, crc32c: 4, crc64nvme: 8, sha1: 20, sha256: 32 };

/** A digest as S3 headers carry it (base64 of its bytes), read; undefined when it is not one. */
function base64Digest(text: string, algorithm: ChecksumAlgorithm | 'md5'): Buffer | undefined {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || trimmed.length % 4 !== 0) return undefined;
  const digest = Buffer.from(trimmed, 'base64');
  return digest.length === DIGEST_BYTES[algorithm] ? digest : undefined;
}

/** The algorithm an x-amz-checksum-* name (a header, or a trailer aws-chunked carries) is for; MKV_BAD_REQUEST for one S3 does not have. */
export function checksumAlgorithm(name: string): ChecksumAlgorithm {
  return checksumAlgorithmOf(name.slice('x-amz-checksum-'.length), name);
}

/**
 * The algorithm a value of x-amz-checksum-algorithm (or x-amz-sdk-checksum-algorithm, the
 * SDK's word for what it sends) names, any case; MKV_BAD_REQUEST for one S3 does not have.
 */
export function checksumAlgorithmOf(value: string, said = value): ChecksumAlgorithm {
  const algorithm = value.trim().toLowerCase();
  if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm))
    throw new MkvError('MKV_BAD_REQUEST', `${said} is not a checksum S3 knows (${CHECKSUM_ALGORITHMS.join(', ')})`);
  return algorithm as ChecksumAlgorithm;
}

/**
 * The check of a value against a checksum `name` (x-amz-checksum-ALGORITHM) says it has;
 * MKV_BAD_DIGEST when `value` is none, as for a wrong one (S3-compatible stores answer so, and
 * ceph's s3-tests hold them to it; only a malformed Content-MD5 is InvalidDigest).
 */
export function checksumCheck(name: string, value: string): DigestCheck {
  const algorithm = checksumAlgorithm(name);
  const expected = base64Digest(value, algorithm);
  if (!expected) throw new MkvError('MKV_BAD_DIGEST', `The ${name} you specified is not a base64 ${algorithm}.`);
  return new DigestCheck(
    algorithm,
    expected,
    () => new MkvError('MKV_BAD_DIGEST', `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`),
  );
}

/**
 * The checks of a value against what its request's headers say of it: its Content-MD5 (base64
 * of the md5 of the value, as S3 and RFC 1864 have it) and its x-amz-checksum-* headers; none
 * when it says nothing. MKV_INVALID_DIGEST when one is not a digest at all: refused before
 * anything is read.
 */
export function valueChecks(headers: IncomingHttpHeaders, options: { checksums?: boolean } = {}): DigestCheck[] {
  const checks: DigestCheck[] = [];
  const md5 = headers['content-md5'];
  if (md5 !== undefined) {
    const expected = base64Digest(String(md5), 'md5');
    if (!expected) throw new MkvError('MKV_INVALID_DIGEST', 'The Content-MD5 you specified is not valid.');
    checks.push(
      new DigestCheck(
        'md5',
        expected,
        () => new MkvError('MKV_BAD_DIGEST', 'The Content-MD5 you specified did not match what was received.'),
      ),
    );
  }
  // CompleteMultipartUpload's x-amz-checksum-* (checksums: false) are of the value it forms, not of its body.
  for (const name in options.checksums === false ? {} : headers) {
    // x-amz-checksum-type (FULL_OBJECT, COMPOSITE) and x-amz-checksum-algorithm name no digest.
    if (!name.startsWith('x-amz-checksum-') || name === 'x-amz-checksum-type' || name === 'x-amz-checksum-algorithm') continue;
    checks.push(checksumCheck(name, String(headers[name])));
  }
  if (options.checksums !== false) checkChecksumHeaders(headers, checks);
  return checks;
}

/**
 * One checksum a body, and the one the SDK says it sends (x-amz-sdk-checksum-algorithm; on a
 * PUT, x-amz-checksum-algorithm says the same): 400, as S3 answers, when they disagree or the
 * one said is not sent, rather than a checksum asked for and never checked.
 */
function checkChecksumHeaders(headers: IncomingHttpHeaders, checks: DigestCheck[]): void {
  const sent = checks.filter((check) => check.algorithm !== 'md5').map((check) => check.algorithm);
  const trailer = trailerChecksum(headers);
  if (trailer) sent.push(trailer.algorithm);
  if (sent.length > 1)
    throw new MkvError('MKV_BAD_REQUEST', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
  const header = headers['x-amz-sdk-checksum-algorithm'] !== undefined ? 'x-amz-sdk-checksum-algorithm' : 'x-amz-checksum-algorithm';
  const said = headers[header];
  if (said === undefined) return;
  const algorithm = checksumAlgorithmOf(String(said), `${header}: ${String(said)}`);
  if (sent.length === 0)
    throw new MkvError(
      'MKV_BAD_REQUEST',
      `${header} specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.`,
    );
  if (sent[0] !== algorithm)
    throw new MkvError('MKV_BAD_REQUEST', `${header} says ${algorithm.toUpperCase()}, but the checksum sent is ${sent[0]!.toUpperCase()}`);
}

/**
 * The checksum an aws-chunked body promises in its trailer (x-amz-trailer: x-amz-checksum-ALGORITHM),
 * which the decoder checks against the value it yields; undefined when it promises none.
 */
export function trailerChecksum(headers: IncomingHttpHeaders): { name: string; algorithm: ChecksumAlgorithm } | undefined {
  const trailer = headers['x-amz-trailer'];
  if (trailer === undefined) return undefined;
  const name = String(trailer).trim().toLowerCase();
  if (!name.startsWith('x-amz-checksum-'))
    throw new MkvError('MKV_BAD_REQUEST', `x-amz-trailer: ${name} is not a trailer this server checks`);
  return { name, algorithm: checksumAlgorithm(name) };
}
