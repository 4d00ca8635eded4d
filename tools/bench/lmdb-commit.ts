// One small LMDB commit (a key record and the checkpoint, as the projector writes per event) in
// each way lmdb-js can commit it: asynchronous or synchronous, fsync'd or not. Why the index is
// written without fsync and committed synchronously (src/index/index-store.ts).
//
//   npm run build && node dist/tools/bench/lmdb-commit.js [commits=300]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, type RootDatabaseOptions } from 'lmdb';

const modes: [string, RootDatabaseOptions, boolean][] = [
  ['fsync, async (lmdb-js default)', {}, false],
  ['fsync, transactionSync', {}, true],
  ['noMetaSync, transactionSync', { noMetaSync: true, overlappingSync: false }, true],
  ['noSync, async', { noSync: true }, false],
  ['noSync, transactionSync (the index)', { noSync: true }, true],
  ['noSync + writemap, transactionSync', { noSync: true, useWritemap: true }, true],
];

async function main(): Promise<void> {
  const commits = Number(process.argv[2] ?? 300);
  for (const [name, options, synchronous] of modes) {
    const dir = mkdtempSync(join(tmpdir(), 'mkv-bench-lmdb-'));
    const env = open({ path: dir, maxDbs: 4, ...options });
    const keys = env.openDB<unknown, Buffer>({ name: 'keys', keyEncoding: 'binary' });
    const meta = env.openDB<number, string>({ name: 'meta' });
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < commits; i++) {
      const write = () => {
        keys.putSync(Buffer.from(`/bench/${i}`), { state: 'live', volumes: ['a:1/sv01', 'b:1/sv02', 'c:1/sv03'], seq: i });
        meta.putSync('checkpoint', i);
      };
      if (synchronous) env.transactionSync(write);
      else await env.transaction(write);
    }
    const used = process.cpuUsage(cpu);
    console.log(
      `${name.padEnd(48)} ${((performance.now() - started) / commits).toFixed(3)} ms wall, ${((used.user + used.system) / 1000 / commits).toFixed(3)} ms CPU a commit`,
    );
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
