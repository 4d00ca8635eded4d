// S3 DeleteObject ?versionId=N on --retain's versions (keys/versions.ts names them): version N
// is no longer one of the key's, as on S3. Under the key's lock, by what N is:
//
//   a value the key no longer serves   its blob removed from every volume ─▶ StaleRemoved
//   the value the key serves           the one before it (a kept value, or a delete marker) is the
//                                      latest again: VersionRestored ─▶ N's blob removed ─▶
//                                      StaleRemoved (a failure leaves N an older version: its id
//                                      again finishes it). Nothing before it: the key goes as a
//                                      DELETE without --retain does (DeleteStarted ─▶ blobs ─▶
//                                      KeyDeleted)
//   the latest delete marker           the one before it is the latest again: a kept value
//                                      (VersionRestored), a marker (MarkerRemoved), or nothing:
//                                      the key's leftover blobs removed ─▶ MarkerRemoved, the key gone
//   an older delete marker             MarkerRemoved; the key serves what it served
//   a version or marker not there      nothing: removed already (204, as S3)
//
// Refused: the value a key serves under --protect (as its DELETE), or an unlinked key's (LINK's
// to bring back). A key whose DELETE did not finish (deleting) is finished instead. Removing
// versions for good needs the purge right (the caller's to check), not delete.
import { MkvError } from '../errors.js';
import type { BlobVersion, Cause, Change, EventInput, ObjectState } from '../events/event.js';
import { allBlobs, keyRecord, toState, type KeyRecord } from '../index/evolve.js';
import type { KeyDeps } from './deps.js';
import { beginWriteWhenFree, type Decision } from './key-write.js';
import { checkDeleteCondition, type DeleteCondition } from './write-condition.js';
import { removeBlobs } from './replicas.js';
import { currentVersion, markerKept, versionRecord, versionsOf, type KeyVersion, type KeyVersions } from './versions.js';

export interface RemovedVersion {
  /** The id removed was a delete marker. */
  deleteMarker: boolean;
}

/** What removing a version does once its first events (if any) are appended: blobs to remove, then the last event. */
interface Removal {
  blobs: BlobVersion[];
  last: Change | undefined;
  deleteMarker: boolean;
  /** What a failure to remove the blobs leaves, and how to finish. */
  leaves?: string;
}

/** The newest of the key's kept values and delete markers before seq `id`: a value, a marker, or none. */
function latestBefore(found: KeyVersions, id: number): { value: KeyVersion } | { marker: number } | undefined {
  const value = found.versions.findLast((version) => version.held && version.seq < id);
  const marker = found.markers.findLast((candidate) => candidate.seq < id);
  if (marker && (!value || marker.seq > value.seq)) return { marker: marker.seq };
  return value && { value };
}

/** The record with `value` the key's value again, `also` stale besides the record's other kept blobs. */
function restoredTo(record: KeyRecord, value: KeyVersion, also: BlobVersion[]): ObjectState {
  const restored = toState(versionRecord(value));
  restored.stale = [...record.stale.filter((blob) => blob.version !== value.blob.version), ...also];
  restored.writing = record.writing;
  restored.overwrites = record.overwrites;
  return restored;
}

/** The record of a key deleted (its latest a delete marker), `also` stale besides its other kept blobs; overwrites in flight go on. */
function deletedWith(record: KeyRecord, also: BlobVersion[]): ObjectState {
  const { seq, time, writing, overwrites } = record;
  return toState(keyRecord({ state: 'deleted', volumes: [], seq, time, stale: [...record.stale, ...also], writing, overwrites }));
}

/** How removing version `id` begins on the key's record: its first events and what follows them, or why not. */
export function decideRemoveVersion(
  deps: Pick<KeyDeps, 'index' | 'config'>,
  key: string,
  record: KeyRecord | undefined,
  id: number,
  cause: Cause,
  condition?: DeleteCondition,
): { decision: Decision; removal?: Removal } {
  const found = versionsOf(deps.index.historyOf(key));
  const event = (change: Change): EventInput[] => [{ key, cause, change }];
  // As on S3, a version that is not there (any more) is removed already.
  const noSuchVersion = { decision: [], removal: { blobs: [], last: undefined, deleteMarker: false } };
  const marker = found.markers.find((candidate) => candidate.seq === id && markerKept(candidate, deps.config.retainMs));
  if (marker) {
    if (!record) return noSuchVersion;
    // A marker has no value for a condition to hold of.
    if (condition)
      return { decision: new MkvError('MKV_PRECONDITION_FAILED', 'At least one of the pre-conditions you specified did not hold') };
    const removal = { blobs: [], last: undefined, deleteMarker: true };
    if (record.state !== 'deleted' || marker.replaced !== null)
      return { decision: event({ type: 'MarkerRemoved', marker: id, state: toState(record) }), removal };
    const before = latestBefore(found, id);
    if (before && 'value' in before)
      return {
        decision: event({ type: 'VersionRestored', version: before.value.seq, state: restoredTo(record, before.value, []) }),
        removal,
      };
    if (before) return { decision: event({ type: 'MarkerRemoved', marker: id, state: toState(record) }), removal };
    // Nothing before it: the key goes, with what its record still names (an overwrite given up).
    return { decision: [], removal: { blobs: record.stale, last: { type: 'MarkerRemoved', marker: id, state: null }, deleteMarker: true } };
  }
  // A DELETE that did not finish (its only version removed, then a failure): any version's removal finishes it.
  if (record?.state === 'deleting')
    return { decision: [], removal: { blobs: allBlobs(record), last: { type: 'KeyDeleted', retained: false }, deleteMarker: false } };
  const version = found.versions.find((candidate) => candidate.seq === id);
  if (!version?.held || !record) return noSuchVersion;
  try {
    checkDeleteCondition(condition, versionRecord(version));
  } catch (error) {
    return { decision: error as MkvError };
  }
  const removed = { blobs: [version.blob], last: { type: 'StaleRemoved', version: version.blob.version } as Change, deleteMarker: false };
  const serving = record.state === 'live' || record.state === 'unlinked' ? currentVersion(found, record) : undefined;
  if (serving !== version) return { decision: [], removal: removed };
  // The value a key serves: as a DELETE of it, --protect refuses it; an unlinked one is LINK's to bring back.
  if (record.state === 'live' && deps.config.protect)
    return { decision: new MkvError('MKV_PROTECTED', 'the server runs with --protect: the value a key serves is not removed') };
  if (record.state === 'unlinked')
    return {
      decision: new MkvError(
        'MKV_PROTECTED',
        'the key is unlinked (LINK brings it back): LINK or DELETE it before removing its value by id',
      ),
    };
  const before = latestBefore(found, id);
  if (!before && record.writing !== null)
    return {
      decision: new MkvError(
        'MKV_KEY_LOCKED',
        'an overwrite of this key is in flight (or was given up: mkv gc cleans it up): its only version stays until it ends',
      ),
    };
  if (!before) {
    // Its only version: the key goes, every blob it has with it.
    return {
      decision: event({ type: 'DeleteStarted' }),
      removal: {
        blobs: allBlobs(record),
        last: { type: 'KeyDeleted', retained: false },
        deleteMarker: false,
        leaves: 'the key stays being deleted, DELETE it again to finish',
      },
    };
  }
  const state = 'value' in before ? restoredTo(record, before.value, [version.blob]) : deletedWith(record, [version.blob]);
  return {
    decision: event({ type: 'VersionRestored', version: 'value' in before ? before.value.seq : before.marker, state }),
    removal: removed,
  };
}

/**
 * Removes version `id` of the key (module header), if it meets `condition` (S3's If-Match and
 * the like); the delete right is the caller's to check.
 */
export async function removeVersion(
  deps: KeyDeps,
  key: string,
  id: number,
  cause: Cause,
  condition?: DeleteCondition,
): Promise<RemovedVersion> {
  let removal: Removal | undefined;
  // S3 takes deletes of several versions of one key at once: each waits its turn (rclone's cleanup sends them so).
  const write = await beginWriteWhenFree(
    deps.writer,
    deps.index,
    key,
    (record) => {
      const decided = decideRemoveVersion(deps, key, record, id, cause, condition);
      removal = decided.removal;
      return decided.decision;
    },
    {},
  );
  try {
    const { blobs, last, deleteMarker, leaves = 'its id again finishes it' } = removal!;
    if (last === undefined) return { deleteMarker };
    const failures = await removeBlobs(deps.volumes, key, blobs);
    if (failures.length > 0)
      throw new MkvError(
        'MKV_VOLUME_FAILED',
        `removing the version's blob failed (${failures.map((failure) => `${failure.volume}: ${failure.reason}`).join('; ')}); ${leaves}`,
      );
    await write.finish([{ key, cause, change: last }]);
    return { deleteMarker };
  } finally {
    await write.release();
  }
}
