// Checking a body against what its request said of it, as it streams: the sha256 its signature
// covers (X-Amz-Content-SHA256) and its Content-MD5.
//
//   request body ─▶ DigestCheck ─▶ … ─▶ the value's consumers (volumes, a part's file, an XML parser)
//                   hashes every byte, holds the latest chunk back; at the end: the digest matches?
//                   yes ─▶ the held chunk, then the end      no ─▶ an error, and never the last bytes
//
// Holding the latest chunk back means no consumer has a body whole before it is known to be the
// one the request named: a volume keeps a PUT aside until its last byte, so a body that fails is
// never stored, and the write fails as any write whose body broke off.
import { createHash, type Hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { MkvError } from '../errors.js';

export class DigestCheck extends Transform {
  private readonly hash: Hash;
  private held: Buffer | undefined;

  /** `expected`: the digest the body must have; `mismatch`: the error when it does not. */
  constructor(
    algorithm: 'sha256' | 'md5',
    private readonly expected: Buffer,
    private readonly mismatch: () => MkvError,
  ) {
    super();
    this.hash = createHash(algorithm);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    const previous = this.held;
    this.held = chunk;
    if (previous) this.push(previous);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (!this.hash.digest().equals(this.expected)) return callback(this.mismatch());
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

/**
 * The check of a body against its Content-MD5 (base64 of the md5 of the value, as S3 and
 * RFC 1864 have it); undefined when the request sends none. MKV_INVALID_DIGEST when the header
 * is not an md5 at all: refused before anything is read.
 */
export function contentMd5Check(headers: IncomingHttpHeaders): DigestCheck | undefined {
  const value = headers['content-md5'];
  if (value === undefined) return undefined;
  const header = String(value).trim();
  const md5 = /^[A-Za-z0-9+/]{22}==$/.test(header) ? Buffer.from(header, 'base64') : undefined;
  if (md5?.length !== 16) throw new MkvError('MKV_INVALID_DIGEST', 'The Content-MD5 you specified is not valid.');
  return new DigestCheck(
    'md5',
    md5,
    () => new MkvError('MKV_BAD_DIGEST', 'The Content-MD5 you specified did not match what was received.'),
  );
}
