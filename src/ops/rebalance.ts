// Rebalance: move a key's blob to where placement puts it for the current volume set.
//
//   HEAD every old and new replica ─▶ copy from a good one to each target that lacks it
//   (streamed, size and md5 checked) ─▶ KeyRelocated ─▶ delete the copies no longer wanted
//
// Unlike the original: a HEAD that times out is "unknown", never "missing" (no blind re-copy);
// every missing copy is attempted before the key is given up; Content-Md5 is kept. A key that
// is already where placement says is skipped without a request, so a re-run picks up where an
// interrupted one stopped.
import { isMkvError } from '../errors.js';
import type { Cause } from '../events/event.js';
import type { KeyRecord } from '../index/evolve.js';
import type { IndexStore } from '../index/index-store.js';
import type { Logger } from '../logger.js';
import { keyToPath, keyToVolumes, needsRebalance } from '../placement.js';
import type { VolumeClient } from '../volumes/client.js';
import type { Writer } from '../writer/writer.js';
import { createProgress } from './progress.js';
import { copyReplica, headAll, looksGood } from './replicas.js';
import { forEachConcurrent } from './work-queue.js';

export type RebalanceOutcome =
  | { status: 'balanced' }
  | { status: 'moved'; copies: number; bytes: number; staleLeft: string[]; seq: number }
  | { status: 'failed'; reason: string };

export interface Placement {
  volumes: string[];
  replicas: number;
  subvolumes: number;
}

/** Moves one key (the caller holds its lock, or the whole db). */
export async function rebalanceKey(
  key: string,
  record: KeyRecord,
  placement: Placement,
  client: VolumeClient,
  writer: Writer,
  cause: Cause,
): Promise<RebalanceOutcome> {
  if (record.state === 'pending') return { status: 'failed', reason: 'the key has no committed value (a write is pending)' };
  const targets = keyToVolumes(key, placement.volumes, placement.replicas, placement.subvolumes);
  if (!needsRebalance(record.volumes, targets)) return { status: 'balanced' };
  const path = keyToPath(key);
  const everywhere = [...new Set([...record.volumes, ...targets])];
  const states = await headAll(client, everywhere, path);
  const stateOf = new Map(states.map((state) => [state.volume, state]));
  const sources = states.filter((state) => looksGood(state, record)).map((state) => state.volume);
  if (sources.length === 0) {
    const seen = states.map((state) => `${state.volume}: ${state.head.status === 'unknown' ? state.head.reason : state.head.status}`);
    return { status: 'failed', reason: `no replica holds the blob (${seen.join('; ')})` };
  }
  const problems: string[] = [];
  let copies = 0;
  let bytes = 0;
  // The targets are filled at once; each tries every good source before it gives up.
  await Promise.all(
    targets.map(async (target) => {
      const state = stateOf.get(target)!;
      if (looksGood(state, record)) return;
      if (state.head.status === 'unknown') {
        problems.push(`${target} did not answer (${state.head.reason}); not copying blindly`);
        return;
      }
      const attempts: string[] = [];
      for (const source of sources) {
        try {
          bytes += await copyReplica(client, source, target, path, record);
          copies++;
          return;
        } catch (error) {
          attempts.push(isMkvError(error) ? error.message : `${source} → ${target}: ${(error as Error).message}`);
        }
      }
      problems.push(...attempts);
    }),
  );
  if (problems.length > 0) return { status: 'failed', reason: problems.join('; ') };
  const [relocated] = await writer.append([{ key, cause, change: { type: 'KeyRelocated', volumes: targets } }]);
  const stale = record.volumes.filter((volume) => !targets.includes(volume));
  const removals = await Promise.allSettled(stale.map((volume) => client.delete(volume, path)));
  const staleLeft = removals.flatMap((result, i) => (result.status === 'rejected' ? [stale[i]!] : []));
  return { status: 'moved', copies, bytes, staleLeft, seq: relocated!.seq };
}

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
  placement: Placement,
  options: { concurrency?: number; quiet?: boolean; logger?: Logger } = {},
): Promise<RebalanceReport> {
  const started = Date.now();
  const report: RebalanceReport = { keys: 0, moved: 0, balanced: 0, copies: 0, bytes: 0, failed: [], staleLeft: [], seconds: 0 };
  const progress = createProgress({ label: 'rebalance', unit: 'keys', total: index.count(), quiet: options.quiet ?? false });
  const cause = { origin: 'rebalance', client: null };
  await forEachConcurrent(index.entries(), options.concurrency ?? 16, async ([key, record]) => {
    report.keys++;
    const outcome = await rebalanceKey(key, record, placement, client, writer, cause).catch(
      (error: unknown): RebalanceOutcome => ({ status: 'failed', reason: (error as Error).message }),
    );
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
