// aws-chunked: the body framing AWS SDKs use when they stream a PutObject/UploadPart
// (Content-Encoding: aws-chunked, X-Amz-Decoded-Content-Length: N):
//
//   <hex size>[;chunk-signature=<sig>]\r\n <size bytes> \r\n ... 0[;chunk-signature=…]\r\n [trailer: value\r\n]* \r\n
//
// This Transform yields the payload. Signatures and trailing checksums are not checked: the
// master does not authenticate S3 requests, and the md5 it computes is what it records.
import { Transform, type TransformCallback } from 'node:stream';
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

  /** `expected`: X-Amz-Decoded-Content-Length, which the payload must match exactly. */
  constructor(private readonly expected?: number) {
    super();
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
      return callback(new MkvError('MKV_SHORT_BODY', `the aws-chunked body holds ${this.produced} bytes, X-Amz-Decoded-Content-Length says ${this.expected}`));
    }
    callback();
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

  private drain(): void {
    while (this.pending.length > 0 && !this.finished) {
      if (this.left > 0) {
        const take = Math.min(this.left, this.pending.length);
        this.produced += take;
        if (this.expected !== undefined && this.produced > this.expected) {
          throw new MkvError('MKV_BAD_REQUEST', `the aws-chunked body holds more than X-Amz-Decoded-Content-Length (${this.expected} bytes)`);
        }
        this.push(this.pending.subarray(0, take));
        this.pending = this.pending.subarray(take);
        this.left -= take;
        if (this.left === 0) this.afterData = true;
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
        if (text === '') this.finished = true;
        continue;
      }
      const size = /^([0-9a-fA-F]{1,16})(;.*)?$/.exec(text);
      if (!size) throw new MkvError('MKV_BAD_REQUEST', `malformed aws-chunked body (chunk header ${JSON.stringify(text.slice(0, 40))})`);
      this.left = parseInt(size[1]!, 16);
      if (this.left === 0) this.inTrailers = true;
    }
  }
}
