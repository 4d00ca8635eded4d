// Where a GET of a key goes: a replica that holds its blob, found by a HEAD to each in random
// order (as the original: a replica that lost its copy, or a volume that is down, is skipped).
import type { KeyRecord } from '../index/evolve.js';
import { blobPath, keyToVolumes, needsRebalance } from '../placement.js';
import type { KeyDeps } from './deps.js';

/** A copy in random order (Fisher–Yates): replicas are tried in random order, as the original did. */
export function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

export interface Located {
  /** The key's record (undefined: none). */
  record: KeyRecord | undefined;
  /** The blob's URL on a replica a HEAD found holding it; undefined when the key is not live or no replica has it. */
  url: string | undefined;
  /** Whether the replicas are where placement puts the key now (live keys). */
  balanced: boolean;
}

export async function locateKey(deps: KeyDeps, key: string): Promise<Located> {
  const record = deps.index.get(key);
  if (!record || record.state !== 'live') return { record, url: undefined, balanced: true };
  const { config, volumes } = deps;
  const balanced = !needsRebalance(record.volumes, keyToVolumes(key, config.volumes, config.replicas, config.subvolumes));
  const path = blobPath(key, record.version);
  for (const volume of shuffled(record.volumes)) {
    const head = await volumes.head(volume, path);
    if (head.status === 'found') return { record, url: volumes.publicUrl(volume, path), balanced };
    if (head.status === 'unknown') deps.logger.warn('replica did not answer a HEAD', { key, volume, reason: head.reason });
  }
  return { record, url: undefined, balanced };
}
