// Faults of the master's own disks: the log's disk full or read-only (a real tmpfs mounted
// under the db), and the LMDB index deleted or damaged.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import avro from 'avsc';
import { open as openLmdb } from 'lmdb';
import { UNSYNCED_MARKER } from '../../src/index/index-store.js';
import { decodeRecord } from '../../src/index/record.js';
import { listSegments } from '../../src/log/segments.js';
import { indexDir, logDir } from '../../src/db/paths.js';
import { getFollowing, http } from '../helpers/http.js';
import { assertIndexEqualsReplay } from '../helpers/replay.js';
import {
  removeDir,
  repoRoot,
  runMkv,
  spawnMaster,
  startVolumes,
  stopMaster,
  tempDir,
  type MkvProcess,
  type VolumeSet,
} from '../helpers/cluster.js';

function mount(args: string[]): boolean {
  return spawnSync('mount', args, { stdio: 'ignore' }).status === 0;
}

function canChattr(): string | false {
  const probe = join(tempDir('mkv-chattr-probe-'), 'f');
  writeFileSync(probe, 'x');
  const ok = spawnSync('chattr', ['+i', probe]).status === 0;
  spawnSync('chattr', ['-i', probe]);
  removeDir(join(probe, '..'));
  return ok ? false : 'chattr +i needs root and a file system that has the immutable flag';
}

function canMountTmpfs(): string | false {
  const probe = tempDir('mkv-mount-probe-');
  const ok = mount(['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]);
  if (ok) spawnSync('umount', [probe]);
  removeDir(probe);
  return ok ? false : 'mounting a tmpfs needs root (the log-disk tests use a real small file system)';
}

describe('master faults', () => {
  let set: VolumeSet;
  let db: string;
  let master: MkvProcess | undefined;
  const values = new Map<string, string>();

  async function start(): Promise<MkvProcess> {
    master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db]);
    return master;
  }
  async function stop(): Promise<void> {
    await stopMaster(master!);
    master = undefined;
  }
  async function assertAllServed(url: string): Promise<void> {
    for (const [key, value] of values) assert.equal((await getFollowing(url + key)).text, value, key);
  }

  before(async () => {
    set = await startVolumes('embedded', 3);
    db = tempDir('mkv-faults-');
  });
  after(async () => {
    if (master) master.child.kill('SIGKILL');
    await set?.close();
    if (db) removeDir(db);
  });

  /** Runs `body` with the db's log on a fresh tmpfs of `size` (its contents carried over and back). */
  async function withLogOnTmpfs(size: string, body: () => Promise<void>): Promise<void> {
    const saved = join(db, 'log-saved');
    mkdirSync(logDir(db), { recursive: true });
    spawnSync('sh', ['-c', `rm -rf ${saved} && cp -a ${logDir(db)} ${saved}`]);
    assert.ok(mount(['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', logDir(db)]));
    try {
      spawnSync('sh', ['-c', `cp -a ${saved}/. ${logDir(db)}/`]);
      await body();
      spawnSync('sh', ['-c', `rm -rf ${saved} && cp -a ${logDir(db)} ${saved} && rm -f ${saved}/filler`]);
    } finally {
      if (master) await stop();
      spawnSync('umount', [logDir(db)]);
      spawnSync('sh', ['-c', `cp -a ${saved}/. ${logDir(db)}/ && rm -rf ${saved}`]);
    }
  }

  test('the log disk fills up: writes answer 507, reads go on, writes resume when space returns', { skip: canMountTmpfs() }, async () => {
    await withLogOnTmpfs('256k', async () => {
      const { url } = await start();
      for (let i = 0; i < 10; i++) {
        assert.equal((await http('PUT', `${url}/full/${i}`, `value ${i}`)).status, 201);
        values.set(`/full/${i}`, `value ${i}`);
      }
      // Fill the file system; a few appends may still fit in the file's last allocated page.
      const filler = join(logDir(db), 'filler');
      spawnSync('sh', ['-c', `dd if=/dev/zero of=${filler} bs=1k count=1000 2>/dev/null; true`]);
      let refused = await http('PUT', `${url}/full/fits-0`, 'fits');
      for (let i = 1; refused.status === 201 && i < 200; i++) {
        values.set(`/full/fits-${i - 1}`, 'fits');
        refused = await http('PUT', `${url}/full/fits-${i}`, 'fits');
      }
      assert.equal(refused.status, 507, refused.text);
      assert.match(refused.text, /MKV_LOG_FULL: the log's disk is full/);
      for (let i = 0; i < 5; i++) assert.equal((await http('PUT', `${url}/full/refused-${i}`, 'no room')).status, 507);
      await assertAllServed(url);
      assert.equal((await http('GET', `${url}/full/refused-0`)).status, 404, 'a refused write left nothing');
      rmSync(filler);
      assert.equal((await http('PUT', `${url}/full/refused-0`, 'room again')).status, 201);
      values.set('/full/refused-0', 'room again');
      await stop();
      const verified = await runMkv(['log', 'verify', '--db', db]);
      assert.equal(verified.status, 0, 'nothing corrupted: ' + JSON.stringify(verified));
      await assertIndexEqualsReplay(db);
      const again = await start();
      await assertAllServed(again.url);
      await stop();
    });
  });

  test(
    'the log cannot be written (its file made immutable): writes answer 503, reads go on, writes resume',
    { skip: canChattr() },
    async () => {
      const { url, output } = await start();
      assert.equal((await http('PUT', `${url}/ro/before`, 'b')).status, 201);
      values.set('/ro/before', 'b');
      const newest = listSegments(logDir(db)).at(-1)!.path;
      assert.equal(spawnSync('chattr', ['+i', newest]).status, 0);
      try {
        const refused = await http('PUT', `${url}/ro/x`, 'nope');
        assert.equal(refused.status, 503, refused.text);
        assert.equal(refused.text, "MKV_LOG_UNAVAILABLE: the event log cannot be written now (the master's log says why)\n");
        assert.match(output(), /the log cannot be written \(EPERM\)/, 'the operator is told why');
        assert.equal((await http('UNLINK', `${url}/ro/before`)).status, 503);
        await assertAllServed(url);
      } finally {
        spawnSync('chattr', ['-i', newest]);
      }
      assert.equal((await http('PUT', `${url}/ro/x`, 'yes')).status, 201);
      values.set('/ro/x', 'yes');
      await stop();
      assert.equal((await runMkv(['log', 'verify', '--db', db])).status, 0);
      await assertIndexEqualsReplay(db);
    },
  );

  test('the index deleted: the master replays the log into a new one', async () => {
    let { url } = await start();
    for (let i = 0; i < 20; i++) {
      assert.equal((await http('PUT', `${url}/idx/${i}`, `v${i}`)).status, 201);
      values.set(`/idx/${i}`, `v${i}`);
    }
    await http('UNLINK', `${url}/idx/0`);
    values.delete('/idx/0');
    await stop();
    removeDir(indexDir(db));
    ({ url } = await start());
    await assertAllServed(url);
    assert.equal((await http('GET', `${url}/idx/0`)).status, 404);
    assert.ok((JSON.parse((await http('GET', `${url}/idx/?unlinked`)).text) as { keys: string[] }).keys.includes('/idx/0'));
    await stop();
    await assertIndexEqualsReplay(db);
  });

  test('the index damaged: set aside and rebuilt from the log, never served', async () => {
    const data = join(indexDir(db), 'data.mdb');
    const bytes = readFileSync(data);
    randomBytes(8192).copy(bytes, 0);
    writeFileSync(data, bytes);
    const { url, output } = await start();
    assert.match(output(), /the index is damaged: set aside, rebuilding it from the log/);
    await assertAllServed(url);
    await stop();
    assert.ok(
      readdirSync(db).some((name) => name.startsWith('index-damaged-')),
      'the damaged index is kept for inspection',
    );
    await assertIndexEqualsReplay(db);
  });

  // The index is written without fsync (the log is the durable copy): a kill -9 loses nothing
  // the page cache holds, but a crash of the machine may tear it, and LMDB cannot tell.
  test('kill -9 of the master: the index of this boot is kept and caught up, not rebuilt', async () => {
    const asideBefore = readdirSync(db).filter((name) => name.startsWith('index-damaged-')).length;
    const { url } = await start();
    for (let i = 0; i < 10; i++) {
      assert.equal((await http('PUT', `${url}/kill/${i}`, `k${i}`)).status, 201);
      values.set(`/kill/${i}`, `k${i}`);
    }
    master!.child.kill('SIGKILL');
    await master!.exited;
    master = undefined;
    assert.ok(existsSync(join(indexDir(db), UNSYNCED_MARKER)), 'a killed master leaves its index marked unsynced');
    const restarted = await start();
    assert.doesNotMatch(restarted.output(), /set aside/);
    await assertAllServed(restarted.url);
    await stop();
    assert.equal(existsSync(join(indexDir(db), UNSYNCED_MARKER)), false, 'a clean stop syncs the index and removes the marker');
    assert.equal(readdirSync(db).filter((name) => name.startsWith('index-damaged-')).length, asideBefore);
    await assertIndexEqualsReplay(db);
  });

  test('an index of the earlier format (msgpack records, no format in meta): set aside and rebuilt from the log', async () => {
    // Rewrite the index as format 1 wrote it: each record as lmdb-js's msgpack.
    const env = openLmdb({ path: indexDir(db), maxDbs: 4 });
    const binary = env.openDB<Buffer, Buffer>({ name: 'keys', keyEncoding: 'binary', encoding: 'binary' });
    const msgpack = env.openDB({ name: 'keys', keyEncoding: 'binary' });
    const meta = env.openDB({ name: 'meta' });
    const records = [...binary.getRange({})].map(({ key, value }) => [key, decodeRecord(value)] as const);
    assert.ok(records.length > 0);
    await env.transaction(() => {
      for (const [key, record] of records) void msgpack.put(key, record);
      void meta.remove('format');
    });
    await env.close();
    const history = await runMkv(['history', '--db', db, '/kill/0']);
    assert.notEqual(history.status, 0, 'a tool refuses to read an index of another format');
    assert.match(history.stderr, /MKV_INDEX_FORMAT|has format 1/);
    const { url, output } = await start();
    assert.match(output(), /has format 1, this version reads format 4/);
    assert.match(output(), /set aside, rebuilding it from the log/);
    await assertAllServed(url);
    await stop();
    await assertIndexEqualsReplay(db);
  });

  test("an index whose history rows an earlier event schema wrote: set aside and rebuilt, every key's history read whole", async () => {
    // Rewrite the history rows as the build before Cause.who wrote them, and its meta (no "events").
    const past = avro.Type.forSchema(
      JSON.parse(readFileSync(join(repoRoot, 'schemas/past/event.2026-12-05.5061fdc.avsc'), 'utf8')) as avro.Schema,
    );
    const current = avro.Type.forSchema(JSON.parse(readFileSync(join(repoRoot, 'schemas/event.avsc'), 'utf8')) as avro.Schema);
    const env = openLmdb({ path: indexDir(db), maxDbs: 4 });
    const history = env.openDB<Buffer, Buffer>({ name: 'history', keyEncoding: 'binary', encoding: 'binary' });
    const meta = env.openDB({ name: 'meta' });
    const rows = [...history.getRange({})].map(({ key, value }) => [key, current.fromBuffer(value) as Record<string, unknown>] as const);
    assert.ok(rows.length > 0);
    await env.transaction(() => {
      for (const [key, event] of rows) void history.put(key, past.toBuffer(event));
      void meta.remove('events');
    });
    await env.close();
    const tool = await runMkv(['history', '--db', db, '/kill/0']);
    assert.notEqual(tool.status, 0, 'a tool refuses rows it would misread');
    assert.match(tool.stderr, /holds events of an earlier schema/);
    const { url, output } = await start();
    assert.match(output(), /holds events of an earlier schema/);
    assert.match(output(), /set aside, rebuilding it from the log/);
    await assertAllServed(url);
    const shown = JSON.parse((await http('GET', `${url}/kill/0?history`)).text) as Array<{ type: string; origin: string }>;
    assert.deepEqual(
      shown.map((event) => [event.type, event.origin]),
      [
        ['WriteStarted', 'api'],
        ['WriteCommitted', 'api'],
      ],
    );
    await stop();
    await assertIndexEqualsReplay(db);
  });

  test('the index left unsynced by an earlier boot of the machine: set aside and rebuilt from the log', async () => {
    writeFileSync(join(indexDir(db), UNSYNCED_MARKER), '00000000-0000-0000-0000-000000000000\n');
    const history = await runMkv(['history', '--db', db, '/kill/0']);
    assert.notEqual(history.status, 0, 'a tool refuses to read a torn index');
    assert.match(history.stderr, /MKV_INDEX_TORN|machine restarted/);
    const { url, output } = await start();
    assert.match(output(), /the machine restarted while the index was open without fsync/);
    assert.match(output(), /set aside, rebuilding it from the log/);
    await assertAllServed(url);
    await stop();
    await assertIndexEqualsReplay(db);
  });
});
