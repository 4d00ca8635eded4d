// The checksums S3 clients send with a body (x-amz-checksum-ALGORITHM, as a header or an
// aws-chunked trailer, and Content-MD5), computed as the bytes stream. Each is the base64 of
// its digest in big-endian byte order: CRC32 (zlib's, native), CRC32C (Castagnoli), CRC64NVME,
// SHA-1, SHA-256, MD5. The CRCs without a native implementation are table-driven, eight bytes at
// a time (slicing-by-8), so a gigabyte costs seconds of CPU, not minutes.
import { createHash } from 'node:crypto';
import { pipeline, Transform, type Readable } from 'node:stream';
import { crc32 as zlibCrc32 } from 'node:zlib';

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export interface Digest {
  update(chunk: Buffer): void;
  digest(): Buffer;
}

/** A running digest of `algorithm` (md5 too, for Content-MD5). */
export function createDigest(algorithm: ChecksumAlgorithm | 'md5'): Digest {
  switch (algorithm) {
    case 'md5':
    case 'sha1':
    case 'sha256': {
      const hash = createHash(algorithm);
      return { update: (chunk) => void hash.update(chunk), digest: () => hash.digest() };
    }
    case 'crc32': {
      let crc = 0;
      return {
        update: (chunk) => void (crc = zlibCrc32(chunk, crc)),
        digest: () => uint32(crc),
      };
    }
    case 'crc32c': {
      let crc = 0xffffffff;
      return {
        update: (chunk) => void (crc = crc32cUpdate(crc, chunk)),
        digest: () => uint32((crc ^ 0xffffffff) >>> 0),
      };
    }
    case 'crc64nvme': {
      const state = { hi: 0xffffffff, lo: 0xffffffff };
      return {
        update: (chunk) => crc64Update(state, chunk),
        digest: () => {
          const out = Buffer.alloc(8);
          out.writeUInt32BE((state.hi ^ 0xffffffff) >>> 0, 0);
          out.writeUInt32BE((state.lo ^ 0xffffffff) >>> 0, 4);
          return out;
        },
      };
    }
  }
}

function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0, 0);
  return out;
}

/** Slicing-by-8 tables of a reflected 32-bit CRC. */
function tables32(polynomial: number): Uint32Array[] {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ polynomial : c >>> 1;
    tables[0]![n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[0]![n]!;
    for (let t = 1; t < 8; t++) {
      c = tables[0]![c & 0xff]! ^ (c >>> 8);
      tables[t]![n] = c >>> 0;
    }
  }
  return tables;
}

const C = tables32(0x82f63b78); // Castagnoli, reflected

function crc32cUpdate(start: number, data: Buffer): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = C as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let crc = start;
  let i = 0;
  const fast = data.length - (data.length % 8);
  for (; i < fast; i += 8) {
    const a = (crc ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    crc =
      t7[a & 0xff]! ^
      t6[(a >>> 8) & 0xff]! ^
      t5[(a >>> 16) & 0xff]! ^
      t4[a >>> 24]! ^
      t3[data[i + 4]!]! ^
      t2[data[i + 5]!]! ^
      t1[data[i + 6]!]! ^
      t0[data[i + 7]!]!;
  }
  for (; i < data.length; i++) crc = t0[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}

// CRC-64/NVME: reflected polynomial 0x9a6c9329ac4bc9b5, init and final xor all ones. The 64-bit
// state is two 32-bit halves; one table of 256 entries, a byte at a time.
const POLY_HI = 0x9a6c9329;
const POLY_LO = 0xac4bc9b5;
const T64_HI = new Uint32Array(256);
const T64_LO = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let hi = 0;
  let lo = n;
  for (let k = 0; k < 8; k++) {
    const odd = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi = hi >>> 1;
    if (odd) {
      hi = (hi ^ POLY_HI) >>> 0;
      lo = (lo ^ POLY_LO) >>> 0;
    }
  }
  T64_HI[n] = hi;
  T64_LO[n] = lo;
}

function crc64Update(state: { hi: number; lo: number }, data: Buffer): void {
  let { hi, lo } = state;
  for (let i = 0; i < data.length; i++) {
    const index = (lo ^ data[i]!) & 0xff;
    lo = (((lo >>> 8) | (hi << 24)) ^ T64_LO[index]!) >>> 0;
    hi = ((hi >>> 8) ^ T64_HI[index]!) >>> 0;
  }
  state.hi = hi;
  state.lo = lo;
}

/**
 * A multipart upload's COMPOSITE checksum, as S3 forms it: the digest of its parts' digests (each
 * as its bytes, in part order), base64, then "-" and the number of parts.
 */
export function compositeChecksum(algorithm: ChecksumAlgorithm, partDigests: readonly string[]): string {
  const digest = createDigest(algorithm);
  for (const part of partDigests) digest.update(Buffer.from(part, 'base64'));
  return `${digest.digest().toString('base64')}-${partDigests.length}`;
}

/** The algorithms whose value's checksum may be FULL_OBJECT after a multipart upload (a CRC of every byte); the others are COMPOSITE only. */
export const FULL_OBJECT_ALGORITHMS: readonly ChecksumAlgorithm[] = ['crc32', 'crc32c', 'crc64nvme'];

/**
 * `body`'s bytes passed through a running digest of `algorithm`: `value()` is its base64 once
 * the stream has ended (S3 computes a copy's or a completed upload's checksum so, as it stores it).
 * An error of `body` reaches the stream returned.
 */
export function digesting(body: Readable, algorithm: ChecksumAlgorithm): { body: Readable; value: () => string } {
  const digest = createDigest(algorithm);
  let value = '';
  const through = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      digest.update(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      value = digest.digest().toString('base64');
      callback();
    },
  });
  pipeline(body, through, () => undefined);
  return { body: through, value: () => value };
}
