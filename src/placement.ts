// Placement: where a key lives, byte-compatible with the Go minikeyvalue.
//
//   keyToPath("/wehave")   = "/60/08/L3dlaGF2ZQ=="      (md5 bytes 0 and 1, then base64 of the key)
//   keyToVolumes(key, ...) = highest md5(key ‖ volume) first, the first `replicas` of them
//
// Both are pure and pinned by the vectors in test/unit/placement.test.ts.
import { hash } from 'node:crypto';

/** md5 of a string's UTF-8 bytes (crypto.hash: one call, no Hash object; cheaper than createHash, docs/design-figures.md). */
function md5(data: string): Buffer {
  return hash('md5', data, 'buffer');
}

function hexByte(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/**
 * The path of a key's blob on a volume. Standard base64 with padding; a `/` inside it is a
 * directory level, as the original wrote it. A base64 that *ends* in `/` would have no file
 * name, so that last `/` is written as `_`, which standard base64 never produces.
 */
export function keyToPath(key: string): string {
  const digest = md5(key);
  let name = Buffer.from(key, 'utf8').toString('base64');
  if (name.endsWith('/')) name = name.slice(0, -1) + '_';
  return `/${hexByte(digest[0]!)}/${hexByte(digest[1]!)}/${name}`;
}

/**
 * The path of one version of a key's blob: the key's own path (version 0, every value the native
 * API writes, as the original lays them out), or that path with "~N" (N the seq that began an S3
 * overwrite: written beside the value it replaces). "~" is in no base64.
 */
export function blobPath(key: string, version: number): string {
  return version === 0 ? keyToPath(key) : `${keyToPath(key)}~${version}`;
}

/** A blob file name as a key's file name and a version (0 when it has no "~N"); undefined when the "~" part is not one. */
export function splitVersion(name: string): { name: string; version: number } | undefined {
  const tilde = name.lastIndexOf('~');
  if (tilde === -1) return { name, version: 0 };
  const version = name.slice(tilde + 1);
  if (!/^[1-9][0-9]{0,15}$/.test(version)) return undefined;
  return { name: name.slice(0, tilde), version: Number(version) };
}

/** The inverse of the file-name part of keyToPath (used by rescans); undefined when it is not one. */
export function pathNameToKey(name: string): string | undefined {
  const base64 = name.endsWith('_') ? name.slice(0, -1) + '/' : name;
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(base64)) return undefined;
  const bytes = Buffer.from(base64, 'base64');
  const key = bytes.toString('utf8');
  return Buffer.from(key, 'utf8').equals(bytes) ? key : undefined;
}

/**
 * The volumes a key belongs on: each volume scored by md5(key ‖ volume), highest first (a
 * stable sort, so ties keep the order given), the first `replicas` taken. With subvolumes the
 * volume gets `/svXX`, chosen by the last four bytes of the same score, so it is stable in
 * the volume server's name, not its position in the list.
 */
export function keyToVolumes(key: string, volumes: readonly string[], replicas: number, subvolumes: number): string[] {
  // The UTF-8 of key + volume is the UTF-8 of the key followed by the volume's.
  const scored = volumes.map((volume, position) => ({ volume, position, score: md5(key + volume) }));
  scored.sort((a, b) => Buffer.compare(b.score, a.score) || a.position - b.position);
  return scored.slice(0, replicas).map(({ volume, score }) => {
    if (subvolumes <= 1) return volume;
    const subvolume = score.readUInt32BE(12) % subvolumes;
    return `${volume}/sv${subvolume.toString(16).toUpperCase().padStart(2, '0')}`;
  });
}

/** True when a key's stored volumes differ from where placement puts it now. */
export function needsRebalance(storedVolumes: readonly string[], targetVolumes: readonly string[]): boolean {
  if (storedVolumes.length !== targetVolumes.length) return true;
  return storedVolumes.some((volume, i) => volume !== targetVolumes[i]);
}

/** "host:port/sv07" → "host:port": the server a (sub)volume lives on. */
export function volumeHost(volume: string): string {
  const slash = volume.indexOf('/');
  return slash === -1 ? volume : volume.slice(0, slash);
}

/** "host:port/sv07" → "/sv07": the path prefix of a (sub)volume on its server. */
export function volumePrefix(volume: string): string {
  const slash = volume.indexOf('/');
  return slash === -1 ? '' : volume.slice(slash);
}
