// A 100 MB PUT through a real master process: it streams to the replicas, so the master's
// resident memory grows by far less than the value.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { http } from '../helpers/http.js';
import { memoryOf, processTree, resetPeak } from '../helpers/rss.js';
import { removeDir, spawnMaster, startVolumes, tempDir, type MkvProcess, type VolumeSet } from '../helpers/cluster.js';

let set: VolumeSet;
let db: string;
let master: MkvProcess;
before(async () => {
  set = await startVolumes('embedded', 3);
  db = tempDir('mkv-big-');
  master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db]);
});
after(async () => {
  master?.child.kill('SIGKILL');
  await master?.exited;
  await set?.close();
  if (db) removeDir(db);
});

test('a 100 MB PUT grows the master RSS by well under the value size', async (t) => {
  const size = Number(process.env.MB ?? 100) * 1024 * 1024;
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  const expected = createHash('md5');
  for (let i = 0; i < size / chunk.length; i++) expected.update(chunk);
  // Warm up the code paths first, so the measurement is of the value and not of JIT and pools.
  // Each HTTP worker takes the next connection: warm every one of them.
  for (let i = 0; i < 4; i++) {
    assert.equal((await http('PUT', `${master.url}/warmup/${i}`, Buffer.alloc(1024 * 1024), { connection: 'close' })).status, 201);
  }
  // The writer process and its HTTP workers: the worker that takes the PUT streams the value.
  const pids = processTree(master.child.pid!);
  const before = pids.map((pid) => memoryOf(pid).rss);
  for (const pid of pids) resetPeak(pid);
  const body = Readable.from(
    (function* () {
      for (let i = 0; i < size / chunk.length; i++) yield chunk;
    })(),
  );
  const reply = await http('PUT', `${master.url}/big`, body, { 'content-length': String(size) });
  assert.equal(reply.status, 201);
  const growths = pids.map((pid, i) => memoryOf(pid).peak - before[i]!);
  t.diagnostic(`per process: ${growths.map((g) => (g / 2 ** 20).toFixed(1)).join(', ')} MB`);
  // The bar is for the process that streams the value (one worker), as it was for one process.
  const growth = Math.max(...growths);
  t.diagnostic(
    `master RSS before ${(before.reduce((a, b) => a + b) / 2 ** 20).toFixed(1)} MB (${pids.length} processes), largest peak growth of one process during the ${size / 2 ** 20} MB PUT ${(growth / 2 ** 20).toFixed(1)} MB`,
  );
  assert.ok(growth < 50 * 1024 * 1024, `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MB for a ${size / 2 ** 20} MB value`);
  assert.equal((await http('HEAD', `${master.url}/big`)).headers['content-md5'], expected.digest('hex'));
});
