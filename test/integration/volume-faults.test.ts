// Volume faults: a volume stopped, slow (past --voltimeout), answering 500, or out of disk.
// PUT fails within a bounded time with a clear 5xx and leaves nothing untracked; GET redirects
// to a surviving replica; DELETE leaves the key unlinked and listed; verify --repair restores
// the replication factor once the volume is back.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { keyToPath, keyToVolumes } from '../../src/placement.js';
import { blobsIn } from '../helpers/blobs.js';
import { startFaultyVolume, type FaultyVolume } from '../helpers/faulty-volume.js';
import { getFollowing, http } from '../helpers/http.js';
import { keysInLog } from '../helpers/replay.js';
import { until } from '../helpers/wait.js';
import { removeDir, runMkv, startMaster, startVolumes, tempDir, type TestMaster, type VolumeSet } from '../helpers/cluster.js';

describe('volume faults', () => {
  let set: VolumeSet;
  let faulty: FaultyVolume;
  let faultyDir: string;
  let master: TestMaster;
  let volumes: string[];

  /** Blobs on disk whose key the log never named (invariant 3). */
  async function untracked(): Promise<string[]> {
    const named = await keysInLog(master.db);
    const found: string[] = [];
    for (const dir of [...set.dirs, faultyDir]) {
      for (const blob of blobsIn(dir)) if (blob.key === undefined || !named.has(blob.key)) found.push(blob.file);
    }
    return found;
  }

  before(async () => {
    set = await startVolumes('embedded', 2);
    faultyDir = tempDir('mkv-faulty-');
    faulty = await startFaultyVolume(faultyDir);
    volumes = [...set.volumes, faulty.address];
    master = await startMaster(volumes, { voltimeoutMs: 200, bodyTimeoutMs: 1000, volumeRequestTimeoutMs: 1000 });
  });
  beforeEach(() => {
    faulty.mode = 'ok';
  });
  after(async () => {
    await master?.close();
    await faulty?.close();
    await set?.close();
    if (master) removeDir(master.db);
    removeDir(faultyDir);
  });

  const described = {
    slow: 'that stops answering',
    error: 'answering 500',
    unavailable: 'answering 503 to everything',
    full: 'whose disk is full',
  };
  for (const mode of ['slow', 'error', 'unavailable', 'full'] as const) {
    // A volume that stalls fails a request at the master's volume deadline; a hang instead ends
    // the test at its timeout (how fast is the benchmarks' business, not a test's).
    test(`a volume ${described[mode]}: PUT fails clean, GET finds a survivor`, { timeout: 120_000 }, async () => {
      const existing = `/faults/${mode}/existing`;
      assert.equal((await http('PUT', master.url + existing, 'written before the fault')).status, 201);
      faulty.mode = mode;
      const put = await http('PUT', `${master.url}/faults/${mode}/new`, Buffer.alloc(256 * 1024, 1));
      assert.equal(put.status, 500, put.text);
      assert.match(put.text, /^MKV_VOLUME_FAILED: a volume failed to serve this request/);
      assert.doesNotMatch(put.text, /127\.0\.0\.1|\/faults\/|==/, "neither the volume's address nor the blob's path");
      assert.equal((await http('GET', `${master.url}/faults/${mode}/new`)).status, 404);
      // Replicas are tried in random order: often enough that the faulty one comes first.
      for (let i = 0; i < 12; i++) {
        const get = await getFollowing(master.url + existing);
        assert.equal(get.text, 'written before the fault', `GET ${i}: ${get.status}`);
      }
      assert.deepEqual(await untracked(), [], 'every blob on a volume is named by the log');
      faulty.mode = 'ok';
      assert.equal((await http('PUT', `${master.url}/faults/${mode}/new`, 'after the fault')).status, 201, 'the retry works');
      assert.equal((await getFollowing(`${master.url}/faults/${mode}/new`)).text, 'after the fault');
    });
  }

  test('DELETE with a volume answering 500: 500, the key unlinked and listed; DELETE again once it is back', async () => {
    const key = '/faults/delete';
    await http('PUT', master.url + key, 'x');
    faulty.mode = 'error';
    const reply = await http('DELETE', master.url + key);
    assert.equal(reply.status, 500);
    assert.match(reply.text, /^MKV_VOLUME_FAILED: a volume failed to serve this request/);
    assert.ok((JSON.parse((await http('GET', `${master.url}/faults/?unlinked`)).text) as { keys: string[] }).keys.includes(key));
    faulty.mode = 'ok';
    assert.equal((await http('DELETE', master.url + key)).status, 204);
  });

  test('DELETE that times out on a stalled volume, which removes its copy later: the key is never linked again; DELETE finishes it', async () => {
    const key = '/faults/stalled-delete';
    assert.equal((await http('PUT', master.url + key, 'doomed')).status, 201);
    faulty.mode = 'slow';
    faulty.delayMs = 1500; // past the master's 1 s volume timeout; then the volume does the DELETE
    const reply = await http('DELETE', master.url + key);
    assert.equal(reply.status, 500, reply.text);
    await until('the stalled volume to do the DELETE it held', () => faulty.holding === 0);
    faulty.mode = 'ok';
    const link = await http('LINK', master.url + key);
    assert.equal(link.status, 409, 'LINK of a key whose DELETE began');
    assert.match(link.text, /^MKV_DELETING: /);
    assert.equal((await http('PUT', master.url + key, 'again')).status, 409, 'nor written over: a late removal would take the new copy');
    assert.equal((await http('GET', master.url + key)).status, 404);
    assert.ok(
      (JSON.parse((await http('GET', `${master.url}/faults/?unlinked`)).text) as { keys: string[] }).keys.includes(key),
      'listed with the unlinked',
    );
    assert.equal((await http('DELETE', master.url + key)).status, 204, 'DELETE again finishes it');
    const history = (JSON.parse((await http('GET', `${master.url}${key}?history`)).text) as Array<{ type: string }>).map(
      (event) => event.type,
    );
    assert.deepEqual(history, ['WriteStarted', 'WriteCommitted', 'DeleteStarted', 'KeyDeleted']);
    assert.equal((await http('PUT', master.url + key, 'new life')).status, 201);
    assert.equal((await getFollowing(master.url + key)).text, 'new life');
  });

  test('a volume that comes back empty: verify reports it, verify --repair restores every replica', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `/faults/repair/${i}`);
    for (const key of keys) assert.equal((await http('PUT', master.url + key, `value of ${key}`)).status, 201);
    await master.close();
    faulty.dropHeld(); // the disk was replaced: nothing queued on the old one runs
    rmSync(faultyDir, { recursive: true, force: true });
    const check = await runMkv(['verify', '--db', master.db]);
    assert.equal(check.status, 1);
    assert.match(check.stdout, /^missing \/faults\/repair\/\d+ on 127\.0\.0\.1:\d+\/sv[0-9A-F]{2}: not on the volume$/m);
    const repair = await runMkv(['verify', '--db', master.db, '--repair']);
    assert.equal(repair.status, 0, repair.stdout + repair.stderr);
    for (const key of keys) {
      for (const volume of keyToVolumes(key, volumes, 3, 10)) {
        const [host, subvolume] = volume.split('/');
        const dir = host === faulty.address ? faultyDir : set.dirs[set.volumes.indexOf(host!)]!;
        assert.ok(existsSync(join(dir, subvolume!, keyToPath(key))), `${key} on ${volume}`);
      }
    }
    const deep = await runMkv(['verify', '--db', master.db, '--deep']);
    assert.equal(deep.status, 0, deep.stdout + deep.stderr);
    master = await startMaster(volumes, { voltimeoutMs: 200, bodyTimeoutMs: 1000, volumeRequestTimeoutMs: 1000 }, { db: master.db });
  });
});
