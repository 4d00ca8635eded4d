// Rescan benchmark: volumes holding N files (default 100,000: N/3 keys × 3 replicas, 10
// subvolumes), laid out on disk as the original writes them, served by stock nginx (or the
// embedded volume server with --embedded), rescanned as `mkv rebuild --scan` does.
//
//   npm run build && node dist/tools/bench/rescan.js [files=100000] [--embedded]
//
// Target (issue 6): 20,000 keys at least 5× faster than the Go original's 22–25 s.
import { join } from 'node:path';
import { rescanVolumes } from '../../src/ops/rescan.js';
import { benchVolumes, layOut } from './harness.js';

const files = Number(process.argv.find((arg) => /^\d+$/.test(arg)) ?? 100_000);
const embedded = process.argv.includes('--embedded');

async function main(): Promise<void> {
  const set = await benchVolumes(3, embedded);
  try {
    const keys = Math.ceil(files / 3);
    let written = Date.now();
    layOut(
      set,
      Array.from({ length: keys }, (_, i) => `/bench/${i}/frame.jpg`),
      'x',
      3,
      10,
    );
    written = Date.now() - written;
    await set.start();
    const concurrency = Number(process.env.CONCURRENCY ?? 32);
    const started = process.hrtime.bigint();
    const report = await rescanVolumes(join(set.root, 'db'), {
      volumes: set.volumes,
      replicas: 3,
      subvolumes: 10,
      quiet: true,
      concurrency,
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(
      `rescan (${embedded ? 'embedded' : 'nginx'} volumes): ${report.files} files, ${report.keys} keys in ${seconds.toFixed(2)} s = ` +
        `${Math.round(report.files / seconds)} files/s, ${Math.round(report.keys / seconds)} keys/s; ` +
        `${report.listingErrors.length} listing errors; laying out the files took ${(written / 1000).toFixed(1)} s`,
    );
  } finally {
    await set.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
