// S3 DeleteObject ?versionId=N on --retain's versions (s3/versions.ts names them):
//
//   a version the key no longer serves   its blob removed from every volume now, StaleRemoved
//   the latest delete marker             undone: the newest version kept before it is the key's
//                                        value again (VersionRestored); none kept: nothing to do
//   the value the key serves now, an older delete marker: refused (501), never half done; the
//   log keeps every marker, and the value goes with a DELETE (a marker) and then by its id
import { MkvError } from '../errors.js';
import type { Cause } from '../events/event.js';
import { toState, type KeyRecord } from '../index/evolve.js';
import type { KeyDeps } from './deps.js';
import { beginWriteWhenFree, type Decision } from './key-write.js';
import { removeReplicas } from './replicas.js';
import { blobPath } from '../placement.js';
import { currentVersion, versionRecord, versionsOf, type KeyVersion } from './versions.js';

export interface RemovedVersion {
  /** The id removed was a delete marker. */
  deleteMarker: boolean;
}

/**
 * How removing version `id` begins on the key's record: its one event, nothing (`target`: the
 * version whose blob goes), or why not.
 */
export function decideRemoveVersion(
  deps: Pick<KeyDeps, 'index'>,
  key: string,
  record: KeyRecord | undefined,
  id: number,
  cause: Cause,
): { decision: Decision; target?: KeyVersion } {
  const found = versionsOf(deps.index.historyOf(key));
  const marker = found.markers.find((candidate) => candidate.seq === id);
  if (marker) {
    const newest = Math.max(0, ...found.markers.map((candidate) => candidate.seq), ...found.versions.map((version) => version.seq));
    if (record?.state !== 'deleted' || newest !== id)
      return {
        decision: new MkvError(
          'MKV_UNKNOWN_OPERATION',
          'only the latest delete marker of a deleted key can be removed (the log keeps every marker)',
        ),
      };
    const before = found.versions.findLast((version) => version.held && version.seq < id);
    if (!before) return { decision: [] };
    const restored = toState(versionRecord(before));
    restored.stale = record.stale.filter((blob) => blob.version !== before.blob.version);
    return { decision: [{ key, cause, change: { type: 'VersionRestored', version: before.seq, state: restored } }] };
  }
  const version = found.versions.find((candidate) => candidate.seq === id);
  if (!version?.held || !record) return { decision: new MkvError('MKV_NO_SUCH_VERSION', 'The specified version does not exist.') };
  const serving = record.state === 'live' || record.state === 'unlinked' ? currentVersion(found, record) : undefined;
  if (serving === version)
    return {
      decision: new MkvError(
        'MKV_UNKNOWN_OPERATION',
        "the version is the key's value: DELETE the key (a delete marker) first, then this version by its id",
      ),
    };
  return { decision: [], target: version };
}

/** Removes version `id` of the key (module header); the delete right is the caller's to check. */
export async function removeVersion(deps: KeyDeps, key: string, id: number, cause: Cause): Promise<RemovedVersion> {
  let target: KeyVersion | undefined;
  // S3 takes deletes of several versions of one key at once: each waits its turn (rclone's cleanup sends them so).
  const write = await beginWriteWhenFree(
    deps.writer,
    deps.index,
    key,
    (record) => {
      const decided = decideRemoveVersion(deps, key, record, id, cause);
      target = decided.target;
      return decided.decision;
    },
    {},
  );
  try {
    if (!target) return { deleteMarker: true };
    const failures = await removeReplicas(deps.volumes, target.blob.volumes, blobPath(key, target.blob.version));
    if (failures.length > 0)
      throw new MkvError(
        'MKV_VOLUME_FAILED',
        `removing the version's blob failed (${failures.map((failure) => `${failure.volume}: ${failure.reason}`).join('; ')}); it is kept, try again`,
      );
    await write.finish([{ key, cause, change: { type: 'StaleRemoved', version: target.blob.version } }]);
    return { deleteMarker: false };
  } finally {
    await write.release();
  }
}
