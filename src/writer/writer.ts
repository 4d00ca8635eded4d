// The writer: the one path into the log, the projector and the per-key locks, behind one small
// asynchronous interface. HTTP handlers only call it; they read the index directly.
//
//   handler ──lock(key)────────▶ Writer ─▶ local-writer.ts      the log on this disk (group commit)
//   handler ──append(events)───▶        ─▶ jetstream-writer.ts  a stream several masters share
//                                       ─▶ ipc.ts RemoteWriter  an HTTP worker's, to its writer process
//                                       ─▶ ReadOnlyWriter       (below) a point-in-time db
//
// Everything crosses this seam as plain data and promises, so the writer can move into its own
// process (HTTP workers on every core, one writer) without the handlers changing.
import { MkvError } from '../errors.js';
import type { EventInput, LogEvent } from '../events/event.js';
import type { KeyRecord } from '../index/evolve.js';

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
  /**
   * The first step of an S3 overwrite, which other overwrites of the key may overlap (S3 takes
   * two PutObjects of one key at once; the last to commit wins). In the key's turn (the starts
   * and ends of its overwrites go one at a time): refuses (MKV_KEY_LOCKED) while a write or
   * delete holds the key's lock; resolves undefined, appending nothing, if the key's record is
   * no longer `seenSeq` (decide again); else appends `event`, an OverwriteStarted. Of the
   * versions its `abandons` names, only those not in flight here are given up. The overwrite is
   * in flight until finishOverwrite: lock() refuses the key meanwhile, as it does a held lock.
   */
  startOverwrite(key: string, seenSeq: number, event: EventInput): Promise<LogEvent | undefined>;
  /** The last step of overwrite `version`: appends `events` (maybe none) in the key's turn; it is no longer in flight, whatever the outcome. */
  finishOverwrite(key: string, version: number, events: EventInput[]): Promise<LogEvent[]>;
  /** Waits for queued appends, then refuses new ones. */
  close(): Promise<void>;
  /** Whether appends can still succeed. */
  readonly healthy: boolean;
  /**
   * True when other masters append to the same log (JetStream): a key left pending may be a
   * write still in flight on another master, not an abandoned one.
   */
  readonly sharedLog?: boolean;
  /** How many keys are locked now, where the locks are held (not in an HTTP worker). */
  readonly lockedKeys?: number;
}

/** What identifies the record a write decided on: the seq of the event that last changed it (0: no record). */
export function recordSeq(record: KeyRecord | undefined): number {
  return record?.seq ?? 0;
}

/** The index as a write reads it. */
export interface RecordReader {
  get(key: string): KeyRecord | undefined;
}

/** What a read-only server answers a write (the app refuses by method, this writer whatever asks it). */
export function readOnlyError(atSeq: number): MkvError {
  return new MkvError('MKV_READ_ONLY', `this server is read-only: it serves the db as of seq ${atSeq}; write to the live server`);
}

/** The writer of a read-only server (a point-in-time db): every write is refused. */
export class ReadOnlyWriter implements Writer {
  constructor(private readonly atSeq: number) {}

  private refuse(): never {
    throw readOnlyError(this.atSeq);
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

  async startOverwrite(): Promise<LogEvent | undefined> {
    this.refuse();
  }

  async finishOverwrite(): Promise<LogEvent[]> {
    return [];
  }

  async close(): Promise<void> {}

  get healthy(): boolean {
    return true;
  }
}
