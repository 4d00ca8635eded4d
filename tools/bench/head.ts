// The HEAD every GET sends to a volume, side by side: the master's plain-socket client (http1.ts, through VolumeClient.head)
// and undici (a Pool, reset: false, body dumped), against one stock nginx volume, N in flight.
//
//   npm run build && node dist/tools/bench/head.js [heads=20000] [--concurrency 64]
//
// Prints HEADs/s and the CPU per HEAD of this process (the client) and of nginx.
import { Pool } from 'undici';
import { keyToPath } from '../../src/placement.js';
import { VolumeClient } from '../../src/volumes/client.js';
import { benchVolumes, layOut } from './harness.js';
import { treeCpuSeconds } from './masters.js';

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}

async function main(): Promise<void> {
  const total = Number(/^\d+$/.test(process.argv[2] ?? '') ? process.argv[2] : 20_000);
  const concurrency = flag('concurrency', 64);
  const set = await benchVolumes(1, false);
  const keys = Array.from({ length: 2000 }, (_, i) => `/bench/head/${i}`);
  layOut(set, keys, Buffer.alloc(1024, 0x61), 1, 1);
  await set.start();
  const volume = set.volumes[0]!;
  const paths = keys.map(keyToPath);
  const client = new VolumeClient();
  const pool = new Pool(`http://${volume}`, { connections: 128 });
  const clients: Record<string, (path: string) => Promise<boolean>> = {
    'http1.ts': async (path) => (await client.head(volume, path)).status === 'found',
    undici: async (path) => {
      const response = await pool.request({ method: 'HEAD', path, reset: false });
      await response.body.dump();
      return response.statusCode === 200;
    },
  };
  try {
    for (const [name, head] of Object.entries(clients)) {
      let next = 0;
      const cpu = process.cpuUsage();
      const nginxBefore = treeCpuSeconds(set.pids()[0]!);
      const started = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < total) {
            const path = paths[next++ % paths.length]!;
            if (!(await head(path))) throw new Error(`${name}: HEAD ${path} did not find it`);
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const used = process.cpuUsage(cpu);
      const nginxUs = ((treeCpuSeconds(set.pids()[0]!) - nginxBefore) * 1e6) / total;
      console.log(
        `${name.padEnd(10)} ${Math.round(total / seconds)} HEAD/s, ${concurrency} in flight; CPU per HEAD: client ${((used.user + used.system) / total).toFixed(1)} µs, nginx ${nginxUs.toFixed(1)} µs`,
      );
    }
  } finally {
    await client.close();
    await pool.close();
    await set.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
