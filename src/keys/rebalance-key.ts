// Moving one key's blob to where placement puts it for the current volume set.
//
//   HEAD the replicas that stay ─▶ one GET of a source, teed to every target that lacks the blob
//   (streamed, size and md5 checked) ─▶ KeyRelocated ─▶ delete the copies no longer wanted
//
// Unlike the original: a HEAD that times out is "unknown", never "missing" (no blind re-copy);
// every missing copy is attempted before the key is given up; Content-Md5 is kept. A key that
// is already where placement says is skipped without a request, so a re-run picks up where an
// interrupted one stopped.
import { MkvError } from '../errors.js';
import type { Cause } from '../events/event.js';
import type { KeyRecord } from '../index/evolve.js';
import { blobPath, keyToVolumes, needsRebalance } from '../placement.js';
import type { VolumeClient } from '../volumes/client.js';
import type { Writer } from '../writer/writer.js';
import type { KeyDeps } from './deps.js';
import { withKeyLock } from './key-write.js';
import { copyToTargets, headAll, looksGood, removeReplicas } from './replicas.js';

export type RebalanceOutcome =
  | { status: 'balanced' }
  | { status: 'moved'; copies: number; bytes: number; staleLeft: string[]; seq: number }
  | { status: 'failed'; reason: string };

export interface VolumeLayout {
  volumes: string[];
  replicas: number;
  subvolumes: number;
}

/** Moves one key whose lock the caller holds (or the whole db: an offline rebalance); rebalanceKey takes the lock itself. */
export async function moveLockedKey(
  key: string,
  record: KeyRecord,
  placement: VolumeLayout,
  client: VolumeClient,
  writer: Writer,
  cause: Cause,
): Promise<RebalanceOutcome> {
  // A key deleted with --retain has no value to move; its kept blobs stay where they are, as stale ones do.
  if (record.state === 'deleted') return { status: 'balanced' };
  if (record.state === 'pending') return { status: 'failed', reason: 'the key has no committed value (a write is pending)' };
  if (record.state === 'deleting') return { status: 'failed', reason: 'a DELETE of the key did not finish; DELETE it again' };
  if (record.writing) return { status: 'failed', reason: 'an overwrite of the key is in progress (or never finished); try again later' };
  const targets = keyToVolumes(key, placement.volumes, placement.replicas, placement.subvolumes);
  if (!needsRebalance(record.volumes, targets)) return { status: 'balanced' };
  const path = blobPath(key, record.version);
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
  if (missing.length > 0)
    problems.push(sources.length === 0 ? 'no replica holds the blob' : `no source could fill ${missing.join(', ')}`, ...attempts);
  if (problems.length > 0) return { status: 'failed', reason: problems.join('; ') };
  const [relocated] = await writer.append([{ key, cause, change: { type: 'KeyRelocated', volumes: targets } }]);
  const stale = record.volumes.filter((volume) => !targets.includes(volume));
  const staleLeft = (await removeReplicas(client, stale, path)).map((failure) => failure.volume);
  return { status: 'moved', copies, bytes, staleLeft, seq: relocated!.seq };
}

/**
 * POST /key?rebalance: takes the key's lock and moves it (moveLockedKey). Returns the seq of the KeyRelocated event,
 * or undefined when the key was already in place.
 */
export async function rebalanceKey(deps: KeyDeps, key: string, cause: Cause): Promise<number | undefined> {
  return withKeyLock(deps.writer, key, async () => {
    const record = deps.index.get(key);
    if (!record) throw new MkvError('MKV_NOT_FOUND', 'no such key');
    const outcome = await moveLockedKey(key, record, deps.config, deps.volumes, deps.writer, cause);
    if (outcome.status === 'failed') throw new MkvError('MKV_REBALANCE_FAILED', `rebalance failed: ${outcome.reason}`);
    return outcome.status === 'moved' ? outcome.seq : undefined;
  });
}
