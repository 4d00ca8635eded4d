// Removing the blobs of values that were replaced (an S3 overwrite's old value; with --retain,
// every overwritten or deleted value). Not at once: a reader sent to the old blob a moment
// before the switch (a redirect, or a GET the master streams) must still find it, so the old
// value stays for a grace period (--stale-grace, a minute by default), or with --retain for the
// retention window, counted from when it was replaced, and is removed after it, each blob
// version recorded as StaleRemoved. Whatever a stop or a failed volume left behind, the record
// still names (its `stale` list): the retention sweep (every few minutes with --retain) and
// mkv gc remove it once its time has come. The sweep also ends a deleted key whose delete
// marker is past the window and that keeps no blob (MarkerRemoved): S3's expired delete marker.
import type { BlobVersion, EventInput, LogEvent } from '../events/event.js';
import { isMkvError } from '../errors.js';
import { inFlight, type KeyRecord } from '../index/evolve.js';
import { blobPath } from '../placement.js';
import type { KeyDeps } from './deps.js';
import { beginWrite, beginWriteWhenFree, type KeyWrite } from './key-write.js';
import { removeReplicas } from './replicas.js';
import { versionsOf } from './versions.js';

/** Removes the key's stale blobs once the grace period has passed (in the background). */
export function sweepStale(deps: KeyDeps, key: string): void {
  const timer = setTimeout(() => {
    removeStale(deps, key).catch((error: unknown) => deps.logger.warn('removing a replaced value failed; mkv gc will', { key, error }));
  }, deps.config.staleGraceMs);
  timer.unref();
}

/** A stale blob: which, when it was replaced, and its size (null: not known). */
export interface StaleBlob {
  version: number;
  volumes: string[];
  replaced: number;
  size: number | null;
}

/**
 * The key's stale blobs with when each was replaced, from its history: a value's blob when the
 * value was written over or deleted; an overwrite given up (never a value) at once; after a
 * compaction, which folded the events that say it, no earlier than the compaction's snapshot.
 */
export function staleBlobs(record: KeyRecord, history: readonly LogEvent[]): StaleBlob[] {
  const versions = versionsOf(history).versions;
  const first = history[0]?.change.type;
  const compacted = first === 'ObjectSnapshot' || first === 'KeySnapshot' ? history[0]!.time : 0;
  return record.stale.map((blob) => {
    const value = versions.findLast((candidate) => candidate.held && candidate.blob.version === blob.version);
    return {
      version: blob.version,
      volumes: blob.volumes,
      replaced: value?.replaced ?? compacted,
      size: value?.size ?? null,
    };
  });
}

/** The key's stale blobs whose time has come: all of them without --retain; with it, those replaced the window before `now`. */
export function dueStale(deps: Pick<KeyDeps, 'config' | 'index'>, key: string, record: KeyRecord, now: number): BlobVersion[] {
  const { retainMs, staleGraceMs } = deps.config;
  if (retainMs === 0) return record.stale;
  return staleBlobs(record, deps.index.historyOf(key)).filter((blob) => blob.replaced + Math.max(retainMs, staleGraceMs) <= now);
}

/**
 * Removes the key's stale blobs whose time has come (all of them without --retain; with it,
 * those replaced at least the window before `now`); returns how many versions went. With
 * --retain a version that was stale may be the key's value again (S3 DeleteObject of the one
 * after it: VersionRestored), so what is due is looked at again under the key's lock, which is
 * held while its bytes go (a key another write holds past LOCK_PATIENCE_MS waits for the next
 * sweep). Without it no stale version serves again, and no lock is taken: the key's writes
 * never wait on a sweep.
 */
export async function removeStale(deps: KeyDeps, key: string, now = Date.now()): Promise<number> {
  deps.index.refresh(); // another process (the writer) may have committed since this one last read
  const seen = deps.index.get(key);
  if (!seen || seen.stale.length === 0) return 0;
  const dueOf = (record: KeyRecord | undefined) =>
    record ? dueStale(deps, key, record, now).filter((blob) => !servesOrWrites(record, blob)) : [];
  let due = dueOf(seen);
  if (due.length === 0) return 0;
  let write: KeyWrite | undefined;
  if (deps.config.retainMs > 0) {
    write = await beginWriteWhenFree(deps.writer, deps.index, key, (record) => {
      due = dueOf(record);
      return [];
    }).catch((error: unknown) => {
      if (isMkvError(error, 'MKV_KEY_LOCKED')) return undefined;
      throw error;
    });
    if (!write) return 0;
  }
  try {
    const removed: EventInput[] = [];
    for (const blob of due) {
      const failures = await removeReplicas(deps.volumes, blob.volumes, blobPath(key, blob.version));
      if (failures.length === 0)
        removed.push({ key, cause: { origin: 'sweep', client: null }, change: { type: 'StaleRemoved', version: blob.version } });
      else deps.logger.warn('a replaced value could not be removed from a volume; mkv gc will', { key, version: blob.version, failures });
    }
    if (removed.length > 0) await (write ? write.finish(removed) : deps.writer.append(removed));
    return removed.length;
  } finally {
    await write?.release();
  }
}

/** Whether a blob the record names stale is its value's, or an overwrite's in flight (never so in a record evolve wrote; a guard). */
function servesOrWrites(record: KeyRecord, blob: BlobVersion): boolean {
  const value = record.state !== 'deleted' && record.version === blob.version;
  return value || inFlight(record).some((writing) => writing.version === blob.version);
}

export interface RetainedFigures {
  /** Blobs kept for values that were replaced, and their bytes (those whose size is known). */
  blobs: number;
  bytes: number;
  /** Versions removed by this sweep, their window passed. */
  removed: number;
}

/** How often the master runs the retention sweep: a tenth of the window, between a second and an hour. */
export function retentionSweepEveryMs(retainMs: number): number {
  return Math.min(3_600_000, Math.max(1000, Math.round(retainMs / 10)));
}

/**
 * Runs the retention sweep now and then every retentionSweepEveryMs (one at a time), telling
 * `onFigures` what is kept after each; stop() ends it.
 */
export function startRetentionSweeps(deps: KeyDeps, onFigures: (figures: RetainedFigures) => void): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = () => {
    if (stopped || running) return;
    running = sweepRetained(deps)
      .then(onFigures, (error: unknown) =>
        deps.logger.warn('the retention sweep failed; it runs again', { error: (error as Error).message }),
      )
      .finally(() => (running = undefined));
  };
  run();
  const timer = setInterval(run, retentionSweepEveryMs(deps.config.retainMs));
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * Ends a deleted key that keeps no blob once its delete marker is past the window (the key's
 * time, if a compaction folded the marker away); returns whether it did. Under the key's lock:
 * a PUT of it may have begun.
 */
async function expireMarker(deps: KeyDeps, key: string, now: number): Promise<boolean> {
  const seen = deps.index.get(key);
  // An overwrite in flight (or abandoned, until gc gives it up) keeps the record.
  if (seen?.state !== 'deleted' || seen.stale.length > 0 || seen.writing !== null) return false;
  const marker = versionsOf(deps.index.historyOf(key)).markers.at(-1);
  if ((marker?.time ?? seen.time) + deps.config.retainMs > now) return false;
  const write = await beginWrite(deps.writer, deps.index, key, (record) =>
    record?.seq === seen.seq && record.writing === null
      ? [{ key, cause: { origin: 'sweep', client: null }, change: { type: 'MarkerRemoved', marker: marker?.seq ?? 0, state: null } }]
      : [],
  );
  await write.release();
  return write.started.length > 0;
}

/**
 * The retention sweep: every key with stale blobs, those past their time removed, the rest
 * counted (for /metrics), and every deleted key whose marker is past the window ended. With
 * --retain the master runs it every few minutes; mkv gc runs it too.
 */
export async function sweepRetained(deps: KeyDeps, now = Date.now()): Promise<RetainedFigures> {
  const figures: RetainedFigures = { blobs: 0, bytes: 0, removed: 0 };
  const keys: string[] = [];
  for (const [key, record] of deps.index.entries()) if (record.stale.length > 0 || record.state === 'deleted') keys.push(key);
  for (const key of keys) {
    try {
      figures.removed += await removeStale(deps, key, now);
      if (deps.config.retainMs > 0 && (await expireMarker(deps, key, now))) figures.removed++;
    } catch (error) {
      deps.logger.warn('removing replaced values failed; the next sweep tries again', { key, error: (error as Error).message });
    }
    const record = deps.index.get(key);
    if (!record || record.stale.length === 0) continue;
    for (const blob of staleBlobs(record, deps.index.historyOf(key))) {
      figures.blobs++;
      figures.bytes += blob.size ?? 0;
    }
  }
  return figures;
}
