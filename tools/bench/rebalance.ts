// Rebalance benchmark: N keys (default 20,000) of SIZE bytes (default 4096) on 5 volumes
// (stock nginx, or --embedded), 3 replicas, 10 subvolumes, rebalanced to 3 volumes.
//
//   npm run build && node dist/tools/bench/rebalance.js [keys=20000] [size=4096] [--embedded]
//
// Target (issue 6): 20,000 keys from 5 volumes to 3 at least 3× faster than the Go original's 15–18 s.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rebalanceAll } from '../../src/ops/rebalance.js';
import { rescanVolumes } from '../../src/ops/rescan.js';
import { keyToPath, keyToVolumes } from '../../src/placement.js';
import { VolumeClient } from '../../src/volumes/client.js';
import { openStore } from '../../src/writer/store.js';

const numbers = process.argv.slice(2).filter((arg) => /^\d+$/.test(arg)).map(Number);
const keys = numbers[0] ?? 20_000;
const size = numbers[1] ?? 4096;
const embedded = process.argv.includes('--embedded');
const repo = fileURLToPath(new URL('../../../', import.meta.url));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitUp(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      await (await fetch(`http://127.0.0.1:${port}/`)).arrayBuffer();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`volume on ${port} did not start`);
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'mkv-bench-rebalance-'));
  const children: ChildProcess[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < 5; i++) ports.push(await freePort());
    const volumes = ports.map((port) => `127.0.0.1:${port}`);
    const dirs = ports.map((_, i) => join(root, `volume${i + 1}`));
    const value = randomBytes(size);
    for (let i = 0; i < keys; i++) {
      const key = `/bench/${i}/clip.bin`;
      for (const volume of keyToVolumes(key, volumes, 3, 10)) {
        const [host, subvolume] = volume.split('/');
        const file = join(dirs[volumes.indexOf(host!)]!, subvolume!, keyToPath(key));
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, value);
      }
    }
    for (const [i, port] of ports.entries()) {
      const child = embedded
        ? spawn(process.execPath, [join(repo, 'dist/src/cli/main.js'), 'volume', '--port', String(port), '--host', '127.0.0.1', '--dir', dirs[i]!], { stdio: 'ignore' })
        : spawn(join(repo, 'nginx/volume'), [dirs[i]!], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
      children.push(child);
      await waitUp(port);
    }
    const db = join(root, 'db');
    await rescanVolumes(db, { volumes, replicas: 3, subvolumes: 10, quiet: true });
    const store = await openStore(db);
    const client = new VolumeClient();
    const concurrency = Number(process.env.CONCURRENCY ?? 16);
    const report = await rebalanceAll(store.index, store.writer, client, { volumes: volumes.slice(0, 3), replicas: 3, subvolumes: 10 }, { quiet: true, concurrency });
    await store.close();
    await client.close();
    const seconds = Math.max(report.seconds, 1e-3);
    console.log(
      `rebalance 5 → 3 volumes (${embedded ? 'embedded' : 'nginx'}): ${report.keys} keys of ${size} bytes in ${report.seconds.toFixed(2)} s = ` +
        `${Math.round(report.keys / seconds)} keys/s; moved ${report.moved}, ${report.copies} copies = ${Math.round(report.copies / seconds)} files/s, ` +
        `${(report.bytes / 2 ** 20 / seconds).toFixed(1)} MB/s; balanced ${report.balanced}, failed ${report.failed.length}`,
    );
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
