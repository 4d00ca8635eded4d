// Copying a blob from one volume to another, streamed (never the whole value in memory), with
// its size and md5 checked against what the index says — what rebalance and repair share.
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { MkvError } from '../errors.js';
import type { KeyRecord } from '../index/evolve.js';
import type { HeadResult, VolumeClient } from '../volumes/client.js';
import { volumeUrl } from '../volumes/client.js';

export interface ReplicaState {
  volume: string;
  head: HeadResult;
}

/** HEADs every volume at once. */
export async function headAll(client: VolumeClient, volumes: readonly string[], path: string): Promise<ReplicaState[]> {
  return Promise.all(volumes.map(async (volume) => ({ volume, head: await client.head(volume, path) })));
}

/** A replica the index would accept: present, and of the recorded size when one is recorded. */
export function looksGood(state: ReplicaState, record: KeyRecord): boolean {
  return state.head.status === 'found' && (record.size === null || state.head.size === undefined || state.head.size === record.size);
}

/** Streams the blob at `path` from `source` to `target`; throws (and removes the bad copy) unless size and md5 match. */
export async function copyReplica(client: VolumeClient, source: string, target: string, path: string, record: KeyRecord): Promise<number> {
  const response = await client.get(source, path);
  if (response.statusCode !== 200) {
    response.body.destroy();
    throw new MkvError('MKV_VOLUME_FAILED', `GET ${volumeUrl(source, path)} answered ${response.statusCode}`);
  }
  const header = response.headers['content-length'];
  const length = typeof header === 'string' ? Number(header) : undefined;
  if (record.size !== null && length !== undefined && length !== record.size) {
    response.body.destroy();
    throw new MkvError('MKV_VOLUME_FAILED', `${volumeUrl(source, path)} holds ${length} bytes, the index says ${record.size}`);
  }
  const hash = createHash('md5');
  let size = 0;
  const body = new PassThrough();
  response.body.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
  });
  response.body.pipe(body);
  response.body.on('error', (error) => body.destroy(error));
  await client.put(target, path, body, length);
  const md5 = hash.digest('hex');
  const problem =
    record.size !== null && size !== record.size
      ? `copied ${size} bytes, the index says ${record.size}`
      : record.md5 !== null && md5 !== record.md5
        ? `copied md5 ${md5}, the index says ${record.md5}`
        : undefined;
  if (problem) {
    await client.delete(target, path).catch(() => undefined);
    throw new MkvError('MKV_VOLUME_FAILED', `copy from ${source} to ${target}: ${problem}`);
  }
  return size;
}
