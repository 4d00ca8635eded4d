// copyToTargets: one GET of a source teed into a PUT per target, on real volume servers.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { keyRecord, type KeyRecord } from '../../src/index/evolve.js';
import { copyToTargets } from '../../src/keys/replicas.js';
import { moveLockedKey } from '../../src/keys/rebalance-key.js';
import { openStore } from '../../src/db/store.js';
import { keyToPath } from '../../src/placement.js';
import { VolumeClient } from '../../src/volumes/client.js';
import { freePort, removeDir, startVolumes, tempDir, type VolumeSet } from '../helpers/cluster.js';

const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

describe('copying a blob to several targets with one read', () => {
  let set: VolumeSet;
  let client: VolumeClient;
  before(async () => {
    set = await startVolumes('embedded', 3);
    client = new VolumeClient({ requestTimeoutMs: 5000 });
  });
  after(async () => {
    await client?.close();
    await set?.close();
  });

  const fileOn = (volume: number, key: string) => join(set.dirs[volume]!, keyToPath(key));
  /** Puts `value` on volume 0 by hand and returns the record the index would hold for it. */
  function seed(key: string, value: Buffer, recorded = value): KeyRecord {
    mkdirSync(dirname(fileOn(0, key)), { recursive: true });
    writeFileSync(fileOn(0, key), value);
    return keyRecord({ state: 'live', volumes: [set.volumes[0]!], size: recorded.length, md5: md5(recorded), seq: 1, time: Date.now() });
  }

  test('every target gets the bytes of one GET, large enough to need backpressure', async () => {
    const value = randomBytes(3 << 20);
    const record = seed('/tee/big', value);
    const results = await copyToTargets(client, set.volumes[0]!, [set.volumes[1]!, set.volumes[2]!], keyToPath('/tee/big'), record);
    assert.deepEqual(results, [
      { target: set.volumes[1], ok: true, bytes: value.length },
      { target: set.volumes[2], ok: true, bytes: value.length },
    ]);
    for (const volume of [1, 2]) assert.equal(md5(readFileSync(fileOn(volume, '/tee/big'))), md5(value));
  });

  test('a source whose bytes do not match the index (same size): no target keeps a copy', async () => {
    const value = randomBytes(100_000);
    const flipped = Buffer.from(value);
    flipped[5000] = flipped[5000]! ^ 0xff;
    const record = seed('/tee/flipped', flipped, value);
    const results = await copyToTargets(client, set.volumes[0]!, [set.volumes[1]!, set.volumes[2]!], keyToPath('/tee/flipped'), record);
    assert.equal(results.length, 2);
    for (const result of results) {
      assert.equal(result.ok, false);
      assert.equal((result as { fault: string }).fault, 'source');
      assert.match((result as { reason: string }).reason, /copied md5 [0-9a-f]{32}, the index says/);
    }
    for (const volume of [1, 2])
      assert.equal(existsSync(fileOn(volume, '/tee/flipped')), false, `volume ${volume} must not keep the bad copy`);
  });

  test('a target that is down fails alone; the other gets a whole copy', async () => {
    const value = randomBytes(2 << 20);
    const record = seed('/tee/one-down', value);
    const nobody = `127.0.0.1:${await freePort()}`;
    const results = await copyToTargets(client, set.volumes[0]!, [nobody, set.volumes[2]!], keyToPath('/tee/one-down'), record);
    assert.equal(results[0]!.ok, false);
    assert.equal((results[0] as { fault: string }).fault, 'target', 'another source would not help');
    assert.match((results[0] as { reason: string }).reason, new RegExp(nobody.replace(/[.]/g, '\\.')));
    assert.deepEqual(results[1], { target: set.volumes[2], ok: true, bytes: value.length });
    assert.equal(md5(readFileSync(fileOn(2, '/tee/one-down'))), md5(value));
  });

  test("a source without the blob: every target fails with the GET's answer", async () => {
    const record: KeyRecord = keyRecord({ state: 'live', volumes: [set.volumes[0]!], size: 10, seq: 1, time: Date.now() });
    const results = await copyToTargets(client, set.volumes[0]!, [set.volumes[1]!], keyToPath('/tee/nowhere'), record);
    assert.deepEqual(results, [
      {
        target: set.volumes[1],
        ok: false,
        fault: 'source',
        reason: `GET http://${set.volumes[0]}${keyToPath('/tee/nowhere')} answered 404`,
      },
    ]);
  });

  test('rebalance refills a replica that stays but was lost, from a source that goes, with one GET', async () => {
    const key = '/tee/rebalanced';
    const value = randomBytes(200_000);
    const [v0, v1, v2] = set.volumes as [string, string, string];
    const db = tempDir('mkv-replicas-');
    const store = await openStore(db, { sync: 'none' });
    try {
      const cause = { origin: 'api', client: null };
      await store.writer.append([
        { key, cause, change: { type: 'WriteStarted', volumes: [v0, v1] } },
        { key, cause, change: { type: 'WriteCommitted', volumes: [v0, v1], size: value.length, md5: md5(value) } },
      ]);
      // Only v0, which leaves the placement, still holds the blob; v1 stays but lost its copy.
      seed(key, value);
      const outcome = await moveLockedKey(
        key,
        store.index.get(key)!,
        { volumes: [v1, v2], replicas: 2, subvolumes: 1 },
        client,
        store.writer,
        { origin: 'rebalance', client: null },
      );
      assert.equal(outcome.status, 'moved', JSON.stringify(outcome));
      assert.deepEqual({ ...outcome, seq: 0 }, { status: 'moved', copies: 2, bytes: 2 * value.length, staleLeft: [], seq: 0 });
      for (const volume of [1, 2]) assert.equal(md5(readFileSync(fileOn(volume, key))), md5(value));
      assert.equal(existsSync(fileOn(0, key)), false, 'the copy that left the placement is deleted');
      assert.deepEqual([...store.index.get(key)!.volumes].sort(), [v1, v2].sort());
    } finally {
      await store.close();
      removeDir(db);
    }
  });
});
