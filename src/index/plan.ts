// A batch of events turned into the index writes it causes, as one flat buffer: what the
// projector commits in one LMDB transaction, and what replay hands to its writer thread (a
// buffer moves between threads without a copy; objects would be cloned).
//
//   kind 1: history row put   u8 kind, u16 key length, key (u16 key length ‖ key ‖ u64 seq),
//                             u32 offset, u32 length: the event's Avro bytes, in a kind 4 run
//   kind 2: key record put    u8 kind, u16 key length, key, u32 value length, value (record.ts)
//   kind 3: key record remove u8 kind, u16 key length, key
//   kind 4: encoded events    u8 kind, u32 length, bytes: no write; history rows point into it
//
// The encoded events are copied a run at a time (a replay copies each block of the log once
// per plan, not each of its events: a million short copies cost a second).
import { encodedKey, type ProjectedEvent } from '../events/event.js';
import { evolve, needsPrevious, type KeyRecord } from './evolve.js';
import { recordBound, writeRecord } from './record.js';

export const HISTORY_PUT = 1;
export const KEY_PUT = 2;
export const KEY_REMOVE = 3;
const ENCODED_EVENTS = 4;

export interface IndexPlan {
  /** The seq of the batch's first event: the index's checkpoint must be one less. */
  firstSeq: number;
  lastSeq: number;
  writes: Buffer;
}

/** What the keys looked like after a batch: undefined for a key the batch removed. */
export type Touched = Map<string, KeyRecord | undefined>;

export class PlanBuilder {
  private buffer: Buffer;
  private length = 0;
  private firstSeq = 0;
  private lastSeq = 0;
  private readonly touched: Touched = new Map();
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
    let before: KeyRecord | undefined;
    if (needsPrevious(event)) {
      if (this.touched.has(key)) before = this.touched.get(key);
      else if (this.previous?.has(key)) before = this.previous.get(key);
      else before = this.lookup(key);
    }
    this.touched.set(key, evolve(before, event));
    if (source !== this.source || start < this.sourceFrom) this.copyEncoded(source, start);
    const keyBytes = encodedKey(source, start);
    const keyLength = keyBytes.end - keyBytes.start;
    this.reserve(1 + 2 + 2 + keyLength + 8 + 4 + 4);
    const buffer = this.buffer;
    let at = this.length;
    buffer[at] = HISTORY_PUT;
    buffer.writeUInt16BE(keyLength + 10, at + 1);
    buffer.writeUInt16BE(keyLength, at + 3);
    at += 5;
    for (let i = keyBytes.start; i < keyBytes.end; i++) buffer[at++] = source[i]!;
    // u64 as two u32 halves: seqs stay below 2^53.
    buffer.writeUInt32BE(Math.floor(event.seq / 2 ** 32), at);
    buffer.writeUInt32BE(event.seq >>> 0, at + 4);
    buffer.writeUInt32BE(this.sourceAt + start - this.sourceFrom, at + 8);
    buffer.writeUInt32BE(end - start, at + 12);
    this.length = at + 16;
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

  /** The plan, and what the batch made of each key it touched. */
  finish(): { plan: IndexPlan; touched: Touched } {
    for (const [key, record] of this.touched) {
      this.reserve(1 + 2 + 3 * key.length + 4 + (record ? recordBound(record) : 0));
      const buffer = this.buffer;
      const start = this.length;
      const keyLength = buffer.write(key, start + 3, 'utf8');
      buffer.writeUInt16BE(keyLength, start + 1);
      const end = start + 3 + keyLength;
      if (record === undefined) {
        buffer[start] = KEY_REMOVE;
        this.length = end;
      } else {
        buffer[start] = KEY_PUT;
        this.length = writeRecord(record, buffer, end + 4);
        buffer.writeUInt32BE(this.length - end - 4, end);
      }
    }
    return {
      plan: { firstSeq: this.firstSeq, lastSeq: this.lastSeq, writes: this.buffer.subarray(0, this.length) },
      touched: this.touched,
    };
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
    if (kind === KEY_REMOVE) {
      write(kind, key, undefined);
    } else if (kind === HISTORY_PUT) {
      const offset = buffer.readUInt32BE(at);
      write(kind, key, buffer.subarray(offset, offset + buffer.readUInt32BE(at + 4)));
      at += 8;
    } else {
      const valueLength = buffer.readUInt32BE(at);
      write(kind, key, buffer.subarray(at + 4, at + 4 + valueLength));
      at += 4 + valueLength;
    }
  }
}
