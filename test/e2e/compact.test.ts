// mkv log compact: the sealed segments before a time become one snapshot segment; replay of the
// compacted log equals the live index, key records to the letter.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { IndexStore } from '../../src/index/index-store.js';
import { listSegments, readBase } from '../../src/log/segment-log.js';
import { indexDir, logDir } from '../../src/db/paths.js';
import { getFollowing, http } from '../helpers/http.js';
import { assertIndexEqualsReplay } from '../helpers/replay.js';
import { removeDir, runMkv, spawnMaster, startVolumes, tempDir, type MkvProcess, type VolumeSet } from '../helpers/cluster.js';

let set: VolumeSet;
let db: string;
before(async () => {
  set = await startVolumes('embedded', 3);
  db = tempDir('mkv-compact-');
});
after(async () => {
  await set?.close();
  if (db) removeDir(db);
});

async function records(): Promise<Array<[string, unknown]>> {
  const index = IndexStore.open(indexDir(db), { readOnly: true });
  try {
    return [...index.entries()];
  } finally {
    await index.close();
  }
}

async function stop(master: MkvProcess): Promise<void> {
  master.child.kill('SIGTERM');
  await master.exited;
}

test('compact folds the old segments into a snapshot; replay equals the live index; the log goes on', async () => {
  let master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db, '--segment-size', '2048']);
  for (let i = 0; i < 30; i++) assert.equal((await http('PUT', `${master.url}/c/${i}`, `value ${i}`)).status, 201);
  for (let i = 0; i < 5; i++) assert.equal((await http('UNLINK', `${master.url}/c/${i}`)).status, 204);
  for (let i = 5; i < 10; i++) assert.equal((await http('DELETE', `${master.url}/c/${i}`)).status, 204);
  await new Promise((resolve) => setTimeout(resolve, 30));
  const cutoff = new Date().toISOString();
  await new Promise((resolve) => setTimeout(resolve, 30));
  for (let i = 30; i < 40; i++) assert.equal((await http('PUT', `${master.url}/c/${i}`, `value ${i}`)).status, 201);
  assert.equal((await http('UNLINK', `${master.url}/c/12`)).status, 204);
  await stop(master);
  const segmentsBefore = listSegments(logDir(db)).length;
  const recordsBefore = await records();

  const result = await runMkv(['log', 'compact', '--db', db, '--before', cutoff]);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /compacted \d+ segments \(\d+ events\) into a snapshot of 25 keys; the log now starts at seq \d+/);
  assert.ok(listSegments(logDir(db)).length < segmentsBefore, 'older segments are gone');
  assert.ok(readBase(logDir(db)) > 1);
  assert.deepEqual(await records(), recordsBefore, 'every key record is as it was, seq and time included');
  await assertIndexEqualsReplay(db);
  const verify = await runMkv(['log', 'verify', '--db', db]);
  assert.equal(verify.status, 0, verify.stdout);

  master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db, '--segment-size', '2048']);
  try {
    assert.equal((await getFollowing(`${master.url}/c/20`)).text, 'value 20');
    assert.equal((await http('GET', `${master.url}/c/3`)).status, 404);
    assert.ok((JSON.parse((await http('GET', `${master.url}/c/?unlinked`)).text) as { keys: string[] }).keys.includes('/c/3'));
    assert.equal((await http('GET', `${master.url}/c/7`)).status, 404);
    const history = JSON.parse((await http('GET', `${master.url}/c/20?history`)).text) as Array<{ type: string; origin: string }>;
    assert.deepEqual(
      history.map((e) => [e.type, e.origin]),
      [['ObjectSnapshot', 'compact']],
    );
    const later = JSON.parse((await http('GET', `${master.url}/c/12?history`)).text) as Array<{ type: string }>;
    assert.deepEqual(
      later.map((e) => e.type),
      ['ObjectSnapshot', 'KeyUnlinked'],
      'events after the cut keep their history',
    );
    assert.equal((await http('PUT', `${master.url}/c/after`, 'after the compaction')).status, 201);
    assert.equal((await http('LINK', `${master.url}/c/3`)).status, 204);
  } finally {
    await stop(master);
  }

  // A second compaction folds the first snapshot too.
  const again = await runMkv(['log', 'compact', '--db', db, '--before', new Date().toISOString()]);
  assert.equal(again.status, 0, again.stderr);
  await assertIndexEqualsReplay(db);
  assert.equal((await runMkv(['log', 'verify', '--db', db])).status, 0);
  const point = await runMkv(['rebuild', '--db', db, '--from-log', '--until', new Date().toISOString(), '--into', `${db}-pit`]);
  assert.equal(point.status, 0, point.stderr);
  removeDir(`${db}-pit`);
});
