// The log as people read it when something went wrong: Apache's own Avro readers on DB/log/*.avro
// of a running master, and of one killed with kill -9 (its newest segment still holding the
// space reserved ahead), then again once it restarted.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { listSegments } from '../../src/log/segments.js';
import { javaAvroSkipReason, pythonAvroSkipReason, readWithJava, readWithPython } from '../helpers/avro-readers.js';
import { http } from '../helpers/http.js';
import { removeDir, spawnMaster, startVolumes, tempDir, type VolumeSet } from '../helpers/cluster.js';

let set: VolumeSet;
let db: string;
before(async () => {
  set = await startVolumes('embedded', 3);
  db = tempDir('mkv-avro-tools-');
});
after(async () => {
  await set?.close();
  if (db) removeDir(db);
});

const segments = () => listSegments(join(db, 'log')).map((segment) => segment.path);
const skip = pythonAvroSkipReason() || javaAvroSkipReason();

test("Apache's Python and Java readers read the log of a running master, and of one killed with kill -9", { skip }, async () => {
  const args = ['--db', db, '--volumes', set.volumes.join(','), '--segment-size', '16384'];
  const master = await spawnMaster(args);
  for (let i = 0; i < 120; i++) assert.equal((await http('PUT', `${master.url}/tools/${i}`, `value ${i}`)).status, 201);
  const written = Array.from({ length: 240 }, (_, i) => i + 1); // WriteStarted and WriteCommitted a key
  assert.ok(segments().length > 1, 'sealed segments and a newest one');
  for (const [name, read] of [
    ['Python', readWithPython],
    ['Java', readWithJava],
  ] as const) {
    assert.deepEqual(read(segments()), { seqs: written }, `${name}, while the master runs`);
  }
  master.child.kill('SIGKILL');
  await master.exited;
  for (const [name, read] of [
    ['Python', readWithPython],
    ['Java', readWithJava],
  ] as const) {
    assert.deepEqual(read(segments()), { seqs: written }, `${name}, after kill -9`);
  }
  const restarted = await spawnMaster(args);
  try {
    assert.equal((await http('PUT', `${restarted.url}/tools/after`, 'after')).status, 201);
    assert.deepEqual(readWithPython(segments()).seqs.length, 242);
  } finally {
    restarted.child.kill('SIGTERM');
    await restarted.exited;
  }
});
