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
// fails. Without signing (no credentials, or an unsigned
// payload) signatures are not read. Trailing checksums are not checked: the md5 the master
// computes is what it records.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { chunkSignature, sameSignature, trailerSignature, type ChunkSigning } from '../../auth/sigv4.js';
import { MkvError } from '../../errors.js';

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

  /**
   * `expected`: X-Amz-Decoded-Content-Length, which the payload must match exactly;
   * `signing`: the request's, when its chunks must be signed; `signedTrailer`: its trailer too
   * (a STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER payload).
   */
  constructor(
    private readonly expected?: number,
    private readonly signing?: ChunkSigning,
    private readonly signedTrailer = false,
  ) {
    super();
    this.previous = signing?.seed ?? '';
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
    if (this.held) this.push(this.held);
    this.held = undefined;
    callback();
  }

  private pass(data: Buffer): void {
    if (this.held) this.push(this.held);
    this.held = data;
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
      this.trailers += `${text.slice(0, text.indexOf(':')).trim().toLowerCase()}:${text.slice(text.indexOf(':') + 1).trim()}\n`;
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
