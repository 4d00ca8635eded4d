// What every writer in this process shares: the per-key locks, the refusal once it is closed,
// and the two combined calls built on lock, append and unlock (one round trip each for a worker).
// LocalWriter and JetStreamWriter differ only in how they append and what a lock remembers.
import { MkvError } from '../errors.js';
import type { EventInput, LogEvent } from '../events/event.js';
import type { IndexStore } from '../index/index-store.js';
import { recordSeq, type Writer } from './writer.js';

export function shuttingDown(): MkvError {
  return new MkvError('MKV_LOG_UNAVAILABLE', 'the server is shutting down');
}

export abstract class KeyLockingWriter implements Writer {
  /** The keys locked now, with what the lock remembers of each (lockedAt). */
  protected readonly locked = new Map<string, number>();
  /** The S3 overwrites in flight, by key: the versions (seqs of their OverwriteStarted). */
  private readonly overwriting = new Map<string, Set<number>>();
  /** Per key, the end of the last start or finish of an overwrite queued: each waits for the one before. */
  private readonly turns = new Map<string, Promise<void>>();
  protected closed = false;

  constructor(protected readonly index: IndexStore) {}

  abstract append(events: EventInput[]): Promise<LogEvent[]>;
  abstract close(): Promise<void>;
  abstract get healthy(): boolean;

  /** What a lock remembers of its key (JetStream: the seq the key's subject must still end at). */
  protected lockedAt(_key: string): number {
    return 0;
  }

  get lockedKeys(): number {
    return this.locked.size;
  }

  async lock(key: string): Promise<void> {
    if (this.closed) throw shuttingDown();
    if (this.locked.has(key) || this.overwriting.has(key))
      throw new MkvError('MKV_KEY_LOCKED', 'another write or delete of this key is in flight');
    this.locked.set(key, this.lockedAt(key));
  }

  async unlock(key: string): Promise<void> {
    this.locked.delete(key);
  }

  /** Lock, compare the key's record with the one the caller saw, append; a failed append releases the lock. */
  async lockAndAppend(key: string, seenSeq: number, events: EventInput[]): Promise<LogEvent[] | undefined> {
    await this.lock(key);
    if (recordSeq(this.index.get(key)) !== seenSeq) return undefined;
    try {
      return await this.append(events);
    } catch (error) {
      await this.unlock(key);
      throw error;
    }
  }

  async appendAndUnlock(events: EventInput[], key: string): Promise<LogEvent[]> {
    try {
      return await this.append(events);
    } finally {
      await this.unlock(key);
    }
  }

  startOverwrite(key: string, seenSeq: number, event: EventInput): Promise<LogEvent | undefined> {
    return this.inTurn(key, async () => {
      if (this.closed) throw shuttingDown();
      if (this.locked.has(key)) throw new MkvError('MKV_KEY_LOCKED', 'another write or delete of this key is in flight');
      if (recordSeq(this.index.get(key)) !== seenSeq) return undefined;
      const { change } = event;
      if (change.type !== 'OverwriteStarted')
        throw new MkvError('MKV_INTERNAL', `startOverwrite takes an OverwriteStarted, not ${change.type}`);
      const here = this.overwriting.get(key);
      const abandons = change.abandons?.filter((version) => !here?.has(version)) ?? null;
      const [started] = await this.appendLocked(key, [{ ...event, change: { ...change, abandons } }]);
      if (here) here.add(started!.seq);
      else this.overwriting.set(key, new Set([started!.seq]));
      return started;
    });
  }

  finishOverwrite(key: string, version: number, events: EventInput[]): Promise<LogEvent[]> {
    return this.inTurn(key, async () => {
      try {
        return events.length > 0 ? await this.appendLocked(key, events) : [];
      } finally {
        const here = this.overwriting.get(key);
        here?.delete(version);
        if (here?.size === 0) this.overwriting.delete(key);
      }
    });
  }

  /** Appends holding the key's lock for the append alone (what lock() remembers is what the append checks against). */
  private async appendLocked(key: string, events: EventInput[]): Promise<LogEvent[]> {
    this.locked.set(key, this.lockedAt(key));
    try {
      return await this.append(events);
    } finally {
      this.locked.delete(key);
    }
  }

  /** Runs `work` once the key's overwrite steps queued before it have ended. */
  private async inTurn<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.turns.get(key);
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const last = before ? before.then(() => mine) : mine;
    this.turns.set(key, last);
    try {
      if (before) await before;
      return await work();
    } finally {
      done();
      if (this.turns.get(key) === last) this.turns.delete(key);
    }
  }
}
