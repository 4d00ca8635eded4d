// The key index: an LMDB environment in <db>/index/ that is a projection of the event log.
//
//   keys     key (UTF-8 bytes)                          → KeyRecord (record.ts's layout)
//   history  u16 key length ‖ key bytes ‖ u64 seq (BE)  → the event's Avro bytes, as in the log
//   buckets  bucket name (UTF-8)                        → BucketRecord (buckets.ts): the buckets S3 clients created
//   meta     "checkpoint"                               → seq of the last event applied
//            "format"                                   → INDEX_FORMAT
//            "events"                                   → the event schema's fingerprint (history rows are in its encoding)
//
// apply() writes a batch's records, history rows and the checkpoint in one transaction, so
// each event is applied exactly once: after a crash, replay starts at checkpoint + 1.
//
// The index is written without fsync (LMDB's noSync): the log is the durable copy, and an
// fsync'd LMDB commit costs some twenty unsynced ones (docs/design-figures.md). What noSync
// gives up is integrity across a crash of the machine — the kernel may have written some of a
// commit's pages and not others — never across a crash of the process, whose writes the page
// cache keeps. So a writable index carries an UNSYNCED marker naming the machine's boot while it
// is open; close() fsyncs the data file and removes it. An index whose marker names an earlier
// boot is refused (MKV_INDEX_TORN): the server sets it aside and rebuilds it from the log.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { fsyncPath, writeFileDurably } from '../durable-files.js';
import { MkvError } from '../errors.js';
import { decodeEvent, encodeEvent, eventType, type LogEvent } from '../events/event.js';
import type { KeyRecord, KeyState } from './evolve.js';
import { BUCKET_PUT, BUCKET_REMOVE, forEachWrite, HISTORY_PUT, KEY_PUT, PlanBuilder, writeHistoryKey, type IndexPlan } from './plan.js';
import { decodeBucketRecord, type BucketRecord } from './buckets.js';
import { decodeRecord, recordState } from './record.js';

/** The layout of the index's records; 1 (no "format" in meta) stored them as msgpack. */
export const INDEX_FORMAT = 4;

/**
 * The event schema an index's history rows are written in: 48 bits of the fingerprint of its
 * canonical form (docs aside), a number as every meta value is.
 */
const EVENT_SCHEMA_FINGERPRINT = eventType.fingerprint('sha256').readUIntBE(0, 6);

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

/** Opens the LMDB environment of an index; noSubdir: false, or lmdb-js takes a directory name with a dot in it for a file name. */
function openEnv(dir: string, readOnly: boolean, noSync: boolean): RootDatabase {
  return open({ path: dir, maxDbs: 8, readOnly, noSubdir: false, ...(noSync ? { noSync: true } : {}) });
}

function historyKey(key: Buffer, seq: number): Buffer {
  const row = Buffer.allocUnsafe(2 + key.length + 8);
  writeHistoryKey(row, 0, key, 0, key.length, seq);
  return row;
}

/** A bound of a listing, which LMDB takes only as long as a key may be: a longer one is the client's mistake (400). */
function checkBound(bound: Buffer, what: string): Buffer {
  if (bound.length > MAX_KEY_BYTES)
    throw new MkvError('MKV_BAD_QUERY', `${what} is ${bound.length} bytes; a key is at most ${MAX_KEY_BYTES}`);
  return bound;
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

/** The marker file of an index open without fsync; it holds the boot id it was opened under. */
export const UNSYNCED_MARKER = 'UNSYNCED';

/** This boot of the machine (Linux); undefined where the kernel does not say, and then the index is fsync'd. */
function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why the index in `dir` cannot be trusted — it was open without fsync when the machine went
 * down — or undefined when it can.
 */
export function tornByRestart(dir: string): string | undefined {
  let openedUnder: string;
  try {
    openedUnder = readFileSync(join(dir, UNSYNCED_MARKER), 'utf8').trim();
  } catch {
    return undefined;
  }
  const now = bootId();
  if (now !== undefined && openedUnder === now) return undefined; // the process died, the machine did not
  return `the machine restarted while the index was open without fsync (boot ${openedUnder || 'unknown'}), so its pages may be torn`;
}

export class IndexStore {
  private readonly env: RootDatabase;
  private readonly keys: Database<Buffer, Buffer>;
  private readonly history: Database<Buffer, Buffer>;
  private readonly meta: Database<number, string>;
  /** Undefined in an index opened read-only that has none (one written before buckets were projected: none created). */
  private readonly buckets: Database<Buffer, Buffer> | undefined;

  private constructor(
    env: RootDatabase,
    readonly dir: string,
    /** Whether this store holds the index open without fsync (its UNSYNCED marker is then present). */
    private readonly unsynced: boolean,
  ) {
    this.env = env;
    this.keys = env.openDB<Buffer, Buffer>({ name: 'keys', keyEncoding: 'binary', encoding: 'binary' });
    this.history = env.openDB<Buffer, Buffer>({ name: 'history', keyEncoding: 'binary', encoding: 'binary' });
    this.meta = env.openDB<number, string>({ name: 'meta' });
    // lmdb-js gives undefined (its types do not say so) for a database a read-only env does not have.
    this.buckets = env.openDB<Buffer, Buffer>({ name: 'buckets', keyEncoding: 'binary', encoding: 'binary' });
  }

  static open(dir: string, options: { readOnly?: boolean } = {}): IndexStore {
    const torn = tornByRestart(dir);
    if (torn) {
      throw new MkvError(
        'MKV_INDEX_TORN',
        `the index in ${dir} cannot be trusted: ${torn}. Starting mkv server rebuilds it from the log (or: mkv rebuild --db DIR --from-log)`,
      );
    }
    const readOnly = options.readOnly ?? false;
    const boot = readOnly ? undefined : bootId();
    if (!readOnly) {
      mkdirSync(dir, { recursive: true });
      // Durable before the first unsynced commit, or a torn index could go unnoticed.
      if (boot !== undefined) writeFileDurably(join(dir, UNSYNCED_MARKER), `${boot}\n`);
    }
    // The log is the durable copy: the index may trail it after a crash, and replay catches up.
    const store = new IndexStore(openEnv(dir, readOnly, boot !== undefined), dir, boot !== undefined);
    try {
      store.checkFormat(readOnly);
    } catch (error) {
      store.env.close().catch(() => undefined); // the format error is what to report
      throw error;
    }
    return store;
  }

  /**
   * The index another IndexStore of this process holds open, for a worker thread to write to
   * (lmdb-js shares one LMDB environment between a process's threads). Its close() leaves the
   * UNSYNCED marker and the final fsync to the store that opened it.
   */
  static attach(dir: string): IndexStore {
    return new IndexStore(openEnv(dir, false, bootId() !== undefined), dir, false);
  }

  /**
   * An index of another format is refused; the server sets it aside and rebuilds it from the log.
   * So is one whose history rows another event schema encoded (a build before a field was added):
   * the log is read through avsc's resolver, but rows are read as this build writes them.
   */
  private checkFormat(readOnly: boolean): void {
    const format = this.meta.get('format') ?? (this.meta.get('checkpoint') === undefined && this.count() === 0 ? undefined : 1);
    if (format === undefined) {
      if (!readOnly)
        this.meta.transactionSync(() => {
          this.meta.putSync('format', INDEX_FORMAT);
          this.meta.putSync('events', EVENT_SCHEMA_FINGERPRINT);
        });
      return;
    }
    const rebuild = 'Starting mkv server rebuilds it from the log (or: mkv rebuild --db DIR --from-log)';
    if (format !== INDEX_FORMAT)
      throw new MkvError(
        'MKV_INDEX_FORMAT',
        `the index in ${this.dir} has format ${format}, this version reads format ${INDEX_FORMAT}. ${rebuild}`,
      );
    if (this.meta.get('events') !== EVENT_SCHEMA_FINGERPRINT)
      throw new MkvError('MKV_INDEX_FORMAT', `the index in ${this.dir} holds events of an earlier schema. ${rebuild}`);
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
    const bytes = this.keys.getBinaryFast(Buffer.from(key, 'utf8'));
    return bytes === undefined ? undefined : decodeRecord(bytes);
  }

  /**
   * Applies events (in seq order, following the checkpoint) in one transaction, committed
   * synchronously: unsynced, a commit is a few page writes, cheaper than handing it to lmdb-js's
   * write thread and waiting for it (docs/design-figures.md).
   */
  apply(events: LogEvent[]): void {
    if (events.length === 0) return;
    this.env.transactionSync(() => {
      const builder = new PlanBuilder((key) => this.get(key));
      for (const event of events) builder.add(event, encodeEvent(event));
      this.writeNow(builder.finish());
    });
  }

  /** Writes a plan (PlanBuilder) in one transaction: its rows, its records and the checkpoint. */
  write(plan: IndexPlan): void {
    this.env.transactionSync(() => this.writeNow(plan));
  }

  private writeNow(plan: IndexPlan): void {
    const checkpoint = this.checkpoint;
    if (plan.firstSeq !== checkpoint + 1) {
      throw new MkvError('MKV_INTERNAL', `projector expected seq ${checkpoint + 1}, got ${plan.firstSeq}`);
    }
    forEachWrite(plan, (kind, key, value) => {
      if (kind === HISTORY_PUT) this.history.putSync(key, value!);
      else if (kind === KEY_PUT) this.keys.putSync(key, value!);
      else if (kind === BUCKET_PUT) this.buckets!.putSync(key, value!);
      else if (kind === BUCKET_REMOVE) this.buckets!.removeSync(key);
      else this.keys.removeSync(key);
    });
    this.meta.putSync('checkpoint', plan.lastSeq);
  }

  /** The record of a bucket an S3 client created (undefined: none; it may still hold keys). */
  bucket(name: string): BucketRecord | undefined {
    const bytes = this.buckets?.getBinaryFast(Buffer.from(name, 'utf8'));
    return bytes === undefined ? undefined : decodeBucketRecord(bytes);
  }

  /** Every created bucket, by name (bytewise), from `start` (inclusive) on. */
  *bucketEntries(start?: string): Generator<[string, BucketRecord]> {
    const from = start === undefined ? undefined : Buffer.from(start, 'utf8');
    if (!this.buckets || (from && from.length > MAX_KEY_BYTES)) return;
    for (const { key, value } of this.buckets.getRange(from ? { start: from } : {}))
      yield [key.toString('utf8'), decodeBucketRecord(value)];
  }

  /** Keys in one of `states` that start with `prefix`, sorted bytewise. */
  list(options: ListOptions): ListPage {
    const prefix = checkBound(Buffer.from(options.prefix, 'utf8'), 'the prefix');
    const start = options.start !== undefined ? checkBound(Buffer.from(options.start, 'utf8'), 'the start') : undefined;
    const from = start && Buffer.compare(start, prefix) > 0 ? start : prefix;
    const end = prefixEnd(prefix);
    const keys: string[] = [];
    let next = '';
    for (const { key, value } of this.keys.getRange({ start: from, ...(end ? { end } : {}) })) {
      if (!options.states.includes(recordState(value))) continue;
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
    checkBound(start, 'where the listing starts');
    // An end past every key may be longer than a key can be: then there is none.
    const bounded = end !== undefined && end.length <= MAX_KEY_BYTES;
    for (const { key, value } of this.keys.getRange({ start, ...(bounded ? { end } : {}) })) {
      if (end !== undefined && !bounded && Buffer.compare(key, end) >= 0) return;
      yield [key.toString('utf8'), decodeRecord(value)];
    }
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
      for (const { key, value } of page) yield [key.toString('utf8'), decodeRecord(value)];
      if (page.length < pageSize) return;
      start = Buffer.concat([page.at(-1)!.key, Buffer.from([0])]);
    }
  }

  async close(): Promise<void> {
    await this.env.close();
    if (!this.unsynced) return;
    const dir = this.dir;
    // Every commit's pages on disk, then the marker gone: a clean index.
    fsyncPath(join(dir, 'data.mdb'));
    rmSync(join(dir, UNSYNCED_MARKER), { force: true });
    fsyncPath(dir);
  }
}
