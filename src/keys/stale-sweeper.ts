// Removing the blobs of values an S3 overwrite replaced. Not at once: a reader sent to the old
// blob a moment before the switch (a redirect, or a GET the master streams) must still find it,
// so the old value stays for a grace period (--stale-grace, a minute by default) and is removed
// after it, each blob version recorded as StaleRemoved. Whatever a stop or a failed volume left
// behind, the record still names (its `stale` list), and mkv gc removes it.
import type { EventInput } from '../events/event.js';
import { blobPath } from '../placement.js';
import type { KeyDeps } from './deps.js';
import { removeReplicas } from './replicas.js';

/** Removes the key's stale blobs once the grace period has passed (in the background). */
export function sweepStale(deps: KeyDeps, key: string): void {
  const timer = setTimeout(() => {
    removeStale(deps, key).catch((error: unknown) => deps.logger.warn('removing a replaced value failed; mkv gc will', { key, error }));
  }, deps.config.staleGraceMs);
  timer.unref();
}

/** Removes every stale blob the key's record names now; returns how many versions went. */
export async function removeStale(deps: KeyDeps, key: string): Promise<number> {
  deps.index.refresh(); // another process (the writer) may have committed since this one last read
  const record = deps.index.get(key);
  if (!record || record.stale.length === 0) return 0;
  const removed: EventInput[] = [];
  for (const blob of record.stale) {
    const failures = await removeReplicas(deps.volumes, blob.volumes, blobPath(key, blob.version));
    if (failures.length === 0)
      removed.push({ key, cause: { origin: 'sweep', client: null }, change: { type: 'StaleRemoved', version: blob.version } });
    else deps.logger.warn('a replaced value could not be removed from a volume; mkv gc will', { key, version: blob.version, failures });
  }
  // Not under the key's lock: a version, once stale, never serves again, so this only ever
  // takes it off the list (and a key deleted meanwhile stays deleted).
  if (removed.length > 0) await deps.writer.append(removed);
  return removed.length;
}
