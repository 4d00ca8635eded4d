// A batch of events turned into the index writes it causes, as one flat buffer: what the
// projector commits in one LMDB transaction, and what replay hands to its writer thread (a
// buffer moves between threads without a copy; objects would be cloned).
//
//   kind 1: history row put   u8 kind, u16 key length, key (u16 key length ‖ key ‖ u64 seq),
//                             u32 offset, u32 length: the event's Avro bytes, in a kind 4 run
//   kind 2: key record put    u8 kind, u16 key length, key, u32 value length, value (record.ts)
//   kind 3: key record remove u8 kind, u16 key length, key, u32 0
//   kind 4: encoded events    u8 kind, u32 length, bytes: no write; history rows point into it
//   kind 5: bucket record put u8 kind, u16 name length, name, u32 value length, value (buckets.ts)
//   kind 6: bucket remove     u8 kind, u16 name length, name, u32 0
//
// The encoded events are copied a run at a time (a replay copies each block of the log once
// per plan, not each of its events: a million short copies cost a second). A key's history row is
// written as its event comes; its record only once, when the plan is finished, whatever number of
// the batch's events changed it: in a replay, a key written (WriteStarted, WriteCommitted) is
// encoded once, and its pending record is never decoded back to be committed.
import { encodedKey, isBucketChange, type ProjectedEvent } from '../events/event.js';
import { bucketRecordBound, evolveBucket, writeBucketRecord, type BucketRecord } from './buckets.js';
import { evolve, needsPrevious, type KeyRecord } from './evolve.js';
import { recordBound, writeRecord } from './record.js';

export const HISTORY_PUT = 1;
export const KEY_PUT = 2;
export const KEY_REMOVE = 3;
const ENCODED_EVENTS = 4;
export const BUCKET_PUT = 5;
export const BUCKET_REMOVE = 6;

export interface IndexPlan {
  /** The seq of the batch's first event: the index's checkpoint must be one less. */
  firstSeq: number;
  lastSeq: number;
  writes: Buffer;
}

/**
 * Writes a history row's key — u16 key length ‖ key ‖ u64 seq, big-endian, so a key's rows sort
 * by seq — at `at`, the key's UTF-8 bytes taken from source[keyStart, keyEnd); returns the end.
 */
export function writeHistoryKey(target: Buffer, at: number, source: Buffer, keyStart: number, keyEnd: number, seq: number): number {
  target.writeUInt16BE(keyEnd - keyStart, at);
  let to = at + 2;
  for (let i = keyStart; i < keyEnd; i++) target[to++] = source[i]!;
  // u64 as two u32 halves: seqs stay below 2^53.
  target.writeUInt32BE(Math.floor(seq / 2 ** 32), to);
  target.writeUInt32BE(seq >>> 0, to + 4);
  return to + 8;
}

/** What a batch made of the keys it touched: each one's record after it (undefined: removed). */
export type Touched = ReadonlyMap<string, { readonly record: KeyRecord | undefined }>;

/** A key the batch touched: its record now, and where its UTF-8 bytes are (in an event's encoding). */
interface KeyOp {
  record: KeyRecord | undefined;
  source: Buffer;
  keyStart: number;
  keyEnd: number;
}

export class PlanBuilder {
  private buffer: Buffer;
  private length = 0;
  private firstSeq = 0;
  private lastSeq = 0;
  /** Each key the batch touched, in the order it first did. */
  private readonly keys = new Map<string, KeyOp>();
  /** Each bucket the batch created or deleted, and its record after the last of them. */
  private readonly buckets = new Map<string, { record: BucketRecord | undefined; source: Buffer; keyStart: number; keyEnd: number }>();
  /** The buffer of the last run of encoded events copied in, the offset it was copied from, and where it went. */
  private source: Buffer | undefined;
  private sourceFrom = 0;
  private sourceAt = 0;

  /**
   * lookup reads a key's record as committed; `previous` holds what an earlier batch, not yet
   * committed, made of the keys it touched (replay plans a batch while the last one commits).
   */
  constructor(
    private readonly lookup: (key: string) => KeyRecord | undefined,
    private readonly previous?: Touched,
    capacity = 4096,
  ) {
    this.buffer = Buffer.allocUnsafeSlow(capacity);
  }

  /**
   * Adds an event, in seq order. Its Avro encoding, as in the log, is source[start, end). The
   * plan copies the source from `start` to its end once, for this event and those after it in
   * the same source (a block of the log); the history row's key takes the key's UTF-8 bytes
   * from the encoding.
   */
  add(event: ProjectedEvent, source: Buffer, start = 0, end = source.length): void {
    if (this.firstSeq === 0) this.firstSeq = event.seq;
    else if (event.seq !== this.lastSeq + 1) throw new Error(`plan: seq ${event.seq} after ${this.lastSeq}`);
    this.lastSeq = event.seq;
    const key = event.key;
    const bucket = isBucketChange(event.change);
    const op = bucket ? undefined : this.keys.get(key);
    let before: KeyRecord | undefined;
    if (!bucket && needsPrevious(event)) {
      if (op !== undefined) before = op.record;
      else {
        const earlier = this.previous?.get(key);
        before = earlier !== undefined ? earlier.record : this.lookup(key);
      }
    }
    const after = bucket ? undefined : evolve(before, event);
    if (source !== this.source || start < this.sourceFrom) this.copyEncoded(source, start);
    const keyBytes = encodedKey(source, start);
    const keyLength = keyBytes.end - keyBytes.start;
    this.reserve(1 + 2 + 2 + keyLength + 8 + 4 + 4);
    const buffer = this.buffer;
    let at = this.length;
    buffer[at] = HISTORY_PUT;
    buffer.writeUInt16BE(keyLength + 10, at + 1);
    at = writeHistoryKey(buffer, at + 3, source, keyBytes.start, keyBytes.end, event.seq);
    buffer.writeUInt32BE(this.sourceAt + start - this.sourceFrom, at);
    buffer.writeUInt32BE(end - start, at + 4);
    this.length = at + 8;
    if (bucket) this.buckets.set(key, { record: evolveBucket(event), source, keyStart: keyBytes.start, keyEnd: keyBytes.end });
    else if (op !== undefined) op.record = after;
    else this.keys.set(key, { record: after, source, keyStart: keyBytes.start, keyEnd: keyBytes.end });
  }

  /** Appends the put (or the remove) of a key's record. */
  private addRecordOp({ record, source, keyStart, keyEnd }: KeyOp): void {
    const keyLength = keyEnd - keyStart;
    this.reserve(1 + 2 + keyLength + 4 + (record ? recordBound(record) : 0));
    const buffer = this.buffer;
    const start = this.length;
    buffer[start] = record ? KEY_PUT : KEY_REMOVE;
    buffer.writeUInt16BE(keyLength, start + 1);
    let at = start + 3;
    for (let i = keyStart; i < keyEnd; i++) buffer[at++] = source[i]!;
    const end = record ? writeRecord(record, buffer, at + 4) : at + 4;
    buffer.writeUInt32BE(end - at - 4, at);
    this.length = end;
  }

  /** Appends the put (or the remove) of a bucket's record. */
  private addBucketOp(record: BucketRecord | undefined, source: Buffer, keyStart: number, keyEnd: number): void {
    const nameLength = keyEnd - keyStart;
    this.reserve(1 + 2 + nameLength + 4 + bucketRecordBound(record));
    const buffer = this.buffer;
    buffer[this.length] = record ? BUCKET_PUT : BUCKET_REMOVE;
    buffer.writeUInt16BE(nameLength, this.length + 1);
    let at = this.length + 3;
    for (let i = keyStart; i < keyEnd; i++) buffer[at++] = source[i]!;
    const end = record ? writeBucketRecord(record, buffer, at + 4) : at + 4;
    buffer.writeUInt32BE(end - at - 4, at);
    this.length = end;
  }

  /** Copies source[start, its end) into the plan as a run of encoded events. */
  private copyEncoded(source: Buffer, start: number): void {
    const length = source.length - start;
    this.reserve(1 + 4 + length);
    const at = this.length;
    this.buffer[at] = ENCODED_EVENTS;
    this.buffer.writeUInt32BE(length, at + 1);
    source.copy(this.buffer, at + 5, start);
    this.source = source;
    this.sourceFrom = start;
    this.sourceAt = at + 5;
    this.length = at + 5 + length;
  }

  /** The plan, with each touched key's record as the batch left it. Its buffer is the builder's: add nothing after. */
  finish(): IndexPlan {
    for (const op of this.keys.values()) this.addRecordOp(op);
    for (const op of this.buckets.values()) this.addBucketOp(op.record, op.source, op.keyStart, op.keyEnd);
    return { firstSeq: this.firstSeq, lastSeq: this.lastSeq, writes: this.buffer.subarray(0, this.length) };
  }

  /** What the batch made of the keys it touched (a view: add nothing after). */
  touched(): Touched {
    return this.keys;
  }

  private reserve(bytes: number): void {
    const needed = this.length + bytes;
    if (needed <= this.buffer.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(needed, 2 * this.buffer.length));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }
}

/** Calls `write` for each write of the plan, with views into its buffer. */
export function forEachWrite(plan: IndexPlan, write: (kind: number, key: Buffer, value: Buffer | undefined) => void): void {
  const buffer = plan.writes;
  let at = 0;
  while (at < buffer.length) {
    const kind = buffer[at]!;
    if (kind === ENCODED_EVENTS) {
      at += 5 + buffer.readUInt32BE(at + 1);
      continue;
    }
    const keyLength = buffer.readUInt16BE(at + 1);
    const key = buffer.subarray(at + 3, at + 3 + keyLength);
    at += 3 + keyLength;
    if (kind === HISTORY_PUT) {
      const offset = buffer.readUInt32BE(at);
      write(kind, key, buffer.subarray(offset, offset + buffer.readUInt32BE(at + 4)));
      at += 8;
      continue;
    }
    const valueLength = buffer.readUInt32BE(at);
    if (kind === KEY_PUT || kind === BUCKET_PUT) write(kind, key, buffer.subarray(at + 4, at + 4 + valueLength));
    else if (kind === KEY_REMOVE || kind === BUCKET_REMOVE) write(kind, key, undefined);
    at += 4 + valueLength;
  }
}
