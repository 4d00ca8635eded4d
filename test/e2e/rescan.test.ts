// mkv rebuild --scan on volumes laid out by hand exactly as the original minikeyvalue writes
// them, on embedded and on nginx volume servers, with and without subvolumes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { keyToPath, keyToVolumes } from '../../src/placement.js';
import { getFollowing, http } from '../helpers/http.js';
import { assertIndexEqualsReplay } from '../helpers/replay.js';
import { nginxSkipReason, removeDir, runMkv, spawnMaster, startVolumes, stopMaster, tempDir, type VolumeSet } from '../helpers/cluster.js';

const keys = ['/wehave', '/hello', '/???', '/swag-é中', '/a/b/c', '/п', ...Array.from({ length: 40 }, (_, i) => `/gen/${i}`)];

/** Writes a blob where the original would: <volume dir>[/svXX]/XX/YY/<base64>. */
function writeBlob(set: VolumeSet, volume: string, key: string, value: string): string {
  const [host, subvolume] = volume.split('/');
  const file = join(set.dirs[set.volumes.indexOf(host!)]!, subvolume ?? '', keyToPath(key));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, value);
  return file;
}

function rescanSuite(kind: 'embedded' | 'nginx', subvolumes: number, skip: string | false): void {
  describe(`rescan: ${kind} volumes, ${subvolumes} subvolume(s)`, { skip }, () => {
    let set: VolumeSet;
    let db: string;
    const flags = () => ['--volumes', set.volumes.join(','), '--replicas', '3', '--subvolumes', String(subvolumes)];
    before(async () => {
      set = await startVolumes(kind, 4);
      db = tempDir('mkv-rescan-');
      for (const key of keys) {
        for (const volume of keyToVolumes(key, set.volumes, 3, subvolumes)) writeBlob(set, volume, key, `value of ${key}`);
      }
      // Files that are not keys: a stray file, a name that is not base64, a key in the wrong hash directory.
      const root = subvolumes > 1 ? join(set.dirs[0]!, 'sv00') : set.dirs[0]!;
      mkdirSync(join(root, 'ab', 'cd'), { recursive: true });
      writeFileSync(join(root, 'README'), 'not a key');
      writeFileSync(join(root, 'ab', 'cd', '!!!'), 'not base64');
      writeFileSync(join(root, 'ab', 'cd', 'L3dlaGF2ZQ=='), 'the right name in the wrong place');
      // The right name in the right place, of a key this store refuses (another store wrote it).
      const unfit = '/control\u0001character';
      writeBlob(set, keyToVolumes(unfit, set.volumes, 3, subvolumes)[0]!, unfit, 'not a key here');
    });
    after(async () => {
      await set?.close();
      if (db) removeDir(db);
    });

    test('finds every key with its volumes in placement order, and reports what is not a key', async () => {
      const result = await runMkv(['rebuild', '--db', db, '--scan', ...flags()]);
      assert.equal(result.status, 0, result.stderr + result.stdout);
      assert.match(result.stderr, new RegExp(`${keys.length} keys, ${keys.length} recorded as discovered`));
      assert.match(result.stdout, /files that are not keys \(skipped\) \(4\):/);
      assert.match(result.stdout, /\(the key contains a control character\)/);
      assert.match(result.stdout, /README/);
      assert.match(result.stdout, /!!!/);
      const master = await spawnMaster(['--db', db, ...flags()]);
      try {
        for (const key of keys) {
          const path = key.split('/').map(encodeURIComponent).join('/');
          const reply = await http('GET', master.url + path);
          assert.equal(reply.status, 302, key);
          assert.equal(reply.headers['key-volumes'], keyToVolumes(key, set.volumes, 3, subvolumes).join(','), key);
          assert.equal(reply.headers['key-balance'], 'balanced');
          assert.equal((await getFollowing(master.url + path)).text, `value of ${key}`);
        }
        const listed = JSON.parse((await http('GET', `${master.url}/?list`)).text) as { keys: string[] };
        assert.deepEqual(
          listed.keys,
          [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
        );
        const history = JSON.parse((await http('GET', `${master.url}/wehave?history`)).text) as Array<{
          type: string;
          origin: string;
          size: number;
        }>;
        assert.deepEqual(
          history.map((e) => [e.type, e.origin, e.size]),
          [['KeyDiscovered', 'rebuild', 'value of /wehave'.length]],
        );
      } finally {
        await stopMaster(master);
      }
      await assertIndexEqualsReplay(db);
    });

    test('a second rescan records nothing new', async () => {
      const result = await runMkv(['rebuild', '--db', db, '--scan', ...flags()]);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stderr, new RegExp(`${keys.length} keys, 0 recorded as discovered, ${keys.length} unchanged`));
    });

    test('known keys keep md5 and state; moved copies are recorded; lost and deleted keys are reported', async () => {
      let master = await spawnMaster(['--db', db, ...flags()]);
      const value = 'written through the API';
      await http('PUT', `${master.url}/known`, value);
      await http('PUT', `${master.url}/unlinked-known`, 'u');
      await http('UNLINK', `${master.url}/unlinked-known`);
      await http('PUT', `${master.url}/lost`, 'gone');
      await http('PUT', `${master.url}/deleted`, 'd');
      await http('DELETE', `${master.url}/deleted`);
      await stopMaster(master);
      const lostVolumes = keyToVolumes('/lost', set.volumes, 3, subvolumes);
      for (const volume of lostVolumes) rmSync(writeBlob(set, volume, '/lost', ''));
      writeBlob(set, keyToVolumes('/deleted', set.volumes, 3, subvolumes)[0]!, '/deleted', 'd');
      // One copy of /hello is lost, and one sits on a volume placement does not give it.
      const helloVolumes = keyToVolumes('/hello', set.volumes, 3, subvolumes);
      rmSync(writeBlob(set, helloVolumes[1]!, '/hello', ''));
      const elsewhere = set.volumes.find((volume) => !helloVolumes.some((v) => v.startsWith(volume + '/') || v === volume))!;
      const elsewhereName = subvolumes > 1 ? `${elsewhere}/sv00` : elsewhere;
      writeBlob(set, elsewhereName, '/hello', 'value of /hello');

      const result = await runMkv(['rebuild', '--db', db, '--scan', ...flags()]);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /keys the log saw deleted, still on a volume \(not restored\) \(1\):\n {2}\/deleted/);
      assert.match(result.stdout, /keys in the index that no volume holds \(1\):\n {2}\/lost/);

      master = await spawnMaster(['--db', db, ...flags()]);
      try {
        const known = await http('GET', `${master.url}/known`);
        assert.equal(known.headers['content-md5'], createHash('md5').update(value).digest('hex'));
        assert.equal((await http('GET', `${master.url}/unlinked-known`)).status, 404, 'an unlinked key stays unlinked');
        assert.equal((await http('GET', `${master.url}/deleted`)).status, 404, 'a deleted key is not resurrected');
        const hello = await http('GET', `${master.url}/hello`);
        assert.equal(hello.headers['key-volumes'], [helloVolumes[0], helloVolumes[2], elsewhereName].join(','));
        assert.equal(hello.headers['key-balance'], 'unbalanced');
      } finally {
        await stopMaster(master);
      }
      await assertIndexEqualsReplay(db);
    });

    test('a volume that does not answer is a listing error, reported with a non-zero exit', async () => {
      await set.stop(3);
      try {
        const result = await runMkv(['rebuild', '--db', db, '--scan', ...flags()]);
        assert.equal(result.status, 1);
        assert.match(result.stdout, /listing errors \(1\):\n {2}listing http:\/\/127\.0\.0\.1:\d+\/: the volume refused the connection/);
      } finally {
        await set.start(3);
      }
    });
  });
}

rescanSuite('embedded', 10, false);
rescanSuite('embedded', 1, false);
rescanSuite('nginx', 10, nginxSkipReason());
