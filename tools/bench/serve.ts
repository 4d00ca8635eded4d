// Starts nginx volumes and one master (mkv, or Go with --go) and keeps them up until Ctrl-C:
// for profiling by hand (perf, wrk) against a running cluster.
//
//   node dist/tools/bench/serve.js [--go] [--volumes 5] [--keys 10000] [--mkv-workers N]
import { benchVolumes } from './harness.js';
import { goBinary, startGo, startMkv } from './masters.js';

function flag(name: string): number | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? undefined : Number(process.argv[at + 1]);
}

async function main(): Promise<void> {
  const set = await benchVolumes(flag('volumes') ?? 5, false);
  await set.start();
  const workers = flag('mkv-workers');
  const spec = { volumes: set.volumes, db: set.db, ...(workers !== undefined ? { workers } : {}) };
  const master = process.argv.includes('--go') ? await startGo(goBinary()!, spec) : await startMkv(spec);
  console.log(JSON.stringify({ url: master.url, pid: master.pid, volumes: set.volumes, volumePids: set.pids() }));
  const stop = async () => {
    await master.stop();
    await set.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
