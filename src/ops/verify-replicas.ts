// mkv verify: scrub every live and unlinked key's replicas — present, of the recorded size, and
// (--deep) of the recorded md5, reading the blob — and (--repair) rewrite a bad or missing
// replica from a good one, recorded as a ReplicaRepaired event.
import { createHash } from 'node:crypto';
import type { KeyRecord } from '../index/evolve.js';
import type { IndexStore } from '../index/index-store.js';
import { blobPath } from '../placement.js';
import { discardBody, type VolumeClient } from '../volumes/client.js';
import type { Writer } from '../writer/writer.js';
import { createProgress } from './progress.js';
import { copyReplica } from '../keys/replicas.js';
import { forEachConcurrent } from './work-queue.js';

export type ReplicaProblem = 'missing' | 'corrupt' | 'unreachable';

export interface ScrubFinding {
  key: string;
  volume: string;
  problem: ReplicaProblem;
  detail: string;
  repaired?: boolean;
  repairError?: string;
}

export interface ScrubReport {
  keys: number;
  replicas: number;
  good: number;
  findings: ScrubFinding[];
  repaired: number;
  seconds: number;
}

async function md5Of(client: VolumeClient, volume: string, path: string): Promise<{ md5: string; size: number } | { error: string }> {
  try {
    const response = await client.get(volume, path);
    if (response.statusCode !== 200) {
      discardBody(response.body);
      return { error: `GET answered ${response.statusCode}` };
    }
    const hash = createHash('md5');
    let size = 0;
    for await (const chunk of response.body) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    return { md5: hash.digest('hex'), size };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/** Checks one replica: undefined when it is good. */
async function checkReplica(
  client: VolumeClient,
  volume: string,
  path: string,
  record: KeyRecord,
  deep: boolean,
): Promise<Omit<ScrubFinding, 'key'> | undefined> {
  const head = await client.head(volume, path);
  if (head.status === 'missing') return { volume, problem: 'missing', detail: 'not on the volume' };
  if (head.status === 'unknown') return { volume, problem: 'unreachable', detail: head.reason };
  if (record.size !== null && head.size !== undefined && head.size !== record.size) {
    return { volume, problem: 'corrupt', detail: `${head.size} bytes, the index says ${record.size}` };
  }
  if (!deep) return undefined;
  const read = await md5Of(client, volume, path);
  if ('error' in read) return { volume, problem: 'unreachable', detail: read.error };
  if (record.size !== null && read.size !== record.size)
    return { volume, problem: 'corrupt', detail: `read ${read.size} bytes, the index says ${record.size}` };
  if (record.md5 !== null && read.md5 !== record.md5)
    return { volume, problem: 'corrupt', detail: `md5 ${read.md5}, the index says ${record.md5}` };
  return undefined;
}

export async function scrub(
  index: IndexStore,
  client: VolumeClient,
  options: { deep?: boolean; repair?: Writer; concurrency?: number; quiet?: boolean } = {},
): Promise<ScrubReport> {
  const started = Date.now();
  const report: ScrubReport = { keys: 0, replicas: 0, good: 0, findings: [], repaired: 0, seconds: 0 };
  const progress = createProgress({
    label: options.deep ? 'verify --deep' : 'verify',
    unit: 'keys',
    total: index.count(),
    quiet: options.quiet ?? false,
  });
  await forEachConcurrent(index.entries(), options.concurrency ?? 16, async ([key, record]) => {
    // A write or a DELETE in progress (or never finished) has no replicas to hold to.
    if (record.state === 'pending' || record.state === 'deleting' || record.state === 'deleted') return progress.add(1);
    report.keys++;
    const path = blobPath(key, record.version);
    const results = await Promise.all(record.volumes.map((volume) => checkReplica(client, volume, path, record, options.deep ?? false)));
    report.replicas += record.volumes.length;
    const bad = results.filter((result): result is Omit<ScrubFinding, 'key'> => result !== undefined).map((result) => ({ key, ...result }));
    report.good += record.volumes.length - bad.length;
    const good = record.volumes.filter((_, i) => results[i] === undefined);
    if (options.repair) {
      for (const finding of bad) {
        if (finding.problem === 'unreachable') continue;
        if (good.length === 0) {
          finding.repairError = 'no good replica to copy from';
          continue;
        }
        const attempts: string[] = [];
        for (const source of good) {
          try {
            await copyReplica(client, source, finding.volume, path, record);
            await options.repair.append([
              { key, cause: { origin: 'repair', client: null }, change: { type: 'ReplicaRepaired', volume: finding.volume, source } },
            ]);
            finding.repaired = true;
            report.repaired++;
            break;
          } catch (error) {
            attempts.push((error as Error).message);
          }
        }
        if (!finding.repaired) finding.repairError = attempts.join('; ');
      }
    }
    report.findings.push(...bad);
    progress.add(1);
  });
  report.seconds = (Date.now() - started) / 1000;
  const count = (problem: ReplicaProblem) => report.findings.filter((finding) => finding.problem === problem).length;
  progress.finish(
    `verified ${report.keys} keys, ${report.replicas} replicas in ${report.seconds.toFixed(2)} s: ${report.good} good, ` +
      `${count('missing')} missing, ${count('corrupt')} corrupt, ${count('unreachable')} unreachable` +
      (options.repair ? `, ${report.repaired} repaired` : ''),
  );
  return report;
}
