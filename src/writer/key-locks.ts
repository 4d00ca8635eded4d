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
    if (this.locked.has(key)) throw new MkvError('MKV_KEY_LOCKED', 'another write or delete of this key is in flight');
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
}
