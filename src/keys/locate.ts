// Where a GET of a key goes: a replica that holds its blob, found by a HEAD to each in random
// order (as the original: a replica that lost its copy, or a volume that is down, is skipped).
import type { KeyRecord } from '../index/evolve.js';
import { blobPath, keyToVolumes, needsRebalance } from '../placement.js';
import type { KeyDeps } from './deps.js';
import { findReplica } from './read-value.js';

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
  const found = await findReplica(deps, key, record);
  return { record, url: found && volumes.publicUrl(found.volume, blobPath(key, record.version)), balanced };
}
