// Rebalance benchmark: N keys (default 20,000) of SIZE bytes (default 4096) on 5 volumes
// (stock nginx, or --embedded), 3 replicas, 10 subvolumes, rebalanced to 3 volumes.
//
//   npm run build && node dist/tools/bench/rebalance.js [keys=20000] [size=4096] [--embedded]
//
// Target (issue 6): 20,000 keys from 5 volumes to 3 at least 3× faster than the Go original's 15–18 s.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { rebalanceAll } from '../../src/ops/rebalance.js';
import { rescanVolumes } from '../../src/ops/rescan.js';
import { VolumeClient } from '../../src/volumes/client.js';
import { openStore } from '../../src/db/store.js';
import { benchVolumes, layOut } from './harness.js';

const numbers = process.argv
  .slice(2)
  .filter((arg) => /^\d+$/.test(arg))
  .map(Number);
const keys = numbers[0] ?? 20_000;
const size = numbers[1] ?? 4096;
const embedded = process.argv.includes('--embedded');

async function main(): Promise<void> {
  const set = await benchVolumes(5, embedded);
  try {
    layOut(
      set,
      Array.from({ length: keys }, (_, i) => `/bench/${i}/clip.bin`),
      randomBytes(size),
      3,
      10,
    );
    await set.start();
    const db = join(set.root, 'db');
    await rescanVolumes(db, { volumes: set.volumes, replicas: 3, subvolumes: 10, quiet: true });
    const store = await openStore(db);
    const client = new VolumeClient();
    const concurrency = Number(process.env.CONCURRENCY ?? 32);
    const placement = { volumes: set.volumes.slice(0, 3), replicas: 3, subvolumes: 10 };
    const report = await rebalanceAll(store.index, store.writer, client, placement, { quiet: true, concurrency });
    await store.close();
    await client.close();
    const seconds = Math.max(report.seconds, 1e-3);
    console.log(
      `rebalance 5 → 3 volumes (${embedded ? 'embedded' : 'nginx'}): ${report.keys} keys of ${size} bytes in ${report.seconds.toFixed(2)} s = ` +
        `${Math.round(report.keys / seconds)} keys/s; moved ${report.moved}, ${report.copies} copies = ${Math.round(report.copies / seconds)} files/s, ` +
        `${(report.bytes / 2 ** 20 / seconds).toFixed(1)} MB/s; balanced ${report.balanced}, failed ${report.failed.length}`,
    );
  } finally {
    await set.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
