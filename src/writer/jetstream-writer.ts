// The writer of a master whose log is a JetStream stream that other masters write too.
//
//   handler ──lock(key)──▶ local lock; the key's last seq (from the index) is what the stream must still end at
//   handler ──append──▶ publish, conditional on the key's last subject seq ─▶ wait: projector at that seq ─▶ resolve
//   follower: stream (from checkpoint + 1, every master's events) ─▶ index.apply, in stream order
//
// Every master projects the whole stream into its own LMDB index with the same projector and
// checkpoint rule; an append is answered only once this master's projector has applied it (read
// your writes). Two masters racing on a key: the second conditional publish fails, 409.
import type { EventInput, LogEvent } from '../events/event.js';
import { isMkvError, MkvError } from '../errors.js';
import type { IndexStore } from '../index/index-store.js';
import type { Logger } from '../logger.js';
import type { JetStreamLog } from '../log/jetstream-log.js';
import { KeyLockingWriter, shuttingDown } from './key-locks.js';

/** How many events the follower applies in one LMDB transaction at most. */
const APPLY_BATCH = 1000;
/** How long an append waits for this master's projector before it answers 503. */
const PROJECTION_WAIT_MS = 15_000;
/**
 * When the stream holds events this master has not applied and nothing arrived for this long,
 * the follower starts over from the checkpoint (its consumer may have been on a node that died).
 */
const STALL_MS = 2000;
/** The first and the longest wait before following the stream again after an attempt failed. */
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 4000;

/** The index could not commit what the stream delivered: the projector must stop. */
class ProjectionFailed extends Error {
  constructor(readonly failure: Error) {
    super(failure.message);
  }
}

export class JetStreamWriter extends KeyLockingWriter {
  readonly sharedLog = true;
  private readonly waiting = new Set<{ seq: number; resolve: () => void; reject: (error: unknown) => void }>();
  private failure: Error | undefined;
  private following: Promise<void> | undefined;
  private stopFollowing: (() => void) | undefined;

  constructor(
    private readonly log: JetStreamLog,
    index: IndexStore,
    private readonly logger: Logger,
    private readonly onAppend?: (events: number, seconds: number) => void,
  ) {
    super(index);
  }

  private lastProgress = Date.now();
  private watchdog: NodeJS.Timeout | undefined;

  /** Starts projecting the stream from the index's checkpoint; runs until close(). */
  start(): void {
    this.watchdog = setInterval(() => {
      const behind = this.log.lastSeq > this.index.checkpoint;
      if (behind && Date.now() - this.lastProgress > STALL_MS) {
        this.logger.warn('the stream has events this master has not received: following it again from the checkpoint', {
          checkpoint: this.index.checkpoint,
          lastSeq: this.log.lastSeq,
        });
        this.followAgain();
      }
    }, STALL_MS / 2);
    this.watchdog.unref();
    this.following = this.follow().catch((error: Error) => {
      this.failure = error;
      this.logger.error('the projector stopped following the stream', { error: error.message });
      for (const waiter of this.waiting) waiter.reject(new MkvError('MKV_LOG_UNAVAILABLE', `the projector stopped: ${error.message}`));
      this.waiting.clear();
    });
  }

  /** Drops the consumer (its node may be gone) and follows the stream again from the checkpoint. */
  followAgain(): void {
    this.lastProgress = Date.now();
    this.stopFollowing?.();
  }

  /**
   * Follows the stream until close(). A NATS node going away, a leader election or a request
   * timing out ends one attempt, and the next starts over from the checkpoint; only an event
   * that cannot be decoded, or an index that cannot commit, stops the projector for good.
   */
  private async follow(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      try {
        await this.followOnce();
        // Ended without an error: stopped by the watchdog, or the consumer closed.
        failures = 0;
      } catch (error) {
        if (this.closed) return;
        if (error instanceof ProjectionFailed) throw error.failure;
        if (isMkvError(error, 'MKV_CORRUPT_LOG')) throw error;
        this.logger.warn('following the stream failed; following it again from the checkpoint', {
          error: (error as Error).message,
          checkpoint: this.index.checkpoint,
          attempt: ++failures,
        });
      }
      const retryMs = Math.min(RETRY_MIN_MS * 2 ** Math.max(failures - 1, 0), RETRY_MAX_MS);
      // Never spin: wait a little before the next attempt (close() cuts the wait short).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, retryMs);
        this.stopFollowing = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private async followOnce(): Promise<void> {
    const stream = this.log.follow(this.index.checkpoint + 1, APPLY_BATCH);
    this.stopFollowing = () => stream.stop();
    if (this.closed) stream.stop();
    for await (const batch of stream) {
      this.lastProgress = Date.now();
      // A consumer started over may deliver again what was applied: skip it.
      const fresh = batch.filter((event) => event.seq > this.index.checkpoint);
      if (fresh.length === 0) continue;
      try {
        this.index.apply(fresh);
      } catch (error) {
        throw new ProjectionFailed(error as Error);
      }
      const applied = this.index.checkpoint;
      for (const waiter of this.waiting) {
        if (waiter.seq <= applied) {
          this.waiting.delete(waiter);
          waiter.resolve();
        }
      }
    }
  }

  /** Resolves once this master's index has applied `seq`. */
  private applied(seq: number): Promise<void> {
    if (this.index.checkpoint >= seq) return Promise.resolve();
    if (this.failure) return Promise.reject(new MkvError('MKV_LOG_UNAVAILABLE', `the projector stopped: ${this.failure.message}`));
    return new Promise((resolve, reject) => {
      const waiter = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject,
      };
      const timer = setTimeout(() => {
        this.waiting.delete(waiter);
        reject(
          new MkvError(
            'MKV_LOG_UNAVAILABLE',
            `the event is in the log (seq ${seq}) but this master has not applied it within ${PROJECTION_WAIT_MS / 1000} s; read it with Min-Log-Seq: ${seq}`,
          ),
        );
      }, PROJECTION_WAIT_MS);
      this.waiting.add(waiter);
    });
  }

  /** A locked key's subject must still end at the seq this master last applied of it. */
  protected override lockedAt(key: string): number {
    return this.index.lastSeqOf(key);
  }

  async append(inputs: EventInput[]): Promise<LogEvent[]> {
    if (this.closed) throw shuttingDown();
    // Publishing an event this master can never apply would only leave the key pending.
    if (this.failure) throw new MkvError('MKV_LOG_UNAVAILABLE', `the projector stopped: ${this.failure.message}`);
    const started = process.hrtime.bigint();
    const events: LogEvent[] = [];
    for (const input of inputs) {
      // A locked key: the seq seen at lock time, moved on by this master's own appends. An
      // unlocked one (a tool's event): what this master has applied of it so far.
      const expected = this.locked.get(input.key) ?? this.index.lastSeqOf(input.key);
      const event = await this.log.publish(input, expected);
      if (this.locked.has(input.key)) this.locked.set(input.key, event.seq);
      events.push(event);
    }
    if (events.length > 0) await this.applied(events.at(-1)!.seq);
    this.onAppend?.(events.length, Number(process.hrtime.bigint() - started) / 1e9);
    return events;
  }

  get healthy(): boolean {
    return !this.closed && !this.failure;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    this.stopFollowing?.();
    await this.following;
    for (const waiter of this.waiting) waiter.reject(shuttingDown());
    this.waiting.clear();
  }
}
