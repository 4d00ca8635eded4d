// The one writer: the log appender, the projector and the per-key locks, behind one small
// asynchronous interface. HTTP handlers only call it; they read the index directly.
//
//   handler ──lock(key)──────────────▶ Writer (locks: a Set of keys)
//   handler ──append(events)─────────▶ queue ─▶ one log block + fdatasync ─▶ index.apply ─▶ resolve
//                                      (callers that arrive during a flush share the next one)
//
// Everything crosses this seam as plain data and promises, so the writer can move into its own
// process (HTTP workers on every core, one writer) without the handlers changing.
import { MkvError } from '../errors.js';
import type { EventInput, LogEvent } from '../events/event.js';
import type { KeyRecord } from '../index/evolve.js';
import type { IndexStore } from '../index/index-store.js';
import type { EventLog } from '../log/event-log.js';

export interface Writer {
  /** Takes the key's lock, or throws MKV_KEY_LOCKED when another write/delete holds it. */
  lock(key: string): Promise<void>;
  unlock(key: string): Promise<void>;
  /**
   * The first step of a write, in one call: takes the key's lock (MKV_KEY_LOCKED as lock()),
   * then appends `events` if the key's record is still the one the caller decided on
   * (`seenSeq`, its recordSeq). If the key has moved on since, nothing is appended and it
   * resolves undefined, the lock taken: the caller reads the key again and decides as if it had
   * locked first. One call, so an HTTP worker pays one round trip to the writer for it, not
   * two. When it rejects, the lock is not held.
   */
  lockAndAppend(key: string, seenSeq: number, events: EventInput[]): Promise<LogEvent[] | undefined>;
  /** Appends events durably and projects them; resolves once they are readable in the index. */
  append(events: EventInput[]): Promise<LogEvent[]>;
  /**
   * The last step of a write: append, then release the key's lock whatever the outcome. One
   * call, so an HTTP worker pays one round trip to the writer process for it, not two.
   */
  appendAndUnlock(events: EventInput[], key: string): Promise<LogEvent[]>;
  /** Waits for queued appends, then refuses new ones. */
  close(): Promise<void>;
  /** Whether appends can still succeed. */
  readonly healthy: boolean;
  /**
   * True when other masters append to the same log (JetStream): a key left pending may be a
   * write still in flight on another master, not an abandoned one.
   */
  readonly sharedLog?: boolean;
}

/** What identifies the record a write decided on: the seq of the event that last changed it (0: no record). */
export function recordSeq(record: KeyRecord | undefined): number {
  return record?.seq ?? 0;
}

/** The index as a write reads it. */
export interface RecordReader {
  get(key: string): KeyRecord | undefined;
}

/**
 * lockAndAppend for a writer in this process: lock, compare the key's record with the one the
 * caller saw, append. A failed append releases the lock.
 */
export async function lockThenAppend(writer: Writer, index: RecordReader, key: string, seenSeq: number, events: EventInput[]): Promise<LogEvent[] | undefined> {
  await writer.lock(key);
  if (recordSeq(index.get(key)) !== seenSeq) return undefined;
  try {
    return await writer.append(events);
  } catch (error) {
    await writer.unlock(key);
    throw error;
  }
}

/** appendAndUnlock for a writer in this process. */
export async function appendThenUnlock(writer: Writer, events: EventInput[], key: string): Promise<LogEvent[]> {
  try {
    return await writer.append(events);
  } finally {
    await writer.unlock(key);
  }
}

/** The writer of a read-only server (a point-in-time db): every write is refused. */
export class ReadOnlyWriter implements Writer {
  constructor(private readonly atSeq: number) {}

  private refuse(): never {
    throw new MkvError('MKV_READ_ONLY', `this server is read-only: it serves the db as of seq ${this.atSeq}; write to the live server`);
  }

  async lock(): Promise<void> {
    this.refuse();
  }

  async unlock(): Promise<void> {}

  async lockAndAppend(): Promise<LogEvent[] | undefined> {
    this.refuse();
  }

  async append(): Promise<LogEvent[]> {
    this.refuse();
  }

  async appendAndUnlock(): Promise<LogEvent[]> {
    this.refuse();
  }

  async close(): Promise<void> {}

  get healthy(): boolean {
    return true;
  }
}

interface Pending {
  events: EventInput[];
  resolve: (events: LogEvent[]) => void;
  reject: (error: unknown) => void;
}

/** Group commits bigger than this are split, so one block stays a sane size. */
const MAX_BATCH_EVENTS = 4096;

export class LocalWriter implements Writer {
  private readonly locked = new Set<string>();
  private queue: Pending[] = [];
  /** The flush loop while it runs: it drains the queue, appends included that arrive meanwhile. */
  private flushing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly log: EventLog,
    private readonly index: IndexStore,
    /** Told of every block appended: how many events, how long the write and fsync took. */
    private readonly onAppend?: (events: number, seconds: number) => void,
  ) {}

  get lockedKeys(): number {
    return this.locked.size;
  }

  async lock(key: string): Promise<void> {
    if (this.closed) throw new MkvError('MKV_LOG_UNAVAILABLE', 'the server is shutting down');
    if (this.locked.has(key)) throw new MkvError('MKV_KEY_LOCKED', 'another write or delete of this key is in flight');
    this.locked.add(key);
  }

  async unlock(key: string): Promise<void> {
    this.locked.delete(key);
  }

  append(events: EventInput[]): Promise<LogEvent[]> {
    if (this.closed) return Promise.reject(new MkvError('MKV_LOG_UNAVAILABLE', 'the server is shutting down'));
    return new Promise((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      this.startFlush();
    });
  }

  lockAndAppend(key: string, seenSeq: number, events: EventInput[]): Promise<LogEvent[] | undefined> {
    return lockThenAppend(this, this.index, key, seenSeq, events);
  }

  appendAndUnlock(events: EventInput[], key: string): Promise<LogEvent[]> {
    return appendThenUnlock(this, events, key);
  }

  private startFlush(): void {
    // An append may land after the loop saw an empty queue but before it ended: go round again.
    this.flushing ??= this.flush().finally(() => {
      this.flushing = undefined;
      if (this.queue.length > 0) this.startFlush();
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.takeBatch();
      const inputs = batch.flatMap((pending) => pending.events);
      let appended: LogEvent[];
      const started = process.hrtime.bigint();
      try {
        appended = await this.log.append(inputs);
        this.onAppend?.(appended.length, Number(process.hrtime.bigint() - started) / 1e9);
      } catch (error) {
        for (const pending of batch) pending.reject(error);
        continue;
      }
      try {
        this.index.apply(appended);
      } catch (error) {
        // The events are durable but not projected: refuse to go on with an index that is behind.
        this.closed = true;
        for (const pending of [...batch, ...this.queue]) pending.reject(error);
        this.queue = [];
        break;
      }
      let offset = 0;
      for (const pending of batch) {
        pending.resolve(appended.slice(offset, offset + pending.events.length));
        offset += pending.events.length;
      }
    }
  }

  private takeBatch(): Pending[] {
    let count = 0;
    let taken = 0;
    while (taken < this.queue.length && (taken === 0 || count + this.queue[taken]!.events.length <= MAX_BATCH_EVENTS)) {
      count += this.queue[taken]!.events.length;
      taken++;
    }
    return this.queue.splice(0, taken);
  }

  /** False once the writer has stopped (closed, or its index could not apply a batch). */
  get healthy(): boolean {
    return !this.closed;
  }

  /** Waits for queued appends to finish and refuses new ones. */
  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.closed = true;
  }
}
