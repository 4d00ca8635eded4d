// mkv rebalance: every key moved to where placement puts it for the current volume set, each as
// keys/rebalance-key.ts moves one, many at once.
import type { IndexStore } from '../index/index-store.js';
import { keyToVolumes, needsRebalance } from '../placement.js';
import { moveLockedKey, type VolumeLayout, type RebalanceOutcome } from '../keys/rebalance-key.js';
import type { Logger } from '../logger.js';
import type { VolumeClient } from '../volumes/client.js';
import type { Writer } from '../writer/writer.js';
import { createProgress } from './progress.js';
import { forEachConcurrent } from './work-queue.js';

export interface RebalanceReport {
  keys: number;
  moved: number;
  balanced: number;
  copies: number;
  bytes: number;
  failed: Array<{ key: string; reason: string }>;
  staleLeft: Array<{ key: string; volume: string }>;
  seconds: number;
}

/** Rebalances every live and unlinked key (an unlinked blob must survive a volume's removal too). */
export async function rebalanceAll(
  index: IndexStore,
  writer: Writer,
  client: VolumeClient,
  placement: VolumeLayout,
  options: { concurrency?: number; quiet?: boolean; logger?: Logger } = {},
): Promise<RebalanceReport> {
  const started = Date.now();
  const report: RebalanceReport = { keys: 0, moved: 0, balanced: 0, copies: 0, bytes: 0, failed: [], staleLeft: [], seconds: 0 };
  const progress = createProgress({ label: 'rebalance', unit: 'keys', total: index.count(), quiet: options.quiet ?? false });
  const cause = { origin: 'rebalance', client: null };
  await forEachConcurrent(index.entries(), options.concurrency ?? 16, async ([key, record]) => {
    report.keys++;
    const outcome = await moveLockedKey(key, record, placement, client, writer, cause).catch((error: unknown): RebalanceOutcome => ({
      status: 'failed',
      reason: (error as Error).message,
    }));
    if (outcome.status === 'balanced') report.balanced++;
    else if (outcome.status === 'moved') {
      report.moved++;
      report.copies += outcome.copies;
      report.bytes += outcome.bytes;
      for (const volume of outcome.staleLeft) report.staleLeft.push({ key, volume });
    } else {
      report.failed.push({ key, reason: outcome.reason });
      options.logger?.warn('rebalance failed', { key, reason: outcome.reason });
    }
    progress.add(1);
  });
  report.seconds = (Date.now() - started) / 1000;
  const seconds = Math.max(report.seconds, 1e-3);
  progress.finish(
    `rebalanced ${report.keys} keys in ${report.seconds.toFixed(2)} s: moved ${report.moved} (${report.copies} copies, ` +
      `${(report.bytes / 2 ** 20).toFixed(1)} MB, ${Math.round(report.copies / seconds)} files/s, ${(report.bytes / 2 ** 20 / seconds).toFixed(1)} MB/s), ` +
      `already balanced ${report.balanced}, failed ${report.failed.length}`,
  );
  return report;
}

/** What a rebalance to `placement` would do, changing nothing (mkv rebalance --dry-run). */
export interface RebalancePlan {
  keys: number;
  /** Keys whose replicas are not where placement puts them, the copies they need and their bytes. */
  moves: number;
  copies: number;
  bytes: number;
  balanced: number;
  /** Keys a rebalance would report failed now (a write pending, a DELETE unfinished, an overwrite in flight). */
  blocked: number;
  /** Blobs on each volume now that would leave it, by volume. */
  leaving: Record<string, number>;
}

export function planRebalance(index: IndexStore, placement: VolumeLayout): RebalancePlan {
  const plan: RebalancePlan = { keys: 0, moves: 0, copies: 0, bytes: 0, balanced: 0, blocked: 0, leaving: {} };
  for (const [key, record] of index.entries()) {
    plan.keys++;
    if (record.state === 'deleted') {
      plan.balanced++; // no value to move; its kept blobs stay where they are
      continue;
    }
    if (record.state === 'pending' || record.state === 'deleting' || record.writing) {
      plan.blocked++;
      continue;
    }
    const targets = keyToVolumes(key, placement.volumes, placement.replicas, placement.subvolumes);
    if (!needsRebalance(record.volumes, targets)) {
      plan.balanced++;
      continue;
    }
    const copies = targets.filter((volume) => !record.volumes.includes(volume)).length;
    plan.moves++;
    plan.copies += copies;
    plan.bytes += copies * (record.size ?? 0);
    for (const volume of record.volumes) if (!targets.includes(volume)) plan.leaving[volume] = (plan.leaving[volume] ?? 0) + 1;
  }
  return plan;
}
