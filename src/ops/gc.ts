// mkv gc: hard-delete keys unlinked before a time (the original left that to the user, via
// ?unlinked and DELETE), and clean up writes that never committed — pending keys whose blobs
// may sit on some volumes — once they are older than a grace period. Both append events
// (KeyDeleted, WriteAborted), so history stays complete.
import type { EventInput } from '../events/event.js';
import type { IndexStore } from '../index/index-store.js';
import { keyToPath } from '../placement.js';
import type { VolumeClient } from '../volumes/client.js';
import type { Writer } from '../writer/writer.js';
import { createProgress } from './progress.js';
import { forEachConcurrent } from './work-queue.js';

export interface GcOptions {
  /** Delete keys whose unlink happened before this instant (ms since the epoch). */
  unlinkedBefore?: number;
  /** Abort pending writes whose WriteStarted is older than this instant. */
  pendingBefore?: number;
  dryRun?: boolean;
  concurrency?: number;
  quiet?: boolean;
}

export interface GcReport {
  deleted: string[];
  aborted: string[];
  failed: Array<{ key: string; reason: string }>;
}

export async function collectGarbage(index: IndexStore, writer: Writer, client: VolumeClient, options: GcOptions): Promise<GcReport> {
  const report: GcReport = { deleted: [], aborted: [], failed: [] };
  const progress = createProgress({ label: 'gc', unit: 'keys', total: index.count(), quiet: options.quiet ?? false });
  const cause = { origin: 'gc', client: null };
  await forEachConcurrent(index.entries(), options.concurrency ?? 16, async ([key, record]) => {
    progress.add(1);
    // When it was unlinked, not when it last changed (a repair or a move may have come since).
    const unlinkedAt = () => index.historyOf(key).findLast((event) => event.change.type === 'KeyUnlinked')?.time ?? record.time;
    const unlinkedLongAgo = record.state === 'unlinked' && options.unlinkedBefore !== undefined && unlinkedAt() < options.unlinkedBefore;
    const abandoned = record.state === 'pending' && options.pendingBefore !== undefined && record.time < options.pendingBefore;
    if (!unlinkedLongAgo && !abandoned) return;
    if (options.dryRun) {
      (unlinkedLongAgo ? report.deleted : report.aborted).push(key);
      return;
    }
    const path = keyToPath(key);
    const removals = await Promise.allSettled(record.volumes.map((volume) => client.delete(volume, path)));
    const failures = removals.flatMap((result, i) => (result.status === 'rejected' ? [`${record.volumes[i]}: ${(result.reason as Error).message}`] : []));
    if (failures.length > 0) {
      report.failed.push({ key, reason: failures.join('; ') });
      return;
    }
    const event: EventInput = unlinkedLongAgo
      ? { key, cause, change: { type: 'KeyDeleted' } }
      : { key, cause, change: { type: 'WriteAborted', reason: 'gc: the write never committed' } };
    await writer.append([event]);
    (unlinkedLongAgo ? report.deleted : report.aborted).push(key);
  });
  progress.finish(
    `gc${options.dryRun ? ' (dry run)' : ''}: ${report.deleted.length} unlinked keys deleted, ` +
      `${report.aborted.length} abandoned writes cleaned up, ${report.failed.length} failed`,
  );
  return report;
}
