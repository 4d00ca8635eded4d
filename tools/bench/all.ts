// Every benchmark of the speed issue, side by side with the Go original when MKV_GO names its
// binary, and one table at the end (markdown). Each workload runs on fresh volumes (stock nginx),
// each master with its defaults (mkv: --sync fsync, --workers as it chooses for this machine).
//
//   npm run build && TMPDIR=/mnt/journaled MKV_GO=/path/to/mkv-go node dist/tools/bench/all.js [--quick]
//
// --quick: fewer rounds, keys and seconds (a smoke run, ~3 minutes; the figures are noisier).
import { benchBigPut, formatBigPut, type BigPutResult } from './big-put-rss.js';
import { benchGets, type GetResults } from './get.js';
import { benchVolumes } from './harness.js';
import { benchMaintenance, type MaintenanceResult } from './maintenance.js';
import { goBinary, startGo, startMkv, type RunningMaster } from './masters.js';
import { benchReplay } from './replay.js';
import { formatThrash, thrash, type ThrashResult } from './thrasher.js';
import { formatWrk } from './wrk.js';

const quick = process.argv.includes('--quick');
const sizes = quick
  ? {
      rounds: 3000,
      warmup: 500,
      readRounds: 50,
      getKeys: 5000,
      seconds: 5,
      maintenanceKeys: 5000,
      bigPutMb: 128,
      bigPuts: 3,
      replayEvents: 200_000,
    }
  : {
      rounds: 10_000,
      warmup: 1000,
      readRounds: 200,
      getKeys: 10_000,
      seconds: 10,
      maintenanceKeys: 20_000,
      bigPutMb: 256,
      bigPuts: 6,
      replayEvents: 1_000_000,
    };

/** The masters compared: Go, mkv as it ships, and mkv with --sync none (the thrasher only). */
type Name = 'go' | 'mkv' | 'mkv-nosync';

async function withMaster<T>(
  name: Name,
  volumes: number,
  run: (master: RunningMaster, volumes: string[], pids: number[]) => Promise<T>,
): Promise<T> {
  const set = await benchVolumes(volumes, false);
  await set.start();
  const spec = { volumes: set.volumes, db: set.db, ...(name === 'mkv-nosync' ? { flags: ['--sync', 'none'] } : {}) };
  const master = name === 'go' ? await startGo(goBinary()!, spec) : await startMkv(spec);
  try {
    return await run(master, set.volumes, set.pids());
  } finally {
    await master.stop();
    await set.close();
  }
}

interface Row {
  work: string;
  go: string;
  mkv: string;
  ratio: string;
  target: string;
}

const fmt = (value: number, digits = 0) => value.toFixed(digits).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

async function main(): Promise<void> {
  const go = goBinary() !== undefined;
  const masters: Name[] = go ? ['go', 'mkv'] : ['mkv'];
  const thrashed = new Map<Name, ThrashResult>();
  const readHeavy = new Map<Name, ThrashResult>();
  const gets = new Map<Name, GetResults>();
  const maintenance = new Map<Name, MaintenanceResult>();
  const bigPut = new Map<Name, BigPutResult>();
  for (const name of [...masters, 'mkv-nosync'] as Name[]) {
    const result = await withMaster(name, 5, (master, _volumes, pids) =>
      thrash(master, { rounds: sizes.rounds, warmup: sizes.warmup, workers: 16, reads: 1 }, pids),
    );
    thrashed.set(name, result);
    console.log(formatThrash(name, result));
  }
  for (const name of masters) {
    // A read-heavy thrasher: each round one PUT, then 1,000 GETs following the redirect.
    const result = await withMaster(name, 5, (master, _volumes, pids) =>
      thrash(master, { rounds: sizes.readRounds, warmup: 20, workers: 16, reads: 1000 }, pids),
    );
    readHeavy.set(name, result);
    console.log(`read-heavy ${formatThrash(name, result)}`);
  }
  const keys = Array.from({ length: sizes.getKeys }, (_, i) => `/bench/get/${i}`);
  for (const name of masters) {
    const result = await withMaster(name, 5, (master, volumes, pids) => benchGets(master, volumes, pids, keys, sizes.seconds));
    gets.set(name, result);
    console.log(formatWrk(`${name} GET`, result.get));
    console.log(formatWrk(`${name} 404`, result.missing));
    console.log(formatWrk(`nginx GET`, result.nginx));
  }
  for (const name of masters) {
    const result = await withMaster(name, 3, (master) => benchBigPut(master, sizes.bigPutMb, sizes.bigPuts));
    bigPut.set(name, result);
    console.log(formatBigPut(name, result));
  }
  for (const name of masters) {
    const result = await benchMaintenance(name as 'go' | 'mkv', sizes.maintenanceKeys);
    maintenance.set(name, result);
    console.log(
      `${name} rescan ${result.rescanSeconds.toFixed(2)} s, rebalance ${result.rebalanceSeconds.toFixed(2)} s (${result.keys} keys)`,
    );
  }
  const replay = await benchReplay(sizes.replayEvents);
  console.log(`replay ${replay.events} events in ${replay.seconds.toFixed(2)} s`);

  /** A row: Go's figure, mkv's (or `mkvName`'s), and mkv's as a multiple of Go's. */
  const row = (
    work: string,
    target: string,
    get: (name: Name) => number | undefined,
    show: (value: number) => string,
    mkvName: Name = 'mkv',
  ): Row => {
    const goValue = get('go');
    const mkvValue = get(mkvName)!;
    return {
      work,
      go: goValue === undefined ? '—' : show(goValue),
      mkv: show(mkvValue),
      ratio: goValue === undefined ? '—' : `${(mkvValue / goValue).toFixed(2)}×`,
      target,
    };
  };
  const perRound = (result: ThrashResult | undefined) => result && result.rounds / result.seconds;
  const rows: Row[] = [
    row(
      `thrasher, 16 workers, ${fmt(sizes.rounds)} rounds (rounds/s)`,
      '≥ 0.8×',
      (n) => perRound(thrashed.get(n)),
      (v) => fmt(v),
    ),
    row(
      'the same, mkv with --sync none (rounds/s)',
      '≥ 1.0×',
      (n) => perRound(thrashed.get(n)),
      (v) => fmt(v),
      'mkv-nosync',
    ),
    row(
      'master CPU per thrasher round (ms, all its processes)',
      '≤ 1.3×',
      (n) => thrashed.get(n)?.cpuMs.master,
      (v) => v.toFixed(2),
    ),
    row(
      'thrasher p99 of a round (ms)',
      '≤ 1.0×',
      (n) => thrashed.get(n)?.p99Ms,
      (v) => v.toFixed(1),
    ),
    row(
      'master peak PSS during the thrasher (MB)',
      '≤ 150 MB',
      (n) => (thrashed.get(n) ? thrashed.get(n)!.peakPss / 2 ** 20 : undefined),
      (v) => fmt(v),
    ),
    row(
      `GET with redirect, ${fmt(sizes.getKeys)} keys at random (req/s)`,
      '≥ 1.0×',
      (n) => gets.get(n)?.get.requestsPerSec,
      (v) => fmt(v),
    ),
    row(
      'GET: master CPU per request (µs)',
      '—',
      (n) => gets.get(n)?.get.masterCpuUs,
      (v) => fmt(v),
    ),
    row(
      'GET p99 (ms)',
      '≤ 1.0×',
      (n) => gets.get(n)?.get.p99Ms,
      (v) => v.toFixed(2),
    ),
    row(
      'GET of a missing key, 404 (req/s)',
      '≥ 0.8×',
      (n) => gets.get(n)?.missing.requestsPerSec,
      (v) => fmt(v),
    ),
    row(
      '404: master CPU per request (µs)',
      '—',
      (n) => gets.get(n)?.missing.masterCpuUs,
      (v) => fmt(v),
    ),
    row(
      '404 p99 (ms)',
      '≤ 1.0×',
      (n) => gets.get(n)?.missing.p99Ms,
      (v) => v.toFixed(2),
    ),
    row(
      `read-heavy thrasher: ${sizes.readRounds} PUTs, ${fmt(sizes.readRounds * 1000)} GETs following redirects (ops/s)`,
      '≥ 1.0×',
      (n) => (readHeavy.get(n) ? (readHeavy.get(n)!.rounds * 1002) / readHeavy.get(n)!.seconds : undefined),
      (v) => fmt(v),
    ),
    row(
      `PUT ${sizes.bigPuts} × ${sizes.bigPutMb} MB, one client (MB/s)`,
      '≥ 1.0×',
      (n) => (bigPut.get(n) ? (bigPut.get(n)!.count * bigPut.get(n)!.megabytes) / bigPut.get(n)!.seconds : undefined),
      (v) => fmt(v),
    ),
    row(
      'the same: master RSS growth (MB)',
      '< 64 MB',
      (n) => bigPut.get(n)?.growthMb,
      (v) => v.toFixed(1),
    ),
    row(
      `rescan of ${fmt(sizes.maintenanceKeys)} keys on 5 volumes (s)`,
      '—',
      (n) => maintenance.get(n)?.rescanSeconds,
      (v) => v.toFixed(2),
    ),
    row(
      'rebalance of those keys 5 → 3 volumes (s)',
      '—',
      (n) => maintenance.get(n)?.rebalanceSeconds,
      (v) => v.toFixed(2),
    ),
    { work: `replay of ${fmt(sizes.replayEvents)} events (s)`, go: '—', mkv: replay.seconds.toFixed(2), ratio: '—', target: '1M in ≤ 2 s' },
  ];
  console.log('\n| work | Go | mkv | mkv / Go | target |\n|---|---|---|---|---|');
  for (const each of rows) console.log(`| ${each.work} | ${each.go} | ${each.mkv} | ${each.ratio} | ${each.target} |`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
