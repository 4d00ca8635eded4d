// mkv gc: hard-delete keys unlinked before a time (the original left that to the user, via
// ?unlinked and DELETE), and, once they are older than a grace period, clean up writes that
// never committed (pending keys whose blobs may sit on some volumes, S3 overwrites in flight),
// finish DELETEs that never did (deleting keys), and remove the blobs of values overwrites
// replaced that were left behind. Each appends events (KeyDeleted, WriteAborted), so history stays
// complete.
import { isMkvError, MkvError } from '../errors.js';
import type { KeyRecord } from '../index/evolve.js';
import type { KeyDeps } from '../keys/deps.js';
import { giveUpOverwrites, abandonPendingWrite, deleteKey } from '../keys/remove.js';
import { dueStale, removeStale } from '../keys/stale-sweeper.js';
import { createProgress } from './progress.js';
import { forEachConcurrent } from './work-queue.js';

export interface GcOptions {
  /** Delete keys whose unlink happened before this instant (ms since the epoch). */
  unlinkedBefore?: number;
  /** Abort pending writes, and finish DELETEs, begun before this instant and never finished. */
  pendingBefore?: number;
  dryRun?: boolean;
  concurrency?: number;
  quiet?: boolean;
}

export interface GcReport {
  deleted: string[];
  aborted: string[];
  /** Keys whose replaced values' blobs were removed. */
  stale: string[];
  failed: Array<{ key: string; reason: string }>;
}

/** gc runs the API's own operations (keys/remove.ts), each on the record it looked at only. */
export async function collectGarbage(deps: KeyDeps, options: GcOptions): Promise<GcReport> {
  const { index } = deps;
  const report: GcReport = { deleted: [], aborted: [], stale: [], failed: [] };
  const progress = createProgress({ label: 'gc', unit: 'keys', total: index.count(), quiet: options.quiet ?? false });
  const cause = { origin: 'gc', client: null };
  const now = Date.now();
  await forEachConcurrent(index.entries(), options.concurrency ?? 16, async ([key, record]) => {
    progress.add(1);
    // When it was unlinked, not when it last changed (a repair or a move may have come since).
    const unlinkedAt = () => index.historyOf(key).findLast((event) => event.change.type === 'KeyUnlinked')?.time ?? record.time;
    const unlinkedLongAgo = record.state === 'unlinked' && options.unlinkedBefore !== undefined && unlinkedAt() < options.unlinkedBefore;
    // A write, an overwrite or a DELETE that began that long ago and never finished: abandoned.
    const interrupted = options.pendingBefore !== undefined && record.time < options.pendingBefore;
    const abandoned = record.state === 'pending' && interrupted;
    const halfDeleted = record.state === 'deleting' && interrupted;
    const halfWritten = record.writing !== null && interrupted && record.state !== 'deleting';
    // Replaced values' blobs whose time has come (with --retain, those past the window).
    const staleDue = record.stale.length > 0 && dueStale(deps, key, record, now).length > 0;
    if (!unlinkedLongAgo && !abandoned && !halfDeleted && !halfWritten && !staleDue) return;
    const deletes = unlinkedLongAgo || halfDeleted;
    if (options.dryRun) {
      if (deletes) report.deleted.push(key);
      else if (abandoned || halfWritten) report.aborted.push(key);
      else report.stale.push(key);
      return;
    }
    const unchanged = (now: KeyRecord | undefined) =>
      now?.seq === record.seq ? undefined : new MkvError('MKV_NOT_FOUND', 'the key changed since gc read it');
    try {
      if (deletes) await deleteKey(deps, key, cause, { refuse: unchanged });
      else if (abandoned) await abandonPendingWrite(deps, key, record.seq, cause, 'gc: the write never committed');
      else {
        if (halfWritten) await giveUpOverwrites(deps, key, record.seq, cause, 'gc: the overwrite never committed');
        // The blobs of values overwrites replaced, that their grace period left behind.
        if (staleDue && (await removeStale(deps, key, now)) > 0) report.stale.push(key);
        if (halfWritten) report.aborted.push(key);
        return;
      }
    } catch (error) {
      // Changed since it was read (linked, written, deleted): not gc's to touch any more.
      if (!isMkvError(error, 'MKV_NOT_FOUND')) report.failed.push({ key, reason: (error as Error).message });
      return;
    }
    (deletes ? report.deleted : report.aborted).push(key);
  });
  const would = options.dryRun ? 'would be ' : '';
  progress.finish(
    `gc${options.dryRun ? ' (dry run)' : ''}: ${report.deleted.length} unlinked keys ${would}deleted, ` +
      `${report.aborted.length} abandoned writes ${would}cleaned up, ${report.stale.length} keys' replaced values ${would}removed, ${report.failed.length} failed`,
  );
  return report;
}
