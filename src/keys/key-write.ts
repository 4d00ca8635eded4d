// A write of one key: its lock, the events that begin it, and the events that end it.
//
//   beginWrite ──▶ decide on the key's record ──▶ lock + first events (one call to the writer)
//   ... the operation's own work (stream to the replicas, remove them) ...
//   write.finish(last events) ──▶ append, and the lock released      (or write.release(): no append)
//
// The decision is taken on the record as this process reads it, and the writer appends the
// first events only if the key's record is still that one (its seq): one round trip to the
// writer, which for an HTTP worker is a message to another process. If the key changed in the
// meantime, or the decision was a refusal, the lock is held and the decision is taken again on
// the record read under it — every outcome is the one lock-then-read gives.
//
// An S3 overwrite holds no lock while its value streams: other overwrites of the key may
// overlap it (S3 takes them all; the last to commit wins). The writer starts and ends it in the
// key's turn, and refuses the key's lock to anything else while it is in flight.
import { setTimeout as sleep } from 'node:timers/promises';
import { isMkvError, MkvError } from '../errors.js';
import type { EventInput, LogEvent } from '../events/event.js';
import type { KeyRecord } from '../index/evolve.js';
import { recordSeq, type RecordReader, type Writer } from '../writer/writer.js';
import type { KeyDeps } from './deps.js';

/** What a write decides on a key's record: the events that begin it (maybe none), or why it is refused. */
export type Decision = EventInput[] | MkvError;

/** A write in progress: the key's lock is held until finish() or release(). */
export interface KeyWrite {
  /** The record the write was decided on (undefined: the key has none). */
  readonly record: KeyRecord | undefined;
  /** The events appended as it began (none when the decision named none). */
  readonly started: LogEvent[];
  /** Appends the write's last events and releases the lock, whatever the append's outcome. */
  finish(events: EventInput[]): Promise<LogEvent[]>;
  /** Releases the lock if finish() has not; call it in a finally. */
  release(): Promise<void>;
}

/** How many times an overwrite is decided again when the key moved on before it could start. */
const OVERWRITE_TRIES = 8;

/**
 * Takes the key's lock (MKV_KEY_LOCKED when another write or delete holds it) and appends the
 * events `decide` names for the key's record; throws the decision's refusal, the lock released.
 * A decision that is an S3 overwrite alone starts one that others may overlap (module header),
 * unless `overlap` is false: a conditional write holds the lock to its commit, so the value it
 * was decided on is the one it replaces (S3 answers a conditional write that races another 409).
 */
export async function beginWrite(
  writer: Writer,
  index: RecordReader,
  key: string,
  decide: (record: KeyRecord | undefined) => Decision,
  overlap = true,
): Promise<KeyWrite> {
  let record = index.get(key);
  let decision = decide(record);
  for (let tries = 0; overlap && tries < OVERWRITE_TRIES && overwriteAlone(decision); tries++) {
    const started = await writer.startOverwrite(key, recordSeq(record), decision[0]);
    if (started) return overwriteInFlight(writer, key, record, started);
    record = index.get(key);
    decision = decide(record);
  }
  let started: LogEvent[] | undefined;
  if (decision instanceof MkvError || decision.length === 0) await writer.lock(key);
  else started = await writer.lockAndAppend(key, recordSeq(record), decision);
  if (started === undefined) {
    // Refused, changed since it was read, or nothing to append: decided again under the lock.
    try {
      record = index.get(key);
      decision = decide(record);
      if (decision instanceof MkvError) throw decision;
      started = decision.length > 0 ? await writer.append(decision) : [];
    } catch (error) {
      await writer.unlock(key);
      throw error;
    }
  }
  let held = true;
  return {
    record,
    started,
    finish(events) {
      held = false; // by the append, whatever its outcome
      return writer.appendAndUnlock(events, key);
    },
    async release() {
      if (!held) return;
      held = false;
      await writer.unlock(key);
    },
  };
}

/** How long a write S3 takes whatever else is in flight waits for a key's lock another write or delete holds. */
export const LOCK_PATIENCE_MS = 60_000;

let waiting = 0;

/** Writes and DELETEs of this process waiting for their key's turn now (mkv_key_waits). */
export function writesWaiting(): number {
  return waiting;
}

/**
 * beginWrite for a write S3 takes whatever else is in flight (an unconditional PutObject, a
 * CompleteMultipartUpload): a key whose lock another write or delete holds (the first write of a
 * new key holds it while its value streams) is tried again, a few milliseconds apart, until that
 * one has ended, for up to `patienceMs`; then MKV_KEY_LOCKED. The body waits unread meanwhile;
 * a client that goes meanwhile (`clientGone`) ends the wait, its write never made. A refusal the
 * record itself gives (a write in flight on another master) is not waited for.
 */
export async function beginWriteWhenFree(
  writer: Writer,
  index: RecordReader,
  key: string,
  decide: (record: KeyRecord | undefined) => Decision,
  options: { patienceMs?: number; clientGone?: () => boolean } = {},
): Promise<KeyWrite> {
  const { patienceMs = LOCK_PATIENCE_MS, clientGone } = options;
  const deadline = Date.now() + patienceMs;
  let refusal: MkvError | undefined;
  const decideNoting = (record: KeyRecord | undefined): Decision => {
    const decision = decide(record);
    refusal = decision instanceof MkvError ? decision : undefined;
    return decision;
  };
  try {
    return await beginWrite(writer, index, key, decideNoting);
  } catch (error) {
    if (!isMkvError(error, 'MKV_KEY_LOCKED') || error === refusal) throw error;
  }
  waiting++;
  try {
    for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
      if (Date.now() + pause > deadline)
        throw new MkvError('MKV_KEY_LOCKED', `another write or delete of this key held it for ${Math.round(patienceMs / 1000)} s; retry`);
      await sleep(pause);
      // A client that has gone does not get its write made later, over one that came after it.
      if (clientGone?.()) throw new MkvError('MKV_SHORT_BODY', 'the client went away while its write waited for the key');
      try {
        return await beginWrite(writer, index, key, decideNoting);
      } catch (error) {
        if (!isMkvError(error, 'MKV_KEY_LOCKED') || error === refusal) throw error;
      }
    }
  } finally {
    waiting--;
  }
}

function overwriteAlone(decision: Decision): decision is [EventInput] {
  return !(decision instanceof MkvError) && decision.length === 1 && decision[0]!.change.type === 'OverwriteStarted';
}

/** An overwrite others may overlap: it ends with writer.finishOverwrite, holding no lock meanwhile. */
function overwriteInFlight(writer: Writer, key: string, record: KeyRecord | undefined, started: LogEvent): KeyWrite {
  let inFlight = true;
  return {
    record,
    started: [started],
    finish(events) {
      inFlight = false;
      return writer.finishOverwrite(key, started.seq, events);
    },
    async release() {
      if (!inFlight) return;
      inFlight = false;
      await writer.finishOverwrite(key, started.seq, []);
    },
  };
}

/**
 * With a log shared by several masters, a pending key may be a write in flight on another
 * master (its blob is being streamed right now): taking it over would mix two values in one
 * file. Until it is older than --pending-grace it counts as locked; after that it is abandoned,
 * and a PUT or DELETE cleans it up as on one master.
 */
export function inFlightElsewhere(deps: Pick<KeyDeps, 'writer' | 'config'>, record: KeyRecord): MkvError | undefined {
  if (!deps.writer.sharedLog) return undefined;
  const age = Date.now() - record.time;
  if (age >= deps.config.pendingGraceMs) return undefined;
  return new MkvError(
    'MKV_KEY_LOCKED',
    `a write of this key started ${Math.round(age / 1000)} s ago, maybe on another master, and has not finished; retry later (a pending write is taken over after ${Math.round(deps.config.pendingGraceMs / 1000)} s)`,
  );
}

/** Runs `work` holding the key's lock; for operations that decide under the lock alone. */
export async function withKeyLock<T>(writer: Writer, key: string, work: () => Promise<T>): Promise<T> {
  await writer.lock(key);
  try {
    return await work();
  } finally {
    await writer.unlock(key);
  }
}
