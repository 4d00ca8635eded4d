// Rebalance: move a key's blob to where placement puts it for the current volume set.
//
//   HEAD the replicas that stay ─▶ one GET of a source, teed to every target that lacks the blob
//   (streamed, size and md5 checked) ─▶ KeyRelocated ─▶ delete the copies no longer wanted
//
// Unlike the original: a HEAD that times out is "unknown", never "missing" (no blind re-copy);
// every missing copy is attempted before the key is given up; Content-Md5 is kept. A key that
// is already where placement says is skipped without a request, so a re-run picks up where an
// interrupted one stopped.
import type { Cause } from '../events/event.js';
import type { KeyRecord } from '../index/evolve.js';
import type { IndexStore } from '../index/index-store.js';
import type { Logger } from '../logger.js';
import { keyToPath, keyToVolumes, needsRebalance } from '../placement.js';
import type { VolumeClient } from '../volumes/client.js';
import type { Writer } from '../writer/writer.js';
import { createProgress } from './progress.js';
import { copyToTargets, headAll, looksGood } from './replicas.js';
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
  // Only a replica that stays is asked whether it is there: a new target is expected to lack the
  // blob (a copy overwrites whatever an interrupted run left), and a replica that goes is only a
  // source, whose GET says as much as a HEAD would.
  const staying = targets.filter((volume) => record.volumes.includes(volume));
  const states = await headAll(client, staying, path);
  const problems: string[] = [];
  const needed: string[] = [];
  const verified: string[] = [];
  for (const target of targets) {
    const state = states.find((candidate) => candidate.volume === target);
    if (state?.head.status === 'unknown') problems.push(`${target} did not answer (${state.head.reason}); not copying blindly`);
    else if (state && looksGood(state, record)) verified.push(target);
    else needed.push(target);
  }
  const sources = [...verified, ...record.volumes.filter((volume) => !targets.includes(volume))];
  let copies = 0;
  let bytes = 0;
  // One read of a source feeds every target still missing the blob; what it could not fill
  // tries the next source; a target whose own PUT failed is not tried again.
  let missing = problems.length > 0 ? [] : needed;
  const attempts: string[] = [];
  for (const source of sources) {
    if (missing.length === 0) break;
    const results = await copyToTargets(client, source, missing, path, record);
    missing = [];
    for (const result of results) {
      if (result.ok) {
        copies++;
        bytes += result.bytes;
      } else if (result.fault === 'target') {
        problems.push(result.reason);
      } else {
        missing.push(result.target);
        attempts.push(result.reason);
      }
    }
  }
  if (missing.length > 0) problems.push(sources.length === 0 ? 'no replica holds the blob' : `no source could fill ${missing.join(', ')}`, ...attempts);
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
