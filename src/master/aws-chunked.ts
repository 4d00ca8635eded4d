// aws-chunked: the body framing AWS SDKs use when they stream a PutObject/UploadPart
// (Content-Encoding: aws-chunked, X-Amz-Decoded-Content-Length: N):
//
//   <hex size>[;chunk-signature=<sig>]\r\n <size bytes> \r\n ... 0[;chunk-signature=…]\r\n [trailer: value\r\n]* \r\n
//
// This Transform yields the payload. Given the request's signing (a STREAMING-AWS4-HMAC-SHA256
// payload), every chunk's signature is checked as its last byte arrives, each chained from the
// one before, so a body altered on the way is refused before the master acts on it; so is the
// trailer's signature, when it has one. The latest bytes are held back until the body has ended
// well (its final chunk, its trailer, its declared length): nothing reaches a volume whole that
// fails. Without signing (no credentials, or an unsigned payload) signatures are not read. A
// checksum in the trailer (x-amz-checksum-ALGORITHM, promised by the request's x-amz-trailer) is
// checked against the payload the same way: a body that does not match it never ends well.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { checksumCheck, type DigestCheck } from '../auth/body-check.js';
import { chunkSignature, sameSignature, trailerSignature, type ChunkSigning } from '../auth/sigv4.js';
import { createDigest, type ChecksumAlgorithm, type Digest } from '../checksums.js';
import { MkvError } from '../errors.js';

export interface AwsChunkedOptions {
  /** X-Amz-Decoded-Content-Length, which the payload must match exactly. */
  expected?: number;
  /** The request's, when its chunks must be signed. */
  signing?: ChunkSigning;
  /** Its trailer must be signed too (a STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER payload). */
  signedTrailer?: boolean;
  /** The checksum the request's x-amz-trailer promises the trailer carries. */
  trailerChecksum?: { name: string; algorithm: ChecksumAlgorithm };
}

const MAX_HEADER_LINE = 4096;

export class AwsChunkedDecoder extends Transform {
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes of payload left in the current chunk; -1 while reading a chunk header line. */
  private left = -1;
  private afterData = false;
  private inTrailers = false;
  private finished = false;
  /** Payload bytes passed on so far. */
  private produced = 0;
  /** The signature the current chunk claims, and the hash of its data so far. */
  private claimed = '';
  private chunkHash: Hash | undefined;
  /** The last signature checked: the next one chains from it. */
  private previous: string;
  private trailers = '';
  /** The latest payload bytes, passed on only when more come or the body has ended well. */
  private held: Buffer | undefined;

  /** The trailer's signature has been checked: nothing may follow it. */
  private trailerChecked = false;
  private readonly expected: number | undefined;
  private readonly signing: ChunkSigning | undefined;
  private readonly signedTrailer: boolean;
  private readonly promised: AwsChunkedOptions['trailerChecksum'];
  /** The payload's digest for each checksum the trailer may carry (the promised one, and any it brings). */
  private readonly digests = new Map<ChecksumAlgorithm, Digest>();
  /** The checksums the trailer carried, by header name. */
  private readonly carried = new Map<string, string>();

  constructor(options: AwsChunkedOptions = {}) {
    super();
    this.expected = options.expected;
    this.signing = options.signing;
    this.signedTrailer = options.signedTrailer ?? false;
    this.promised = options.trailerChecksum;
    if (this.promised) this.digests.set(this.promised.algorithm, createDigest(this.promised.algorithm));
    this.previous = this.signing?.seed ?? '';
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    try {
      this.drain();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (!this.finished) return callback(new MkvError('MKV_SHORT_BODY', 'the aws-chunked body ended before its final chunk'));
    if (this.expected !== undefined && this.produced !== this.expected) {
      return callback(
        new MkvError(
          'MKV_SHORT_BODY',
          `the aws-chunked body holds ${this.produced} bytes, X-Amz-Decoded-Content-Length says ${this.expected}`,
        ),
      );
    }
    try {
      this.checkTrailerChecksums();
    } catch (error) {
      return callback(error as Error);
    }
    if (this.held) this.push(this.held);
    this.held = undefined;
    callback();
  }

  /** The checksum the trailer carried (checked once the body has ended well), if any. */
  trailerChecksum(): { algorithm: ChecksumAlgorithm; value: string } | undefined {
    for (const [name, value] of this.carried) return { algorithm: name.slice('x-amz-checksum-'.length) as ChecksumAlgorithm, value };
    return undefined;
  }

  private pass(data: Buffer): void {
    for (const digest of this.digests.values()) digest.update(data);
    if (this.held) this.push(this.held);
    this.held = data;
  }

  /** The payload against the checksums its trailer carried, and the one it promised. */
  private checkTrailerChecksums(): void {
    if (this.promised && !this.carried.has(this.promised.name))
      throw new MkvError('MKV_BAD_REQUEST', `the aws-chunked body's trailer lacks the ${this.promised.name} its x-amz-trailer promised`);
    for (const [name, value] of this.carried) {
      const check: DigestCheck = checksumCheck(name, value);
      const digest = this.digests.get(check.algorithm as ChecksumAlgorithm);
      if (!digest)
        throw new MkvError('MKV_BAD_REQUEST', `the aws-chunked body's trailer carries ${name}, which its x-amz-trailer did not promise`);
      check.verify(digest.digest());
    }
  }

  private line(): string | undefined {
    const end = this.pending.indexOf('\r\n');
    if (end === -1) {
      if (this.pending.length > MAX_HEADER_LINE) throw new MkvError('MKV_BAD_REQUEST', 'malformed aws-chunked body (header line too long)');
      return undefined;
    }
    const text = this.pending.subarray(0, end).toString('latin1');
    this.pending = this.pending.subarray(end + 2);
    return text;
  }

  /** Checks the signature of the chunk whose data just ended (or the final, empty one). */
  private checkChunk(): void {
    if (!this.signing) return;
    const expected = chunkSignature(this.signing, this.previous, this.chunkHash!.digest('hex'));
    if (!sameSignature(expected, this.claimed))
      throw new MkvError('MKV_SIGNATURE', 'a chunk of the aws-chunked body does not match its signature');
    this.previous = this.claimed;
  }

  private trailerLine(text: string): void {
    if (text === '') {
      if (this.signing && this.signedTrailer && !this.trailerChecked)
        throw new MkvError('MKV_SIGNATURE', 'the trailer of the aws-chunked body carries no x-amz-trailer-signature');
      this.finished = true;
      return;
    }
    if (this.trailerChecked) throw new MkvError('MKV_SIGNATURE', 'a trailer of the aws-chunked body follows its signature, unsigned');
    const signature = /^x-amz-trailer-signature:(.*)$/i.exec(text);
    if (!signature) {
      const name = text.slice(0, text.indexOf(':')).trim().toLowerCase();
      const value = text.slice(text.indexOf(':') + 1).trim();
      this.trailers += `${name}:${value}\n`;
      if (name.startsWith('x-amz-checksum-')) this.carried.set(name, value);
      return;
    }
    if (this.signing && !sameSignature(trailerSignature(this.signing, this.previous, this.trailers), signature[1]!.trim())) {
      throw new MkvError('MKV_SIGNATURE', 'the trailer of the aws-chunked body does not match its signature');
    }
    this.trailerChecked = true;
  }

  private drain(): void {
    while (this.pending.length > 0 && !this.finished) {
      if (this.left > 0) {
        const take = Math.min(this.left, this.pending.length);
        const data = this.pending.subarray(0, take);
        this.produced += take;
        if (this.expected !== undefined && this.produced > this.expected) {
          throw new MkvError(
            'MKV_BAD_REQUEST',
            `the aws-chunked body holds more than X-Amz-Decoded-Content-Length (${this.expected} bytes)`,
          );
        }
        this.chunkHash?.update(data);
        this.pending = this.pending.subarray(take);
        this.left -= take;
        if (this.left === 0) {
          // Checked before the chunk's last bytes go on: nothing unsigned reaches a volume whole.
          this.checkChunk();
          this.afterData = true;
        }
        this.pass(data);
        continue;
      }
      const text = this.line();
      if (text === undefined) return;
      if (this.afterData) {
        if (text !== '') throw new MkvError('MKV_BAD_REQUEST', 'malformed aws-chunked body (no CRLF after a chunk)');
        this.afterData = false;
        this.left = -1;
        continue;
      }
      if (this.inTrailers) {
        this.trailerLine(text);
        continue;
      }
      const header = /^([0-9a-fA-F]{1,16})(?:;chunk-signature=([0-9a-f]{64}))?(;.*)?$/.exec(text);
      if (!header) throw new MkvError('MKV_BAD_REQUEST', `malformed aws-chunked body (chunk header ${JSON.stringify(text.slice(0, 40))})`);
      if (this.signing && header[2] === undefined)
        throw new MkvError('MKV_SIGNATURE', 'a chunk of the aws-chunked body carries no chunk-signature');
      this.claimed = header[2] ?? '';
      this.chunkHash = this.signing ? createHash('sha256') : undefined;
      this.left = parseInt(header[1]!, 16);
      if (this.left === 0) {
        this.checkChunk();
        this.inTrailers = true;
      }
    }
  }
}
