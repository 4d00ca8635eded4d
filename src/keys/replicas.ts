// A key's replicas on the volumes: asking which are there, copying a blob from one volume to
// others (streamed, never the whole value in memory, size and md5 checked against the index),
// and removing them — what PUT, DELETE, rebalance, repair and gc share.
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { MkvError } from '../errors.js';
import type { BlobVersion } from '../events/event.js';
import { blobPath } from '../placement.js';
import type { KeyRecord } from '../index/evolve.js';
import type { HeadResult, VolumeClient } from '../volumes/client.js';
import { describeFailure, discardBody, volumeUrl } from '../volumes/client.js';

export interface ReplicaState {
  volume: string;
  head: HeadResult;
}

/** Removes the blob from every volume at once; returns the volumes where that failed, and why. */
export async function removeReplicas(
  client: VolumeClient,
  volumes: readonly string[],
  path: string,
): Promise<Array<{ volume: string; reason: string }>> {
  const removals = await Promise.allSettled(volumes.map((volume) => client.delete(volume, path)));
  return removals.flatMap((result, i) =>
    result.status === 'rejected' ? [{ volume: volumes[i]!, reason: (result.reason as Error).message }] : [],
  );
}

/** Removes every blob version given of a key from its volumes; returns where that failed, and why. */
export async function removeBlobs(
  client: VolumeClient,
  key: string,
  blobs: readonly BlobVersion[],
): Promise<Array<{ volume: string; reason: string }>> {
  const failures = await Promise.all(blobs.map((blob) => removeReplicas(client, blob.volumes, blobPath(key, blob.version))));
  return failures.flat();
}

/** HEADs every volume at once. */
export async function headAll(client: VolumeClient, volumes: readonly string[], path: string): Promise<ReplicaState[]> {
  return Promise.all(volumes.map(async (volume) => ({ volume, head: await client.head(volume, path) })));
}

/** A replica the index would accept: present, and of the recorded size when one is recorded. */
export function looksGood(state: ReplicaState, record: KeyRecord): boolean {
  return state.head.status === 'found' && (record.size === null || state.head.size === undefined || state.head.size === record.size);
}

/**
 * What one target of a copy came to: the bytes copied, or why not, and whose fault: the
 * source's (another source may do) or the target's own PUT (another source will not help).
 */
export type CopyResult =
  { target: string; ok: true; bytes: number } | { target: string; ok: false; reason: string; fault: 'source' | 'target' };

/**
 * Streams the blob at `path` from `source` to every target at once: one GET, teed into one PUT
 * per target (the read goes at the pace of the slowest). A copy counts only if the bytes read
 * match the index's size and md5; otherwise every copy just written is removed again.
 */
export async function copyToTargets(
  client: VolumeClient,
  source: string,
  targets: readonly string[],
  path: string,
  record: KeyRecord,
): Promise<CopyResult[]> {
  const failAll = (reason: string): CopyResult[] => targets.map((target) => ({ target, ok: false, reason, fault: 'source' }));
  let response: Awaited<ReturnType<VolumeClient['get']>>;
  try {
    response = await client.get(source, path);
  } catch (error) {
    return failAll((error as Error).message);
  }
  if (response.statusCode !== 200) {
    discardBody(response.body);
    return failAll(`GET ${volumeUrl(source, path)} answered ${response.statusCode}`);
  }
  const header = response.headers['content-length'];
  const length = typeof header === 'string' ? Number(header) : undefined;
  if (record.size !== null && length !== undefined && length !== record.size) {
    discardBody(response.body);
    return failAll(`${volumeUrl(source, path)} holds ${length} bytes, the index says ${record.size}`);
  }
  const hash = createHash('md5');
  let size = 0;
  const blob = response.body;
  blob.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
  });
  const bodies = targets.map(() => new PassThrough());
  blob.on('error', (error) => {
    for (const body of bodies) body.destroy(error);
  });
  for (const body of bodies) blob.pipe(body);
  const results = await Promise.all(
    targets.map((target, i) =>
      client.put(target, path, bodies[i]!, length).then(
        (): CopyResult => ({ target, ok: true, bytes: 0 }),
        (error: Error): CopyResult => {
          // A target that failed must not hold the others back: stop feeding it.
          blob.unpipe(bodies[i]);
          bodies[i]!.destroy();
          // A source that broke off mid-stream fails every PUT: that is the source's fault.
          if (blob.errored)
            return {
              target,
              ok: false,
              reason: `reading ${volumeUrl(source, path)}: the volume ${describeFailure(blob.errored)}`,
              fault: 'source',
            };
          return { target, ok: false, reason: error.message, fault: 'target' };
        },
      ),
    ),
  );
  if (results.every((result) => !result.ok)) {
    blob.destroy();
    return results;
  }
  const md5 = hash.digest('hex');
  const problem =
    record.size !== null && size !== record.size
      ? `copied ${size} bytes, the index says ${record.size}`
      : record.md5 !== null && md5 !== record.md5
        ? `copied md5 ${md5}, the index says ${record.md5}`
        : undefined;
  if (problem) {
    const written = results.filter((result) => result.ok).map((result) => result.target);
    await Promise.all(written.map((target) => client.delete(target, path).catch(() => undefined)));
    return failAll(`copy from ${source}: ${problem}`);
  }
  return results.map((result) => (result.ok ? { ...result, bytes: size } : result));
}

/** Streams the blob at `path` from `source` to `target`; throws (and removes the bad copy) unless size and md5 match. */
export async function copyReplica(client: VolumeClient, source: string, target: string, path: string, record: KeyRecord): Promise<number> {
  const [result] = await copyToTargets(client, source, [target], path, record);
  if (!result!.ok) throw new MkvError('MKV_VOLUME_FAILED', result!.reason);
  return result!.bytes;
}
