// The log backends side by side: the local segment log (fsync) and NATS JetStream (one node, and
// a three-node cluster with 3 replicas), each under one master (stock nginx volumes, 3 replicas):
// PUT throughput (32 clients, small values), GET with redirect (wrk, the keys at random), and
// the time one append takes (p50/p99 from the master's /metrics is not needed: PUT latency shows it).
//
//   npm run build && node dist/tools/bench/log-backends.js [keys=5000] [--seconds 5]
//
// Needs nats-server (Debian: apt-get install nats-server).
import { Agent, request } from 'undici';
import { startNats, startNatsCluster } from '../../test/helpers/nats.js';
import { benchVolumes } from './harness.js';
import { startMkv, type RunningMaster } from './masters.js';
import { percentile } from './stats.js';
import { formatWrk, wrk } from './wrk.js';

/** One nats-server, or a three-node cluster, as the tests start them. */
async function natsNodes(count: 1 | 3): Promise<{ url: string; stop(): Promise<void> }> {
  if (count === 1) return startNats();
  const cluster = await startNatsCluster();
  return { url: cluster.url, stop: () => cluster.close() };
}

async function puts(master: RunningMaster, keys: string[]): Promise<{ perSecond: number; p50: number; p99: number }> {
  const dispatcher = new Agent({ connections: 32 });
  const latencies: number[] = [];
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < keys.length) {
        const key = keys[next++]!;
        const begun = process.hrtime.bigint();
        const response = await request(`${master.url}${key}`, { method: 'PUT', body: 'a small value', dispatcher });
        await response.body.dump();
        if (response.statusCode !== 201) throw new Error(`PUT ${key}: ${response.statusCode}`);
        latencies.push(Number(process.hrtime.bigint() - begun) / 1e6);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await dispatcher.close();
  return { perSecond: keys.length / seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

async function main(): Promise<void> {
  const count = Number(/^\d+$/.test(process.argv[2] ?? '') ? process.argv[2] : 5000);
  const at = process.argv.indexOf('--seconds');
  const seconds = at === -1 ? 5 : Number(process.argv[at + 1]);
  const keys = Array.from({ length: count }, (_, i) => `/bench/log/${i}`);
  for (const backend of ['local', 'jetstream-1', 'jetstream-3'] as const) {
    const nats = backend === 'local' ? undefined : await natsNodes(backend === 'jetstream-1' ? 1 : 3);
    const set = await benchVolumes(5, false);
    await set.start();
    const flags = nats ? ['--log', nats.url, '--log-replicas', backend === 'jetstream-3' ? '3' : '1'] : [];
    const master = await startMkv({ volumes: set.volumes, db: set.db, flags });
    try {
      const written = await puts(master, keys);
      const read = await wrk({ url: master.url, paths: keys, seconds });
      console.log(
        `${backend.padEnd(12)} PUT ${Math.round(written.perSecond)}/s (p50 ${written.p50.toFixed(1)} ms, p99 ${written.p99.toFixed(1)} ms); ` +
          formatWrk('GET', read),
      );
    } finally {
      await master.stop();
      await set.close();
      await nats?.stop();
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
