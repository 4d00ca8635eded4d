// mkv gc: unlinked keys hard-deleted after a time, abandoned writes cleaned up, all as events.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { keyToPath, keyToVolumes } from '../../src/placement.js';
import { getFollowing, http } from '../helpers/http.js';
import { assertIndexEqualsReplay } from '../helpers/replay.js';
import { removeDir, runMkv, spawnMaster, startVolumes, tempDir, type VolumeSet } from '../helpers/cluster.js';
import { instantBetween } from '../helpers/wait.js';

let set: VolumeSet;
let db: string;
before(async () => {
  set = await startVolumes('embedded', 3);
  db = tempDir('mkv-gc-');
});
after(async () => {
  await set?.close();
  if (db) removeDir(db);
});

function files(key: string): string[] {
  return keyToVolumes(key, set.volumes, 3, 10).map((volume) => {
    const [host, subvolume] = volume.split('/');
    return join(set.dirs[set.volumes.indexOf(host!)]!, subvolume!, keyToPath(key));
  });
}

test('gc deletes keys unlinked before the time and cleans up abandoned writes; history keeps it all', async () => {
  const master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db]);
  for (const key of ['/gc/old', '/gc/recent', '/gc/live']) assert.equal((await http('PUT', master.url + key, key)).status, 201);
  assert.equal((await http('UNLINK', `${master.url}/gc/old`)).status, 204);
  const cutoff = await instantBetween();
  assert.equal((await http('UNLINK', `${master.url}/gc/recent`)).status, 204);
  // An abandoned write: a volume is down, so the failed PUT cannot be cleaned up and stays pending.
  await set.stop(1);
  assert.equal((await http('PUT', `${master.url}/gc/abandoned`, 'never committed')).status, 500);
  await set.start(1);

  // A dry run reads beside the running master (no lock), and changes nothing.
  const dry = await runMkv(['gc', '--db', db, '--unlinked-before', cutoff, '--pending-older-than', '0s', '--dry-run']);
  assert.equal(dry.status, 0, dry.stderr);
  assert.deepEqual(dry.stdout.trim().split('\n').sort(), ['would clean up the abandoned write of /gc/abandoned', 'would delete /gc/old']);
  assert.ok(files('/gc/old').every(existsSync), 'a dry run changes nothing');
  assert.match(dry.stderr, /gc \(dry run\): 1 unlinked keys would be deleted, 1 abandoned writes would be cleaned up/);
  const restoreDry = await runMkv(['restore', '--db', db, '--unlinked-since', cutoff, '--dry-run']);
  assert.equal(restoreDry.status, 0, restoreDry.stderr);
  assert.equal(restoreDry.stdout, '/gc/recent\n', 'the key it would restore');
  assert.equal((await http('GET', `${master.url}/gc/recent`)).status, 404, 'still unlinked');
  master.child.kill('SIGTERM');
  await master.exited;

  // A year mistyped is no time anything was unlinked before: refused, nothing deleted.
  const future = await runMkv(['gc', '--db', db, '--unlinked-before', '2062-01-01T00:00:00Z']);
  assert.equal(future.status, 2);
  assert.match(future.stderr, /in the future/);
  const result = await runMkv(['gc', '--db', db, '--unlinked-before', cutoff, '--pending-older-than', '0s']);
  assert.equal(result.status, 0, result.stdout + result.stderr);
  assert.match(result.stderr, /gc: 1 unlinked keys deleted, 1 abandoned writes cleaned up, 0 keys' replaced values removed, 0 failed/);
  assert.ok(!files('/gc/old').some(existsSync), 'the unlinked blob is gone from every volume');
  assert.ok(files('/gc/recent').every(existsSync), 'a key unlinked after the time stays');

  const again = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db]);
  try {
    const unlinked = JSON.parse((await http('GET', `${again.url}/gc/?unlinked`)).text) as { keys: string[] };
    assert.deepEqual(unlinked.keys, ['/gc/recent']);
    assert.equal((await getFollowing(`${again.url}/gc/live`)).text, '/gc/live');
    const history = JSON.parse((await http('GET', `${again.url}/gc/old?history`)).text) as Array<{ type: string; origin: string }>;
    assert.deepEqual(history.at(-1), { ...history.at(-1), type: 'KeyDeleted', origin: 'gc' });
    const abandoned = JSON.parse((await http('GET', `${again.url}/gc/abandoned?history`)).text) as Array<{ type: string; origin: string }>;
    assert.deepEqual(
      abandoned.map((event) => event.type),
      ['WriteStarted', 'WriteAborted'],
    );
  } finally {
    again.child.kill('SIGTERM');
    await again.exited;
  }
  await assertIndexEqualsReplay(db);
});
