// Rescan and rebalance side by side: N keys (default 20,000) of 4 KB laid out on five stock nginx
// volumes (3 replicas, 10 subvolumes) as the original writes them; each master's own command
// rebuilds its index from the volumes, then moves every key from 5 volumes to 3.
//
//   npm run build && MKV_GO=/path/to/mkv-go node dist/tools/bench/maintenance.js [keys=20000]
//
// mkv: `mkv rebuild --scan`, `mkv rebalance`; Go: `mkv-go rebuild`, `mkv-go rebalance`. Each runs
// on fresh copies of the same layout. Targets (issue 6): rescan ≥ 5× Go, rebalance ≥ 3× Go.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { benchVolumes, layOut, repo } from './harness.js';
import { goBinary } from './masters.js';

export interface MaintenanceResult {
  keys: number;
  rescanSeconds: number;
  rebalanceSeconds: number;
}

async function timed(command: string, args: string[]): Promise<number> {
  const started = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    child.on('error', reject);
    child.on('exit', (status) =>
      status === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited with ${status}: ${stderr}`)),
    );
  });
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** Rescans then rebalances `keys` keys with one master's commands ('mkv' or the Go binary). */
export async function benchMaintenance(which: 'mkv' | 'go', keys: number): Promise<MaintenanceResult> {
  const set = await benchVolumes(5, false);
  try {
    layOut(
      set,
      Array.from({ length: keys }, (_, i) => `/bench/${i}/clip.bin`),
      randomBytes(4096),
      3,
      10,
    );
    await set.start();
    const db = join(set.root, 'db');
    const five = set.volumes.join(',');
    const three = set.volumes.slice(0, 3).join(',');
    const mkv = join(repo, 'dist/src/cli/main.js');
    if (which === 'mkv') {
      const rescanSeconds = await timed(process.execPath, [
        mkv,
        'rebuild',
        '--db',
        db,
        '--scan',
        '--volumes',
        five,
        '--replicas',
        '3',
        '--subvolumes',
        '10',
      ]);
      const rebalanceSeconds = await timed(process.execPath, [
        mkv,
        'rebalance',
        '--db',
        db,
        '--volumes',
        three,
        '--replicas',
        '3',
        '--subvolumes',
        '10',
      ]);
      return { keys, rescanSeconds, rebalanceSeconds };
    }
    const go = goBinary()!;
    const rescanSeconds = await timed(go, ['-db', db, '-volumes', five, '-replicas', '3', '-subvolumes', '10', 'rebuild']);
    const rebalanceSeconds = await timed(go, ['-db', db, '-volumes', three, '-replicas', '3', '-subvolumes', '10', 'rebalance']);
    return { keys, rescanSeconds, rebalanceSeconds };
  } finally {
    await set.close();
  }
}

async function main(): Promise<void> {
  const keys = Number(process.argv.find((arg) => /^\d+$/.test(arg)) ?? 20_000);
  for (const which of goBinary() ? (['go', 'mkv'] as const) : (['mkv'] as const)) {
    const result = await benchMaintenance(which, keys);
    console.log(
      `${which.padEnd(4)} rescan of ${keys} keys (${keys * 3} files) in ${result.rescanSeconds.toFixed(2)} s = ${Math.round(keys / result.rescanSeconds)} keys/s; ` +
        `rebalance 5 → 3 in ${result.rebalanceSeconds.toFixed(2)} s = ${Math.round(keys / result.rebalanceSeconds)} keys/s`,
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
