// --retain through the CLI: a point in time served read-only serves the bytes of every key live
// then (written, overwritten, deleted since), the window is kept in DB/RETAIN for later starts
// and mkv gc, and the retained blobs are counted in /metrics.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getFollowing, http } from '../helpers/http.js';
import { adminUrlOf, removeDir, runMkv, spawnMaster, startVolumes, stopMaster, tempDir, type VolumeSet } from '../helpers/cluster.js';
import { instantBetween, until } from '../helpers/wait.js';

describe('--retain, served at points in time', () => {
  let set: VolumeSet;
  let db: string;
  const scratch: string[] = [];
  /** Each instant, and what each key served then (a value, or 404). */
  const instants: Array<{ at: string; a: string | number; b: string | number }> = [];

  before(async () => {
    set = await startVolumes('embedded', 2);
    db = tempDir('mkv-retain-');
    const master = await spawnMaster(['--volumes', set.volumes.join(','), '--replicas', '2', '--db', db, '--retain', '30d']);
    const url = master.url;
    try {
      assert.match(master.output(), /keeping every replaced value for 30d/);
      assert.equal((await http('PUT', `${url}/pit/a`, 'a1')).status, 201);
      assert.equal((await http('PUT', `${url}/pit/b`, 'b1')).status, 201);
      instants.push({ at: await instantBetween(), a: 'a1', b: 'b1' });
      assert.equal((await http('UNLINK', `${url}/pit/a`)).status, 204);
      assert.equal((await http('PUT', `${url}/pit/a`, 'a2')).status, 201);
      assert.equal((await http('DELETE', `${url}/pit/b`)).status, 204);
      instants.push({ at: await instantBetween(), a: 'a2', b: 404 });
      assert.equal((await http('PUT', `${url}/pit/b`, 'b2')).status, 201);
      assert.equal((await http('DELETE', `${url}/pit/a`)).status, 204);
      instants.push({ at: await instantBetween(), a: 404, b: 'b2' });
    } finally {
      assert.equal(await stopMaster(master), 0, master.output());
    }
  });
  after(async () => {
    await set?.close();
    for (const dir of [db, ...scratch]) if (dir) removeDir(dir);
  });

  test('each instant rebuilt from the log and served read-only serves the bytes each key held then', async () => {
    for (const [i, moment] of instants.entries()) {
      const out = join(tempDir('mkv-retain-pit-'), 'out');
      scratch.push(out);
      const rebuilt = await runMkv(['rebuild', '--db', db, '--from-log', '--until', moment.at, '--into', out]);
      assert.equal(rebuilt.status, 0, rebuilt.stderr);
      const reader = await spawnMaster(['--volumes', set.volumes.join(','), '--replicas', '2', '--db', out, '--read-only']);
      try {
        for (const key of ['a', 'b'] as const) {
          const got = await getFollowing(`${reader.url}/pit/${key}`);
          assert.deepEqual(got.status === 200 ? got.text : got.status, moment[key], `instant ${i + 1}, /pit/${key}`);
        }
      } finally {
        await stopMaster(reader);
      }
    }
  });

  test('the window is kept in DB/RETAIN: a start without --retain keeps it, mkv gc honours it, --retain 0 gives it up', async () => {
    assert.equal(readFileSync(join(db, 'RETAIN'), 'utf8'), `${30 * 86_400_000}\n`);
    const master = await spawnMaster(['--volumes', set.volumes.join(','), '--replicas', '2', '--db', db, '--admin-port', '0']);
    try {
      assert.match(master.output(), /keeping every replaced value for 30d/);
      const metric = async (name: string) => {
        const text = (await http('GET', `${adminUrlOf(master)}/metrics`)).text;
        return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
      };
      await until('the retention sweep to count what is kept', async () => (await metric('mkv_retained_blobs')) === 3);
      assert.equal(await metric('mkv_retained_bytes'), 'a1'.length + 'a2'.length + 'b1'.length);
    } finally {
      assert.equal(await stopMaster(master), 0, master.output());
    }
    const kept = await runMkv(['gc', '--db', db, '--dry-run']);
    assert.equal(kept.status, 0, kept.stderr);
    assert.doesNotMatch(kept.stdout, /replaced values/, 'nothing is past the window');
    const givenUp = await runMkv(['gc', '--db', db, '--dry-run', '--retain', '0']);
    assert.equal(givenUp.status, 0, givenUp.stderr);
    assert.match(givenUp.stdout, /would remove the replaced values of \/pit\/a/);
    assert.match(givenUp.stdout, /would remove the replaced values of \/pit\/b/);
  });
});
