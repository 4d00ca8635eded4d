// The writer of a master whose log is on its own disk: group commit into the segment log, then
// the projection into the index, in order.
//
//   handler ──append(events)─▶ queue ─▶ one log block + fdatasync ─▶ index.apply ─▶ resolve
//                              (callers that arrive during a flush share the next one)
import type { EventInput, LogEvent } from '../events/event.js';
import type { IndexStore } from '../index/index-store.js';
import type { EventLog } from '../log/event-log.js';
import { KeyLockingWriter, shuttingDown } from './key-locks.js';

interface Pending {
  events: EventInput[];
  resolve: (events: LogEvent[]) => void;
  reject: (error: unknown) => void;
}

/** Group commits bigger than this are split, so one block stays a sane size. */
const MAX_BATCH_EVENTS = 4096;

export class LocalWriter extends KeyLockingWriter {
  private queue: Pending[] = [];
  /** The flush loop while it runs: it drains the queue, appends included that arrive meanwhile. */
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly log: EventLog,
    index: IndexStore,
    /** Told of every block appended: how many events, how long the write and fsync took. */
    private readonly onAppend?: (events: number, seconds: number) => void,
  ) {
    super(index);
  }

  append(events: EventInput[]): Promise<LogEvent[]> {
    if (this.closed) return Promise.reject(shuttingDown());
    return new Promise((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      this.startFlush();
    });
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
