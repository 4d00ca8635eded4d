// Removing a key: DELETE (stop serving it, remove every replica, forget it), UNLINK and LINK (a
// virtual delete and its undo), and gc's cleanup of a write that never committed.
//
//   DELETE: lock + DeleteStarted ─▶ remove every replica ─▶ KeyDeleted ─▶ unlock
//           a replica that could not be removed: the key stays "deleting" (listed in ?unlinked)
//           and DELETE again finishes it. It can never be linked again: a volume that did not
//           answer in time may have removed its copy, or still remove it, later.
//   DELETE with --retain: lock + KeyDeleted (retained) ─▶ unlock. Nothing is removed: the key is
//           "deleted" (404), and its blobs stay for the window (stale-sweeper.ts removes them).
import { MkvError } from '../errors.js';
import type { Cause, Change } from '../events/event.js';
import { allBlobs, inFlight, type KeyRecord, type KeyState } from '../index/evolve.js';
import type { KeyDeps } from './deps.js';
import { beginWrite, beginWriteWhenFree, inFlightElsewhere, type Decision } from './key-write.js';
import { removeBlobs } from './replicas.js';

function notFound(): MkvError {
  return new MkvError('MKV_NOT_FOUND', 'no such key');
}

/** A key whose DELETE did not finish: a PUT or LINK of it would be undone by the volumes' late removals. */
export function beingDeleted(): MkvError {
  return new MkvError(
    'MKV_DELETING',
    'a DELETE of this key began and did not finish (its blob may be gone from some volumes); DELETE it again to finish',
  );
}

/** What a DELETE asks beyond removing the key. */
export interface DeleteOptions {
  /**
   * Asked of the record under the key's lock; what it returns is the answer instead: gc deletes
   * only the record it looked at, S3's If-Match only the value it names.
   */
  refuse?: (record: KeyRecord | undefined) => MkvError | undefined;
  /** Wait for a write or delete of the key in flight to end (S3 takes both), instead of MKV_KEY_LOCKED. */
  waitTurn?: boolean;
  /** While waiting: whether the client has gone (then the DELETE is not made). */
  clientGone?: () => boolean;
  /** S3 with --retain: a key with no value (none, or deleted) gets a delete marker all the same, instead of 404. */
  markEvenAbsent?: boolean;
}

/**
 * DELETE: removes the key and its blob from every replica; returns the seq of KeyDeleted, and
 * whether it is a delete marker (--retain: the blobs stay).
 */
export async function deleteKey(
  deps: KeyDeps,
  key: string,
  cause: Cause,
  options: DeleteOptions = {},
): Promise<{ seq: number; marker: boolean }> {
  const { refuse, waitTurn = false, clientGone, markEvenAbsent = false } = options;
  const wait = waitTurn ? (clientGone ? { clientGone } : {}) : undefined;
  let marker = false;
  const seq = await removeKey(deps, key, cause, { type: 'KeyDeleted', retained: false }, wait, (record) => {
    const decision = refuse?.(record) ?? decideDelete(deps, key, record, cause, markEvenAbsent);
    marker = Array.isArray(decision) && decision[0]?.change.type === 'KeyDeleted';
    return decision;
  });
  return { seq, marker };
}

/**
 * How a DELETE begins on the key's record: DeleteStarted (a value), nothing to begin (a write
 * that never committed, a DELETE that never finished: its blobs go, then KeyDeleted), or refused.
 */
export function decideDelete(
  deps: Pick<KeyDeps, 'writer' | 'config'>,
  key: string,
  record: KeyRecord | undefined,
  cause: Cause,
  markEvenAbsent = false,
): Decision {
  if (!record || record.state === 'deleted') {
    if (markEvenAbsent && deps.config.retainMs > 0) return [{ key, cause, change: { type: 'KeyDeleted', retained: true } }];
    return notFound();
  }
  if (record.state === 'pending') return inFlightElsewhere(deps, record) ?? [];
  if (record.state === 'deleting') return [];
  if (record.state === 'live' && deps.config.protect)
    return new MkvError('MKV_PROTECTED', 'the server runs with --protect: UNLINK the key before you DELETE it');
  // With --retain, the DELETE is this one event: its blobs stay for the window.
  if (deps.config.retainMs > 0) return [{ key, cause, change: { type: 'KeyDeleted', retained: true } }];
  return [{ key, cause, change: { type: 'DeleteStarted' } }];
}

/** gc: cleans up a write that never committed (a pending key) when it is still the record `seq`. */
export async function abandonPendingWrite(deps: KeyDeps, key: string, seq: number, cause: Cause, reason: string): Promise<number> {
  return removeKey(deps, key, cause, { type: 'WriteAborted', reason }, undefined, (record) =>
    record?.state === 'pending' && record.seq === seq ? [] : notFound(),
  );
}

/** gc: gives up an S3 overwrite that never finished (record `seq`): what it wrote goes, the value stays. */
export async function giveUpOverwrites(deps: KeyDeps, key: string, seq: number, cause: Cause, reason: string): Promise<void> {
  const write = await beginWrite(deps.writer, deps.index, key, (record) => (record?.writing && record.seq === seq ? [] : notFound()));
  try {
    // Under the key's lock, so none is in flight in this master: every one the record names goes.
    const failures = await removeBlobs(deps.volumes, key, inFlight(write.record!));
    if (failures.length > 0)
      throw new MkvError(
        'MKV_VOLUME_FAILED',
        `removing the overwrite's blob failed (${failures.map((failure) => `${failure.volume}: ${failure.reason}`).join('; ')})`,
      );
    await write.finish([{ key, cause, change: { type: 'OverwriteAborted', reason, version: 0 } }]);
  } finally {
    await write.release();
  }
}

async function removeKey(
  deps: KeyDeps,
  key: string,
  cause: Cause,
  last: Change,
  wait: { clientGone?: () => boolean } | undefined,
  decide: (record: KeyRecord | undefined) => Decision,
): Promise<number> {
  const write = await (wait
    ? beginWriteWhenFree(deps.writer, deps.index, key, decide, wait)
    : beginWrite(deps.writer, deps.index, key, decide));
  try {
    const [started] = write.started;
    if (started?.change.type === 'KeyDeleted') return started.seq; // retained: nothing to remove
    const record = write.record!; // decide refused a key without one
    // Every blob the key has: its value's, an overwrite's in flight, earlier values' left over.
    const failures = await removeBlobs(deps.volumes, key, allBlobs(record));
    if (failures.length > 0) {
      const state = record.state === 'pending' ? 'pending' : 'being deleted';
      deps.logger.warn(`removing a replica failed; the key stays ${state}`, { key, failures });
      throw new MkvError(
        'MKV_VOLUME_FAILED',
        `removing the blob failed (${failures.map((failure) => `${failure.volume}: ${failure.reason}`).join('; ')}); the key stays ${state}, DELETE it again to finish`,
      );
    }
    const [removed] = await write.finish([{ key, cause, change: last }]);
    return removed!.seq;
  } finally {
    await write.release();
  }
}

/** How UNLINK (linked false) or LINK (true) goes on the key's record: its one event, or why not. */
export function decideLink(key: string, record: KeyRecord | undefined, linked: boolean, cause: Cause): Decision {
  const from: KeyState = linked ? 'unlinked' : 'live';
  if (record?.state === from) return [{ key, cause, change: { type: linked ? 'KeyLinked' : 'KeyUnlinked' } }];
  return linked && record?.state === 'deleting' ? beingDeleted() : notFound();
}

/** UNLINK (linked false: a virtual delete, the blob stays) and LINK (its undo); returns the event's seq. */
export async function setLinked(deps: KeyDeps, key: string, linked: boolean, cause: Cause): Promise<number> {
  const write = await beginWrite(deps.writer, deps.index, key, (record) => decideLink(key, record, linked, cause));
  await write.release();
  return write.started[0]!.seq;
}
