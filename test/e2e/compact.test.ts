// mkv log compact: the sealed segments before a time become one snapshot segment; replay of the
// compacted log equals the live index, key records to the letter.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { IndexStore } from '../../src/index/index-store.js';
import { listSegments, readBase } from '../../src/log/segments.js';
import { indexDir, logDir } from '../../src/db/paths.js';
import { getFollowing, http } from '../helpers/http.js';
import { assertIndexEqualsReplay } from '../helpers/replay.js';
import { removeDir, runMkv, spawnMaster, startVolumes, stopMaster, tempDir, type VolumeSet } from '../helpers/cluster.js';
import { instantBetween } from '../helpers/wait.js';

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

test('compact folds the old segments into a snapshot; replay equals the live index; the log goes on', async () => {
  let master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db, '--segment-size', '2048']);
  for (let i = 0; i < 30; i++) assert.equal((await http('PUT', `${master.url}/c/${i}`, `value ${i}`)).status, 201);
  for (let i = 0; i < 5; i++) assert.equal((await http('UNLINK', `${master.url}/c/${i}`)).status, 204);
  for (let i = 5; i < 10; i++) assert.equal((await http('DELETE', `${master.url}/c/${i}`)).status, 204);
  const cutoff = await instantBetween();
  for (let i = 30; i < 40; i++) assert.equal((await http('PUT', `${master.url}/c/${i}`, `value ${i}`)).status, 201);
  assert.equal((await http('UNLINK', `${master.url}/c/12`)).status, 204);
  await stopMaster(master);
  const segmentsBefore = listSegments(logDir(db)).length;
  const recordsBefore = await records();

  const dry = await runMkv(['log', 'compact', '--db', db, '--before', cutoff, '--dry-run']);
  assert.equal(dry.status, 0, dry.stderr);
  const planned =
    /^would compact (\d+) segments \((\d+) events, seq 1 to \d+\) into a snapshot: the history of those events would be given up\n$/.exec(
      dry.stdout,
    );
  assert.ok(planned, dry.stdout);
  assert.equal(listSegments(logDir(db)).length, segmentsBefore, 'a dry run changes nothing');
  const result = await runMkv(['log', 'compact', '--db', db, '--before', cutoff]);
  assert.equal(result.status, 0, result.stderr);
  assert.match(
    result.stdout,
    new RegExp(`compacted ${planned[1]} segments \\(${planned[2]} events\\) into a snapshot of 25 keys; the log now starts at seq \\d+`),
  );
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
    await stopMaster(master);
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

test('a point in time after compaction: exact where the log holds it, refused in one line where it does not, nothing left in --into', async () => {
  const pitDb = tempDir('mkv-compact-pit-');
  const entriesOf = async (dir: string) => {
    const index = IndexStore.open(indexDir(dir), { readOnly: true });
    try {
      return [...index.entries()];
    } finally {
      await index.close();
    }
  };
  const rebuild = (args: string[]) => runMkv(['rebuild', '--db', pitDb, '--from-log', ...args]);
  try {
    const master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', pitDb, '--segment-size', '2048']);
    const firstWrite = new Date(Date.now() - 1000).toISOString();
    for (let i = 0; i < 30; i++) assert.equal((await http('PUT', `${master.url}/p/${i}`, `value ${i}`)).status, 201);
    for (let i = 0; i < 5; i++) assert.equal((await http('DELETE', `${master.url}/p/${i}`)).status, 204);
    const cutoff = await instantBetween();
    for (let i = 30; i < 45; i++) assert.equal((await http('PUT', `${master.url}/p/${i}`, `value ${i}`)).status, 201);
    for (let i = 30; i < 33; i++) assert.equal((await http('UNLINK', `${master.url}/p/${i}`)).status, 204);
    await stopMaster(master);
    const lastSeq = 30 * 2 + 5 * 2 + 15 * 2 + 3;
    const late = lastSeq - 4;
    const before = await rebuild(['--until-seq', String(late), '--into', `${pitDb}-before`]);
    assert.equal(before.status, 0, before.stderr);
    const expected = await entriesOf(`${pitDb}-before`);

    const compacted = await runMkv(['log', 'compact', '--db', pitDb, '--before', cutoff]);
    assert.equal(compacted.status, 0, compacted.stderr);
    const snapshotEnd = Number(/the history before seq (\d+) is given up/.exec(compacted.stdout)![1]) - 1;
    assert.ok(snapshotEnd > 10 && snapshotEnd < late, `the snapshot stands for seq ${snapshotEnd}`);

    for (const point of [
      ['--until-seq', '10'],
      ['--until', firstWrite],
    ]) {
      const refused = await rebuild([...point, '--into', `${pitDb}-refused`]);
      assert.equal(refused.status, 2, `${point.join(' ')}: ${refused.stdout}${refused.stderr}`);
      assert.equal(refused.stderr.trim().split('\n').length, 1, 'one line');
      assert.match(
        refused.stderr,
        new RegExp(`holds no point before seq ${snapshotEnd} .*earliest point it can rebuild: --until-seq ${snapshotEnd} or --until `),
      );
      assert.ok(!existsSync(`${pitDb}-refused`), 'nothing left in --into');
    }
    const beyond = await rebuild(['--until-seq', String(lastSeq + 100), '--into', `${pitDb}-refused`]);
    assert.equal(beyond.status, 2);
    assert.match(beyond.stderr, new RegExp(`the log ends at seq ${lastSeq}`));

    const after = await rebuild(['--until-seq', String(late), '--into', `${pitDb}-after`]);
    assert.equal(after.status, 0, after.stderr);
    assert.deepEqual(await entriesOf(`${pitDb}-after`), expected, 'the same point, to the letter, before and after compaction');
    const earliest = await rebuild(['--until-seq', String(snapshotEnd), '--into', `${pitDb}-earliest`]);
    assert.equal(earliest.status, 0, earliest.stderr);
    assert.equal((await entriesOf(`${pitDb}-earliest`)).length, 25, 'the snapshot: 30 keys written, 5 deleted');
  } finally {
    for (const dir of [pitDb, `${pitDb}-before`, `${pitDb}-after`, `${pitDb}-earliest`, `${pitDb}-refused`]) removeDir(dir);
  }
});
