// Big values: PUT large values (default 6 of 256 MB, one after another, one client) through a
// master over three stock nginx volumes; report MB/s and how much the master's resident memory
// grew (all its processes, each one's peak over its RSS before, summed). With MKV_GO, the Go
// original too, which holds each whole value in memory.
//
//   npm run build && node dist/tools/bench/big-put-rss.js [MB=256] [--count 6]
//
// Target (issue 16): at least the Go original's MB/s, and RSS growth under 64 MB.
import { readFileSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { benchVolumes } from './harness.js';
import { goBinary, processTree, startGo, startMkv, type RunningMaster } from './masters.js';

export interface BigPutResult {
  /** Of each value. */
  megabytes: number;
  count: number;
  status: number;
  seconds: number;
  rssBeforeMb: number;
  growthMb: number;
}

function memoryMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

async function put(url: string, megabytes: number): Promise<number> {
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const response = await request(url, {
    method: 'PUT',
    headers: { 'content-length': String(megabytes * 2 ** 20), connection: 'close' },
    body: Readable.from(
      (function* () {
        for (let i = 0; i < megabytes; i++) yield chunk;
      })(),
    ),
  });
  await response.body.dump();
  return response.statusCode;
}

export async function benchBigPut(master: RunningMaster, megabytes: number, count = 1): Promise<BigPutResult> {
  // Warm every HTTP worker (each takes the next connection), so the figure is of the value.
  for (let i = 0; i < 4; i++) await put(`${master.url}/warmup/${i}`, 1);
  const pids = processTree(master.pid);
  const before = pids.map((pid) => memoryMb(pid, 'VmRSS'));
  for (const pid of pids) writeFileSync(`/proc/${pid}/clear_refs`, '5'); // peak := now
  const started = process.hrtime.bigint();
  let status = 0;
  for (let i = 0; i < count && (i === 0 || status === 201); i++) status = await put(`${master.url}/big/${i}`, megabytes);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const growthMb = pids.reduce((sum, pid, i) => sum + memoryMb(pid, 'VmHWM') - before[i]!, 0);
  return { megabytes, count, status, seconds, rssBeforeMb: before.reduce((a, b) => a + b, 0), growthMb };
}

export function formatBigPut(name: string, result: BigPutResult): string {
  return (
    `${name.padEnd(4)} PUT ${result.count} × ${result.megabytes} MB: ${result.status} in ${result.seconds.toFixed(2)} s (${((result.count * result.megabytes) / result.seconds).toFixed(0)} MB/s to 3 replicas); ` +
    `RSS ${result.rssBeforeMb.toFixed(0)} MB before, peak +${result.growthMb.toFixed(1)} MB`
  );
}

async function main(): Promise<void> {
  const megabytes = Number(/^\d+$/.test(process.argv[2] ?? '') ? process.argv[2] : 256);
  const at = process.argv.indexOf('--count');
  const count = at === -1 ? 6 : Number(process.argv[at + 1]);
  const go = goBinary();
  for (const name of go ? ['go', 'mkv'] : ['mkv']) {
    const set = await benchVolumes(3, false);
    await set.start();
    const spec = { volumes: set.volumes, db: set.db };
    const master = name === 'go' ? await startGo(go!, spec) : await startMkv(spec);
    try {
      console.log(formatBigPut(name, await benchBigPut(master, megabytes, count)));
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
