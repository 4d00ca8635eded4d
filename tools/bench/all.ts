// Every benchmark of issue 6, side by side with the Go original when MKV_GO names its binary,
// and one table at the end (markdown). Each workload runs on fresh volumes (stock nginx).
//
//   npm run build && MKV_GO=/path/to/mkv-go node dist/tools/bench/all.js [--quick]
//
// --quick: fewer rounds, keys and seconds (a smoke run, ~2 minutes; the figures are noisier).
import { benchBigPut, formatBigPut } from './big-put-rss.js';
import { benchGets, type GetResults } from './get.js';
import { benchVolumes } from './harness.js';
import { benchMaintenance, type MaintenanceResult } from './maintenance.js';
import { goBinary, startGo, startMkv, type RunningMaster } from './masters.js';
import { benchReplay } from './replay.js';
import { formatThrash, thrash, type ThrashResult } from './thrasher.js';
import { formatWrk } from './wrk.js';

const quick = process.argv.includes('--quick');
const sizes = quick
  ? { rounds: 3000, warmup: 500, getKeys: 5000, seconds: 5, maintenanceKeys: 5000, bigPutMb: 256, replayEvents: 200_000 }
  : { rounds: 10_000, warmup: 1000, getKeys: 10_000, seconds: 10, maintenanceKeys: 20_000, bigPutMb: 1024, replayEvents: 1_000_000 };

type Name = 'go' | 'mkv';

async function withMaster<T>(name: Name, volumes: number, run: (master: RunningMaster, volumes: string[], pids: number[]) => Promise<T>): Promise<T> {
  const set = await benchVolumes(volumes, false);
  await set.start();
  const spec = { volumes: set.volumes, db: set.db };
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
  reference: string;
  target: string;
}

const fmt = (value: number, digits = 0) => value.toFixed(digits).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

async function main(): Promise<void> {
  const names: Name[] = goBinary() ? ['go', 'mkv'] : ['mkv'];
  const thrashed = new Map<Name, ThrashResult>();
  const gets = new Map<Name, GetResults>();
  const maintenance = new Map<Name, MaintenanceResult>();
  const bigPut = new Map<Name, Awaited<ReturnType<typeof benchBigPut>>>();
  for (const name of names) {
    const result = await withMaster(name, 5, (master, _volumes, pids) => thrash(master, { rounds: sizes.rounds, warmup: sizes.warmup, workers: 16, reads: 1 }, pids));
    thrashed.set(name, result);
    console.log(formatThrash(name, result));
  }
  const keys = Array.from({ length: sizes.getKeys }, (_, i) => `/bench/get/${i}`);
  for (const name of names) {
    const result = await withMaster(name, 5, (master, volumes, pids) => benchGets(master, volumes, pids, keys, sizes.seconds));
    gets.set(name, result);
    console.log(formatWrk(`${name} GET`, result.get));
    console.log(formatWrk(`${name} 404`, result.missing));
    console.log(formatWrk(`nginx GET`, result.nginx));
  }
  for (const name of names) {
    const result = await withMaster(name, 3, (master) => benchBigPut(master, sizes.bigPutMb));
    bigPut.set(name, result);
    console.log(formatBigPut(name, result));
  }
  for (const name of names) {
    const result = await benchMaintenance(name, sizes.maintenanceKeys);
    maintenance.set(name, result);
    console.log(`${name} rescan ${result.rescanSeconds.toFixed(2)} s, rebalance ${result.rebalanceSeconds.toFixed(2)} s (${result.keys} keys)`);
  }
  const replay = await benchReplay(sizes.replayEvents);
  console.log(`replay ${replay.events} events in ${replay.seconds.toFixed(2)} s`);

  const both = (get: (name: Name) => number | undefined, show: (value: number) => string, higherIsBetter: boolean) => {
    const go = get('go');
    const mkv = get('mkv')!;
    const ratio = go === undefined ? '—' : `${(higherIsBetter ? mkv / go : go / mkv).toFixed(2)}×`;
    return { go: go === undefined ? '—' : show(go), mkv: show(mkv), ratio };
  };
  const nginx = (name: Name) => gets.get(name)!.nginx.requestsPerSec;
  const rows: Row[] = [
    { work: `thrasher, 16 workers, ${fmt(sizes.rounds)} rounds (rounds/s)`, ...both((n) => thrashed.get(n)?.perSecond, (v) => fmt(v), true), reference: '—', target: '≥ 1.5× Go' },
    { work: 'thrasher p99 of a round (ms)', ...both((n) => thrashed.get(n)?.p99Ms, (v) => v.toFixed(1), false), reference: '—', target: '≤ Go' },
    {
      work: `GET with redirect, ${fmt(sizes.getKeys)} keys at random (req/s)`,
      ...both((n) => gets.get(n)?.get.requestsPerSec, (v) => fmt(v), true),
      reference: `nginx ${fmt(nginx('mkv'))}: mkv at ${(gets.get('mkv')!.get.requestsPerSec / nginx('mkv')).toFixed(2)}×`,
      target: '≥ 1.5× Go, ≥ 0.5× nginx',
    },
    { work: 'GET p99 (ms)', ...both((n) => gets.get(n)?.get.p99Ms, (v) => v.toFixed(2), false), reference: `nginx ${gets.get('mkv')!.nginx.p99Ms.toFixed(2)}`, target: '≤ Go' },
    { work: 'GET of a missing key, 404 (req/s)', ...both((n) => gets.get(n)?.missing.requestsPerSec, (v) => fmt(v), true), reference: '—', target: '≥ 1.0× Go' },
    { work: '404 p99 (ms)', ...both((n) => gets.get(n)?.missing.p99Ms, (v) => v.toFixed(2), false), reference: '—', target: '≤ Go' },
    { work: 'master peak RSS during the thrasher (MB)', ...both((n) => (thrashed.get(n) ? thrashed.get(n)!.peakRss / 2 ** 20 : undefined), (v) => fmt(v), false), reference: '—', target: '—' },
    { work: 'master peak PSS during the thrasher (MB; shared pages counted once)', ...both((n) => (thrashed.get(n) ? thrashed.get(n)!.peakPss / 2 ** 20 : undefined), (v) => fmt(v), false), reference: '—', target: '—' },
    { work: `PUT of ${fmt(sizes.bigPutMb)} MB: master RSS growth (MB)`, ...both((n) => bigPut.get(n)?.growthMb, (v) => v.toFixed(1), false), reference: '—', target: '< 64 MB' },
    { work: `rescan of ${fmt(sizes.maintenanceKeys)} keys on 5 volumes (s)`, ...both((n) => maintenance.get(n)?.rescanSeconds, (v) => v.toFixed(2), false), reference: '—', target: '≥ 5× Go' },
    { work: `rebalance of those keys 5 → 3 volumes (s)`, ...both((n) => maintenance.get(n)?.rebalanceSeconds, (v) => v.toFixed(2), false), reference: '—', target: '≥ 3× Go' },
    { work: `replay of ${fmt(sizes.replayEvents)} events (s)`, go: '—', mkv: replay.seconds.toFixed(2), ratio: '—', reference: '—', target: '1M in ≤ 5 s' },
  ];
  console.log('\n| work | Go | mkv | mkv vs Go | reference | target |\n|---|---|---|---|---|---|');
  for (const row of rows) console.log(`| ${row.work} | ${row.go} | ${row.mkv} | ${row.ratio} | ${row.reference} | ${row.target} |`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
