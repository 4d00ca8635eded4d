// The key index: an LMDB environment in <db>/index/ that is a projection of the event log.
//
//   keys     key (UTF-8 bytes)                          → KeyRecord (msgpack)
//   history  u16 key length ‖ key bytes ‖ u64 seq (BE)  → the event's Avro bytes, as in the log
//   meta     "checkpoint"                               → seq of the last event applied
//
// apply() writes a batch's records, history rows and the checkpoint in one transaction, so
// each event is applied exactly once: after a crash, replay starts at checkpoint + 1.
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { MkvError } from '../errors.js';
import { decodeEvent, encodeEvent, type LogEvent } from '../events/event.js';
import { evolve, needsPrevious, type KeyRecord, type KeyState } from './evolve.js';

/** LMDB's key limit is 1978 bytes; a history row adds 10 bytes to the key. */
export const MAX_KEY_BYTES = 1968;
export const MAX_LIST_KEYS = 1_000_000;

export interface ListOptions {
  prefix: string;
  /** The states to list. */
  states: readonly KeyState[];
  /** Resume at this key (inclusive). */
  start?: string;
  limit?: number;
}

export interface ListPage {
  keys: string[];
  /** The first key not returned when a limit cut the page short, else "". */
  next: string;
}

function historyKey(key: Buffer, seq: number): Buffer {
  const row = Buffer.alloc(2 + key.length + 8);
  row.writeUInt16BE(key.length, 0);
  key.copy(row, 2);
  row.writeBigUInt64BE(BigInt(seq), 2 + key.length);
  return row;
}

/** The smallest byte string greater than every string that starts with `prefix` (undefined: none). */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
}

export class IndexStore {
  private readonly env: RootDatabase;
  private readonly keys: Database<KeyRecord, Buffer>;
  private readonly history: Database<Buffer, Buffer>;
  private readonly meta: Database<number, string>;

  private constructor(env: RootDatabase) {
    this.env = env;
    this.keys = env.openDB<KeyRecord, Buffer>({ name: 'keys', keyEncoding: 'binary' });
    this.history = env.openDB<Buffer, Buffer>({ name: 'history', keyEncoding: 'binary', encoding: 'binary' });
    this.meta = env.openDB<number, string>({ name: 'meta' });
  }

  static open(dir: string, options: { readOnly?: boolean } = {}): IndexStore {
    if (!options.readOnly) mkdirSync(dir, { recursive: true });
    // The log is the durable copy: the index may trail it after a crash, and replay catches up.
    // noSubdir: false, or lmdb-js takes a directory name with a dot in it for a file name.
    const env = open({ path: dir, maxDbs: 4, readOnly: options.readOnly ?? false, noSubdir: false });
    return new IndexStore(env);
  }

  /**
   * Drops this process's cached read snapshot, so the next read sees the last commit. lmdb-js
   * renews it on a later event turn by itself; a process that learns of another process's commit
   * (an HTTP worker told by the writer) calls this to read that commit at once.
   */
  refresh(): void {
    this.env.resetReadTxn();
  }

  get checkpoint(): number {
    return this.meta.get('checkpoint') ?? 0;
  }

  /** Sets where an empty index starts: a compacted log's first seq less one. */
  async setCheckpoint(seq: number): Promise<void> {
    await this.meta.put('checkpoint', seq);
  }

  get(key: string): KeyRecord | undefined {
    return this.keys.get(Buffer.from(key, 'utf8'));
  }

  /**
   * Applies events (in seq order, following the checkpoint) in one transaction. `blocking` runs
   * it synchronously — faster for replays, where nothing else waits on the event loop; the
   * live writer leaves it asynchronous so requests keep flowing during the commit.
   */
  async apply(events: LogEvent[], options: { blocking?: boolean } = {}): Promise<void> {
    if (events.length === 0) return;
    const checkpoint = this.checkpoint;
    if (events[0]!.seq !== checkpoint + 1) {
      throw new MkvError('MKV_INTERNAL', `projector expected seq ${checkpoint + 1}, got ${events[0]!.seq}`);
    }
    const write = () => {
      // Several events of one batch may touch one key: evolve from what this batch wrote.
      const touched = new Map<string, KeyRecord | undefined>();
      const keyBytes = new Map<string, Buffer>();
      for (const event of events) {
        let bytes = keyBytes.get(event.key);
        if (!bytes) {
          bytes = Buffer.from(event.key, 'utf8');
          keyBytes.set(event.key, bytes);
        }
        const before = !needsPrevious(event) ? undefined : touched.has(event.key) ? touched.get(event.key) : this.keys.get(bytes);
        touched.set(event.key, evolve(before, event));
        this.history.put(historyKey(bytes, event.seq), encodeEvent(event));
      }
      for (const [key, record] of touched) {
        if (record) this.keys.put(keyBytes.get(key)!, record);
        else this.keys.remove(keyBytes.get(key)!);
      }
      this.meta.put('checkpoint', events.at(-1)!.seq);
    };
    if (options.blocking) this.env.transactionSync(write);
    else await this.env.transaction(write);
  }

  /** Keys in one of `states` that start with `prefix`, sorted bytewise. */
  list(options: ListOptions): ListPage {
    const prefix = Buffer.from(options.prefix, 'utf8');
    const start = options.start !== undefined ? Buffer.from(options.start, 'utf8') : undefined;
    const from = start && Buffer.compare(start, prefix) > 0 ? start : prefix;
    const end = prefixEnd(prefix);
    const keys: string[] = [];
    let next = '';
    for (const { key, value } of this.keys.getRange({ start: from, ...(end ? { end } : {}) })) {
      if (!options.states.includes(value.state)) continue;
      if (options.limit !== undefined && keys.length === options.limit) {
        next = key.toString('utf8');
        break;
      }
      if (options.limit === undefined && keys.length >= MAX_LIST_KEYS) {
        throw new MkvError('MKV_TOO_MANY_KEYS', `more than ${MAX_LIST_KEYS} keys match; page with &limit=N`);
      }
      keys.push(key.toString('utf8'));
    }
    return { keys, next };
  }

  /** Every event of a key, oldest first. */
  historyOf(key: string): LogEvent[] {
    const keyBytes = Buffer.from(key, 'utf8');
    const start = historyKey(keyBytes, 0);
    const end = prefixEnd(start.subarray(0, 2 + keyBytes.length))!;
    return [...this.history.getRange({ start, end })].map(({ value }) => decodeEvent(value).event);
  }

  /** The seq of the key's last event (0: none), deleted keys included: their history stays. */
  lastSeqOf(key: string): number {
    const keyBytes = Buffer.from(key, 'utf8');
    const start = historyKey(keyBytes, 0);
    const end = prefixEnd(start.subarray(0, 2 + keyBytes.length))!;
    for (const { key: row } of this.history.getRange({ start: end, end: start, reverse: true, limit: 1 })) {
      return Number(row.readBigUInt64BE(row.length - 8));
    }
    return 0;
  }

  /** Records from `start` (inclusive) to `end` (exclusive, bytewise), in key order. */
  *range(start: Buffer, end?: Buffer): Generator<[string, KeyRecord]> {
    for (const { key, value } of this.keys.getRange({ start, ...(end ? { end } : {}) })) yield [key.toString('utf8'), value];
  }

  /** How many keys the index holds (any state). */
  count(): number {
    return this.keys.getKeysCount();
  }

  /**
   * Every key record, in key order. Read a page at a time, each page whole before it is handed
   * out, so no LMDB read transaction stays open while the caller awaits (and appends events):
   * an iterator held across writes can miss keys, and a long-lived reader pins old pages.
   */
  *entries(pageSize = 1000): Generator<[string, KeyRecord]> {
    let start: Buffer | undefined;
    for (;;) {
      const page = [...this.keys.getRange({ ...(start ? { start } : {}), limit: pageSize })];
      for (const { key, value } of page) yield [key.toString('utf8'), value];
      if (page.length < pageSize) return;
      start = Buffer.concat([page.at(-1)!.key, Buffer.from([0])]);
    }
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}
