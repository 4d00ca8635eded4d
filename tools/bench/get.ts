// GET benchmarks with wrk (-t2 -c100, 10 s each): GET with redirect over N distinct keys
// (default 10,000) in random order, GET of a missing key (404), and the raw nginx GET of the
// same blobs (no master) as the reference — on five stock nginx volumes, 3 replicas, 10
// subvolumes, for mkv and (with MKV_GO) the Go original.
//
//   npm run build && node dist/tools/bench/get.js [keys=10000] [--seconds 10] [--mkv-workers N]
//
// Targets (issue 16): GET ≥ 1.0× Go; 404 ≥ 0.8× Go; p99 of each ≤ Go's.
import { Agent, request } from 'undici';
import { keyToPath, keyToVolumes } from '../../src/placement.js';
import { benchVolumes } from './harness.js';
import { goBinary, startGo, startMkv, treeCpuSeconds, type RunningMaster } from './masters.js';
import { formatWrk, wrk, type WrkResult } from './wrk.js';

/** A wrk run, with the CPU the master and the volumes used per request. */
export interface LoadResult extends WrkResult {
  masterCpuUs: number;
  volumesCpuUs: number;
}

export interface GetResults {
  get: LoadResult;
  missing: LoadResult;
  nginx: LoadResult;
}

async function measured(master: RunningMaster, volumePids: number[], run: () => Promise<WrkResult>): Promise<LoadResult> {
  const volumesCpu = () => volumePids.reduce((sum, pid) => sum + treeCpuSeconds(pid), 0);
  const before = { master: master.cpuSeconds(), volumes: volumesCpu() };
  const result = await run();
  const perRequest = (seconds: number) => (seconds * 1e6) / Math.max(result.requests, 1);
  return {
    ...result,
    masterCpuUs: perRequest(master.cpuSeconds() - before.master),
    volumesCpuUs: perRequest(volumesCpu() - before.volumes),
  };
}

/** PUTs `count` keys of 1 KB through the master, 32 at a time. */
export async function fill(master: RunningMaster, keys: string[]): Promise<void> {
  const dispatcher = new Agent({ connections: 32 });
  const value = Buffer.alloc(1024, 0x61);
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < keys.length) {
        const key = keys[next++]!;
        const response = await request(`${master.url}${key}`, { method: 'PUT', body: value, dispatcher });
        await response.body.dump();
        if (response.statusCode !== 201) throw new Error(`PUT ${key}: ${response.statusCode}`);
      }
    }),
  );
  await dispatcher.close();
}

/** How long wrk loads a path before the measured run, for either master (the JIT's warm-up). */
const WARMUP_SECONDS = 3;

export async function benchGets(
  master: RunningMaster,
  volumes: string[],
  volumePids: number[],
  keys: string[],
  seconds: number,
): Promise<GetResults> {
  await fill(master, keys);
  await wrk({ url: master.url, paths: keys, seconds: WARMUP_SECONDS });
  const get = await measured(master, volumePids, () => wrk({ url: master.url, paths: keys, seconds }));
  await wrk({ url: `${master.url}/no/such/key`, seconds: WARMUP_SECONDS });
  const missing = await measured(master, volumePids, () => wrk({ url: `${master.url}/no/such/key`, seconds }));
  // The raw reference: the same blobs, read straight from the first volume that holds them.
  const host = volumes[0]!;
  const blobs = keys.flatMap((key) =>
    keyToVolumes(key, volumes, 3, 10)
      .filter((volume) => volume.startsWith(`${host}/`))
      .map((volume) => `/${volume.split('/')[1]}${keyToPath(key)}`),
  );
  const nginx = await measured(master, volumePids, () => wrk({ url: `http://${host}`, paths: blobs, seconds }));
  return { get, missing, nginx };
}

function flag(name: string): number | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? undefined : Number(process.argv[at + 1]);
}

async function main(): Promise<void> {
  const count = Number(/^\d+$/.test(process.argv[2] ?? '') ? process.argv[2] : 10_000);
  const seconds = flag('seconds') ?? 10;
  const mkvWorkers = flag('mkv-workers');
  const keys = Array.from({ length: count }, (_, i) => `/bench/get/${i}`);
  const go = goBinary();
  for (const name of go ? ['go', 'mkv'] : ['mkv']) {
    const set = await benchVolumes(5, false);
    await set.start();
    const spec = { volumes: set.volumes, db: set.db, ...(mkvWorkers !== undefined ? { workers: mkvWorkers } : {}) };
    const master = name === 'go' ? await startGo(go!, spec) : await startMkv(spec);
    try {
      const results = await benchGets(master, set.volumes, set.pids(), keys, seconds);
      const cpu = (result: LoadResult) =>
        `; CPU µs/request: master ${result.masterCpuUs.toFixed(0)}, volumes ${result.volumesCpuUs.toFixed(0)}`;
      console.log(formatWrk(`${name} GET`, results.get) + cpu(results.get));
      console.log(formatWrk(`${name} 404`, results.missing) + cpu(results.missing));
      console.log(formatWrk(`nginx GET`, results.nginx) + cpu(results.nginx));
    } finally {
      await master.stop();
      await set.close();
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
