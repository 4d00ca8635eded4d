// Rescan benchmark: volumes holding N files (default 100,000: N/3 keys × 3 replicas, 10
// subvolumes), laid out on disk as the original writes them, served by stock nginx (or the
// embedded volume server with --embedded), rescanned as `mkv rebuild --scan` does.
//
//   npm run build && node dist/tools/bench/rescan.js [files=100000] [--embedded]
//
// Target (issue 6): 20,000 keys at least 5× faster than the Go original's 22–25 s.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rescanVolumes } from '../../src/ops/rescan.js';
import { keyToPath, keyToVolumes } from '../../src/placement.js';

const files = Number(process.argv.find((arg) => /^\d+$/.test(arg)) ?? 100_000);
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
  const root = mkdtempSync(join(tmpdir(), 'mkv-bench-rescan-'));
  const children: ChildProcess[] = [];
  try {
    const ports = [await freePort(), await freePort(), await freePort()];
    const volumes = ports.map((port) => `127.0.0.1:${port}`);
    const dirs = ports.map((_, i) => join(root, `volume${i + 1}`));
    const keys = Math.ceil(files / 3);
    let written = Date.now();
    for (let i = 0; i < keys; i++) {
      const key = `/bench/${i}/frame.jpg`;
      for (const volume of keyToVolumes(key, volumes, 3, 10)) {
        const [host, subvolume] = volume.split('/');
        const file = join(dirs[volumes.indexOf(host!)]!, subvolume!, keyToPath(key));
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, 'x');
      }
    }
    written = Date.now() - written;
    for (const [i, port] of ports.entries()) {
      const child = embedded
        ? spawn(process.execPath, [join(repo, 'dist/src/cli/main.js'), 'volume', '--port', String(port), '--host', '127.0.0.1', '--dir', dirs[i]!], { stdio: 'ignore' })
        : spawn(join(repo, 'nginx/volume'), [dirs[i]!], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
      children.push(child);
      await waitUp(port);
    }
    const started = process.hrtime.bigint();
    const concurrency = Number(process.env.CONCURRENCY ?? 32);
    const report = await rescanVolumes(join(root, 'db'), { volumes, replicas: 3, subvolumes: 10, quiet: true, concurrency });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(
      `rescan (${embedded ? 'embedded' : 'nginx'} volumes): ${report.files} files, ${report.keys} keys in ${seconds.toFixed(2)} s = ` +
        `${Math.round(report.files / seconds)} files/s, ${Math.round(report.keys / seconds)} keys/s; ` +
        `${report.listingErrors.length} listing errors; laying out the files took ${(written / 1000).toFixed(1)} s`,
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
