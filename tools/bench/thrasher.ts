// The thrasher, with the Go original's semantics: W workers (16), each takes a fresh key and does
// PUT (a small value) → GET following the redirect (the body must be the value) → DELETE; R rounds
// (10,000). `--reads N` makes the read-heavy variant: N GETs per round instead of one.
//
//   npm run build && node dist/tools/bench/thrasher.js [rounds=10000] [--workers 16] [--reads 1] [--warmup 1000] [--mkv-workers N]
//
// Runs on five stock nginx volumes (3 replicas, 10 subvolumes) against mkv and, when MKV_GO
// names its binary, against the Go original on fresh volumes, and prints rounds/s, p50/p99 of a
// round, the master's peak RSS and PSS, and the CPU per round of master, client and volumes.
// Targets (issue 16): ≥ 0.8× the Go original with fsync, ≥ 1.0× with --sync none; master CPU per
// round ≤ 1.3× Go's; PSS ≤ 150 MB.
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { benchVolumes } from './harness.js';
import { goBinary, startGo, startMkv, treeCpuSeconds, type RunningMaster } from './masters.js';
import { percentile } from './stats.js';

export interface ThrashOptions {
  rounds: number;
  workers: number;
  reads: number;
  /** Rounds run before the timed ones, neither timed nor counted (their failures are reported). */
  warmup: number;
}

export interface ThrashResult {
  rounds: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  failures: string[];
  peakRss: number;
  /** The peak of the master's proportional set size (see RunningMaster.pss). */
  peakPss: number;
  /** CPU seconds per round: the master's, the load generator's, the volumes'. */
  cpuMs: { master: number; client: number; volumes: number };
}

async function expect(status: number, response: Awaited<ReturnType<typeof request>>, what: string): Promise<void> {
  if (response.statusCode !== status) {
    const text = await response.body.text();
    throw new Error(`${what}: ${response.statusCode} ${text.slice(0, 200)}`);
  }
}

export async function thrash(master: RunningMaster, options: ThrashOptions, volumePids: number[] = []): Promise<ThrashResult> {
  const dispatcher = new Agent({ connections: options.workers * 2, pipelining: 1 });
  const latencies: number[] = [];
  const failures: string[] = [];
  let peakRss = master.rss();
  let peakPss = master.pss();
  let ticks = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, master.rss());
    // Once a second: reading smaps_rollup walks every page table of the process (at 10 Hz it
    // was half of this client's CPU).
    if (++ticks % 10 === 0) peakPss = Math.max(peakPss, master.pss());
  }, 100);
  const round = async (key: string) => {
    const value = `value-${randomBytes(8).toString('hex')}`;
    const url = `${master.url}/${key}`;
    await expect(201, await request(url, { method: 'PUT', body: value, dispatcher }), `PUT ${key}`);
    for (let i = 0; i < options.reads; i++) {
      const redirect = await request(url, { dispatcher });
      await redirect.body.dump();
      if (redirect.statusCode !== 302) throw new Error(`GET ${key}: ${redirect.statusCode}`);
      const blob = await request(String(redirect.headers.location), { dispatcher });
      const body = await blob.body.text();
      if (blob.statusCode !== 200 || body !== value) throw new Error(`GET ${key} from a volume: ${blob.statusCode} ${body.slice(0, 40)}`);
    }
    const deleted = await request(url, { method: 'DELETE', dispatcher });
    await deleted.body.dump();
    if (deleted.statusCode !== 204) throw new Error(`DELETE ${key}: ${deleted.statusCode}`);
  };
  /** `count` rounds by `options.workers` workers at once; each round's latency goes into `into`. */
  const rounds = async (count: number, into: number[]) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: options.workers }, async () => {
        while (next < count) {
          next++;
          const key = `benchmark-${randomBytes(8).readBigUInt64BE()}`;
          const begun = process.hrtime.bigint();
          try {
            await round(key);
            into.push(Number(process.hrtime.bigint() - begun) / 1e6);
          } catch (error) {
            failures.push((error as Error).message);
          }
        }
      }),
    );
  };
  // Untimed rounds first, for either master: a server runs for months, and what it serves then
  // is what its JIT has compiled (a Go binary arrives compiled).
  await rounds(options.warmup, []);
  const volumesCpu = () => volumePids.reduce((sum, pid) => sum + treeCpuSeconds(pid), 0);
  const cpuBefore = { master: master.cpuSeconds(), client: process.cpuUsage(), volumes: volumesCpu() };
  const started = process.hrtime.bigint();
  await rounds(options.rounds, latencies);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const client = process.cpuUsage(cpuBefore.client);
  const perRound = (cpuSeconds: number) => (cpuSeconds * 1000) / Math.max(latencies.length, 1);
  const cpuMs = {
    master: perRound(master.cpuSeconds() - cpuBefore.master),
    client: perRound((client.user + client.system) / 1e6),
    volumes: perRound(volumesCpu() - cpuBefore.volumes),
  };
  clearInterval(sampler);
  await dispatcher.close();
  return {
    rounds: latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    failures,
    peakRss,
    peakPss,
    cpuMs,
  };
}

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}

export function formatThrash(name: string, result: ThrashResult): string {
  return (
    `${name.padEnd(4)} ${result.rounds} rounds in ${result.seconds.toFixed(2)} s = ${result.perSecond.toFixed(0)} rounds/s, ` +
    `p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms, peak RSS ${(result.peakRss / 2 ** 20).toFixed(0)} MB (PSS ${(result.peakPss / 2 ** 20).toFixed(0)} MB), ` +
    `CPU ms/round: master ${result.cpuMs.master.toFixed(2)}, client ${result.cpuMs.client.toFixed(2)}, volumes ${result.cpuMs.volumes.toFixed(2)}` +
    (result.failures.length > 0 ? `, ${result.failures.length} FAILED (first: ${result.failures[0]})` : '')
  );
}

async function main(): Promise<void> {
  const options = {
    rounds: Number(process.argv[2] && /^\d+$/.test(process.argv[2]) ? process.argv[2] : 10_000),
    workers: flag('workers', 16),
    reads: flag('reads', 1),
    warmup: flag('warmup', 1000),
  };
  const mkvWorkers = process.argv.includes('--mkv-workers') ? flag('mkv-workers', 0) : undefined;
  const go = goBinary();
  for (const name of go ? ['go', 'mkv'] : ['mkv']) {
    const set = await benchVolumes(5, false);
    await set.start();
    const spec = { volumes: set.volumes, db: set.db, ...(mkvWorkers !== undefined ? { workers: mkvWorkers } : {}) };
    const master = name === 'go' ? await startGo(go!, spec) : await startMkv(spec);
    try {
      console.log(formatThrash(name, await thrash(master, options, set.pids())));
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
