// Rebalance (3 → 4 → 3 volumes), POST ?rebalance, and verify/repair, on real volume servers.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { keyToPath, keyToVolumes } from '../../src/placement.js';
import { blobsIn } from '../helpers/blobs.js';
import { getFollowing, http } from '../helpers/http.js';
import { assertIndexEqualsReplay } from '../helpers/replay.js';
import {
  nginxSkipReason,
  removeDir,
  runMkv,
  spawnMaster,
  startVolumes,
  stopMaster,
  tempDir,
  type MkvProcess,
  type VolumeSet,
} from '../helpers/cluster.js';

const md5 = (data: Buffer | string) => createHash('md5').update(data).digest('hex');

/** Every blob on disk, as "volume/svXX key". */
function blobsOnDisk(set: VolumeSet): Set<string> {
  return new Set(set.dirs.flatMap((dir, i) => blobsIn(dir).map((blob) => `${set.volumes[i]}/${blob.subvolume} ${blob.key}`)));
}

function fileOf(set: VolumeSet, volume: string, key: string): string {
  const [host, subvolume] = volume.split('/');
  return join(set.dirs[set.volumes.indexOf(host!)]!, subvolume!, keyToPath(key));
}

function rebalanceSuite(kind: 'embedded' | 'nginx', skip: string | false): void {
  describe(`rebalance and verify on ${kind} volumes`, { skip }, () => {
    let set: VolumeSet;
    let db: string;
    const values = new Map<string, Buffer>();
    const unlinked = new Set<string>();
    const three = () => set.volumes.slice(0, 3);

    function assertPlacement(volumes: string[]): void {
      const expected = new Set<string>();
      for (const key of values.keys()) for (const volume of keyToVolumes(key, volumes, 3, 10)) expected.add(`${volume} ${key}`);
      assert.deepEqual([...blobsOnDisk(set)].sort(), [...expected].sort(), 'every blob where placement says, nowhere else');
      for (const [key, value] of values) {
        for (const volume of keyToVolumes(key, volumes, 3, 10)) assert.equal(md5(readFileSync(fileOf(set, volume, key))), md5(value));
      }
    }

    async function serve(volumes: string[]): Promise<MkvProcess> {
      return spawnMaster(['--db', db, '--volumes', volumes.join(',')]);
    }

    before(async () => {
      set = await startVolumes(kind, 4);
      db = tempDir('mkv-rebalance-');
      const master = await serve(three());
      for (let i = 0; i < 40; i++) {
        const key = `/move/${i}`;
        const value = randomBytes(i % 10 === 0 ? 1 << 20 : 100 + i * 37);
        values.set(key, value);
        assert.equal((await http('PUT', master.url + key, value)).status, 201);
      }
      for (const i of [3, 7]) {
        assert.equal((await http('UNLINK', `${master.url}/move/${i}`)).status, 204);
        unlinked.add(`/move/${i}`);
      }
      await stopMaster(master);
    });
    after(async () => {
      await set?.close();
      if (db) removeDir(db);
    });

    test('3 → 4 volumes: every blob moves where placement says, content and Content-Md5 unchanged', async () => {
      // First what it would do, doing nothing: the same counts the move then reports.
      const dry = await runMkv(['rebalance', '--db', db, '--volumes', set.volumes.join(','), '--dry-run']);
      assert.equal(dry.status, 0, dry.stderr + dry.stdout);
      const planned = /^would move (\d+) of 40 keys: (\d+) copies/.exec(dry.stdout);
      assert.ok(planned && Number(planned[1]) > 0, dry.stdout);
      assertPlacement(three());
      const result = await runMkv(['rebalance', '--db', db, '--volumes', set.volumes.join(',')]);
      assert.equal(result.status, 0, result.stderr + result.stdout);
      assert.match(result.stderr, new RegExp(`rebalanced 40 keys .* moved ${planned[1]} \\(${planned[2]} copies`));
      assertPlacement(set.volumes);
      const master = await serve(set.volumes);
      try {
        for (const [key, value] of values) {
          const reply = await http('GET', master.url + key);
          if (unlinked.has(key)) {
            assert.equal(reply.status, 404, 'an unlinked key stays unlinked, its blob moved with it');
            continue;
          }
          assert.equal(reply.status, 302);
          assert.equal(reply.headers['key-balance'], 'balanced');
          assert.equal(reply.headers['content-md5'], md5(value));
          assert.equal(md5((await getFollowing(master.url + key)).body), md5(value));
        }
        const moved = [...values.keys()].find(
          (key) => keyToVolumes(key, set.volumes, 3, 10).join() !== keyToVolumes(key, three(), 3, 10).join(),
        )!;
        const history = JSON.parse((await http('GET', `${master.url}${moved}?history`)).text) as Array<{
          type: string;
          origin: string;
          volumes: string[];
        }>;
        assert.deepEqual(
          { type: history.at(-1)!.type, origin: history.at(-1)!.origin, volumes: history.at(-1)!.volumes },
          { type: 'KeyRelocated', origin: 'rebalance', volumes: keyToVolumes(moved, set.volumes, 3, 10) },
        );
      } finally {
        await stopMaster(master);
      }
    });

    test('a second run finds nothing to move', async () => {
      const result = await runMkv(['rebalance', '--db', db, '--volumes', set.volumes.join(',')]);
      assert.equal(result.status, 0);
      assert.match(result.stderr, /moved 0 .* already balanced 40, failed 0/);
    });

    test('4 → 3 volumes with a target down: failures reported, exit 1; the re-run finishes the job', async () => {
      await set.stop(1);
      try {
        const result = await runMkv(['rebalance', '--db', db, '--volumes', three().join(','), '--voltimeout', '300ms']);
        assert.equal(result.status, 1);
        assert.match(result.stdout, /failed \/move\/\d+: /);
      } finally {
        await set.start(1);
      }
      const again = await runMkv(['rebalance', '--db', db, '--volumes', three().join(',')]);
      assert.equal(again.status, 0, again.stdout + again.stderr);
      assertPlacement(three());
      await assertIndexEqualsReplay(db);
    });

    test('POST /key?rebalance moves one key on a running server: 204, 404 for a missing key', async () => {
      const master = await serve(set.volumes);
      try {
        const key = [...values.keys()].find(
          (k) => !unlinked.has(k) && keyToVolumes(k, set.volumes, 3, 10).join() !== keyToVolumes(k, three(), 3, 10).join(),
        )!;
        assert.equal((await http('GET', master.url + key)).headers['key-balance'], 'unbalanced');
        assert.equal((await http('POST', `${master.url}${key}?rebalance`)).status, 204);
        const reply = await http('GET', master.url + key);
        assert.equal(reply.headers['key-balance'], 'balanced');
        assert.equal(reply.headers['key-volumes'], keyToVolumes(key, set.volumes, 3, 10).join(','));
        assert.equal(md5((await getFollowing(master.url + key)).body), md5(values.get(key)!));
        for (const volume of keyToVolumes(key, three(), 3, 10)) {
          if (!keyToVolumes(key, set.volumes, 3, 10).includes(volume))
            assert.ok(!existsSync(fileOf(set, volume, key)), 'the old copy is gone');
        }
        assert.equal((await http('POST', `${master.url}/no/such/key?rebalance`)).status, 404);
        assert.equal((await http('POST', `${master.url}${key}?frobnicate`)).status, 403);
      } finally {
        await stopMaster(master);
      }
      const back = await runMkv(['rebalance', '--db', db, '--volumes', three().join(',')]);
      assert.equal(back.status, 0);
    });

    test('verify finds a replica deleted by hand and --repair restores it', async () => {
      const key = '/move/5';
      const [victim] = keyToVolumes(key, three(), 3, 10);
      rmSync(fileOf(set, victim!, key));
      const check = await runMkv(['verify', '--db', db]);
      assert.equal(check.status, 1);
      assert.match(check.stdout, new RegExp(`missing /move/5 on ${victim!.replace(/[.]/g, '\\.')}`));
      const repair = await runMkv(['verify', '--db', db, '--repair']);
      assert.equal(repair.status, 0, repair.stdout + repair.stderr);
      assert.match(repair.stdout, /— repaired/);
      assert.equal(md5(readFileSync(fileOf(set, victim!, key))), md5(values.get(key)!));
      const after = await runMkv(['verify', '--db', db]);
      assert.equal(after.status, 0);
      assert.match(after.stderr, /verified 40 keys/, 'a repaired key stays in the index');
      const master = await serve(three());
      try {
        assert.equal(md5((await getFollowing(master.url + key)).body), md5(values.get(key)!), 'and is served');
      } finally {
        await stopMaster(master);
      }
    });

    test('verify --deep finds a flipped byte that a size check cannot, and --repair rewrites it', async () => {
      const key = '/move/10';
      const [victim] = keyToVolumes(key, three(), 3, 10);
      const file = fileOf(set, victim!, key);
      const bytes = readFileSync(file);
      bytes[1000]! ^= 0x01;
      writeFileSync(file, bytes);
      assert.equal((await runMkv(['verify', '--db', db])).status, 0, 'same size: a shallow check passes');
      const deep = await runMkv(['verify', '--db', db, '--deep']);
      assert.equal(deep.status, 1);
      assert.match(deep.stdout, /corrupt \/move\/10 on .*: md5 [0-9a-f]{32}, the index says/);
      const repair = await runMkv(['verify', '--db', db, '--deep', '--repair']);
      assert.equal(repair.status, 0, repair.stdout);
      assert.equal(md5(readFileSync(file)), md5(values.get(key)!));
      const history = await runMkv(['history', '--db', db, key]);
      assert.match(history.stdout, /ReplicaRepaired\tvolume=\S+ source=\S+\tby repair/);
      await assertIndexEqualsReplay(db);
    });
  });
}

rebalanceSuite('embedded', false);
rebalanceSuite('nginx', nginxSkipReason());
