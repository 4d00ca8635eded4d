// Big-value memory probe: PUT one large value through a real master process (fsync on) over
// three embedded volumes, and report how much the master's resident memory grew.
//
//   npm run build && node dist/tools/bench/big-put-rss.js [MB=1024]
//
// Target (issue 6): a 1 GB PUT grows the master's RSS by less than 64 MB.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { createVolumeServer } from '../../src/volumes/volume-server.js';

const megabytes = Number(process.argv[2] ?? 1024);
const mkv = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)![1]) / 1024;
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'mkv-bench-'));
  const volumes = await Promise.all(
    [1, 2, 3].map(async (i) => {
      const server = createVolumeServer({ root: join(root, `v${i}`) });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
    }),
  );
  const master = spawn(process.execPath, [mkv, 'server', '--port', '0', '--host', '127.0.0.1', '--db', join(root, 'db'), '--volumes', volumes.map((v) => v.address).join(',')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve) => {
      master.stdout.on('data', (chunk: Buffer) => {
        const match = /listening on http:\/\/[^:]+:(\d+)/.exec(chunk.toString());
        if (match) resolve(Number(match[1]));
      });
    });
    const url = `http://127.0.0.1:${port}`;
    await (await request(`${url}/warmup`, { method: 'PUT', body: Buffer.alloc(1 << 20) })).body.dump();
    const before = memory(master.pid!).rss;
    writeFileSync(`/proc/${master.pid}/clear_refs`, '5');
    const chunk = Buffer.alloc(1 << 20, 0x5a);
    const started = process.hrtime.bigint();
    const response = await request(`${url}/big`, {
      method: 'PUT',
      headers: { 'content-length': String(megabytes << 20) },
      body: Readable.from((function* () {
        for (let i = 0; i < megabytes; i++) yield chunk;
      })()),
    });
    await response.body.dump();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const after = memory(master.pid!);
    console.log(
      `PUT ${megabytes} MB: ${response.statusCode} in ${seconds.toFixed(2)} s (${(megabytes / seconds).toFixed(0)} MB/s to 3 replicas); ` +
        `master RSS ${before.toFixed(1)} MB before, peak +${(after.peak - before).toFixed(1)} MB (target < 64 MB)`,
    );
  } finally {
    master.kill('SIGKILL');
    for (const { server } of volumes) server.close();
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
