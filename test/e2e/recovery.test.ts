// Recovery, time travel and audit, through the CLI: replay, point-in-time dbs served read-only,
// log verify and dump, history, restore.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { IndexStore } from '../../src/index/index-store.js';
import { listSegments } from '../../src/log/segments.js';
import { indexDir, logDir } from '../../src/db/paths.js';
import { getFollowing, http } from '../helpers/http.js';
import { assertIndexEqualsReplay } from '../helpers/replay.js';
import { removeDir, runMkv, spawnMaster, startVolumes, stopMaster, tempDir, type MkvProcess, type VolumeSet } from '../helpers/cluster.js';
import { instantBetween } from '../helpers/wait.js';

interface Snapshot {
  live: string[];
  unlinked: string[];
  heads: Record<string, { md5: string | undefined; volumes: string | undefined }>;
}

async function snapshot(url: string): Promise<Snapshot> {
  const live = (JSON.parse((await http('GET', `${url}/?list`)).text) as { keys: string[] }).keys;
  const unlinked = (JSON.parse((await http('GET', `${url}/?unlinked`)).text) as { keys: string[] }).keys;
  const heads: Snapshot['heads'] = {};
  for (const key of live) {
    const reply = await http('HEAD', url + encodeURI(key));
    heads[key] = { md5: reply.headers['content-md5'], volumes: reply.headers['key-volumes'] };
  }
  return { live, unlinked, heads };
}

async function stop(master: MkvProcess): Promise<void> {
  assert.equal(await stopMaster(master), 0, master.output());
}

describe('recovery and time travel', () => {
  let set: VolumeSet;
  let db: string;
  const scratch: string[] = [];
  let master: MkvProcess;
  let atN: Snapshot;
  let seqN: number;
  let timeN: string;
  let final: Snapshot;

  before(async () => {
    set = await startVolumes('embedded', 3);
    db = tempDir('mkv-recovery-');
    // Small segments, so the log has several and point-in-time cuts land inside one.
    master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db, '--segment-size', '4096']);
    const url = master.url;
    for (let i = 0; i < 30; i++) assert.equal((await http('PUT', `${url}/pit/${i}`, `value ${i}`)).status, 201);
    for (let i = 0; i < 5; i++) assert.equal((await http('UNLINK', `${url}/pit/${i}`)).status, 204);
    for (let i = 5; i < 10; i++) assert.equal((await http('DELETE', `${url}/pit/${i}`)).status, 204);
    await set.stop(0);
    assert.equal((await http('PUT', `${url}/pit/failed`, 'never')).status, 500);
    await set.start(0);
    assert.equal((await http('LINK', `${url}/pit/0`)).status, 204);
    atN = await snapshot(url);
    const lastKeyHistory = JSON.parse((await http('GET', `${url}/pit/0?history`)).text) as Array<{ seq: number }>;
    seqN = lastKeyHistory.at(-1)!.seq;
    timeN = await instantBetween();
    // After N: more of everything.
    for (let i = 10; i < 15; i++) assert.equal((await http('DELETE', `${url}/pit/${i}`)).status, 204);
    for (let i = 30; i < 40; i++) assert.equal((await http('PUT', `${url}/pit/${i}`, `later ${i}`)).status, 201);
    assert.equal((await http('UNLINK', `${url}/pit/20`)).status, 204);
    final = await snapshot(url);
  });
  after(async () => {
    if (master && master.child.exitCode === null) master.child.kill('SIGKILL');
    await set?.close();
    for (const dir of [db, ...scratch]) if (dir) removeDir(dir);
  });

  test('a rebuild in place refuses while the master runs', async () => {
    const result = await runMkv(['rebuild', '--db', db, '--from-log']);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /in use by process/);
  });

  test('a point-in-time rebuild refuses to overwrite the live db (no --into)', async () => {
    const result = await runMkv(['rebuild', '--db', db, '--from-log', '--until-seq', String(seqN)]);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /--into/);
  });

  for (const how of ['--until-seq', '--until'] as const) {
    test(`${how}: a separate db as it was at seq N, served read-only`, async () => {
      const out = join(tempDir('mkv-pit-'), 'out');
      scratch.push(out);
      const result = await runMkv(['rebuild', '--db', db, '--from-log', how, how === '--until' ? timeN : String(seqN), '--into', out]);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`up to seq ${seqN}\\b`));
      const pit = JSON.parse(readFileSync(join(out, 'POINT_IN_TIME.json'), 'utf8')) as { untilSeq: number };
      assert.equal(pit.untilSeq, seqN);
      const reader = await spawnMaster(['--volumes', set.volumes.join(','), '--db', out, '--read-only']);
      try {
        assert.deepEqual(await snapshot(reader.url), atN);
        assert.equal((await getFollowing(`${reader.url}/pit/20`)).text, 'value 20', 'unlinked later, live at N');
        // Deleted later: live in the index at N, but its blob is gone from the volumes since.
        assert.equal((await http('HEAD', `${reader.url}/pit/12`)).headers['content-md5'], atN.heads['/pit/12']!.md5);
        assert.equal((await http('GET', `${reader.url}/pit/35`)).status, 404, 'written later');
        const history = JSON.parse((await http('GET', `${reader.url}/pit/12?history`)).text) as unknown[];
        assert.equal(history.length, 2);
        for (const [method, body] of [
          ['PUT', 'x'],
          ['DELETE', undefined],
          ['UNLINK', undefined],
          ['LINK', undefined],
        ] as const) {
          const refused = await http(method, `${reader.url}/pit/25`, body);
          assert.equal(refused.status, 403, method);
          assert.match(refused.text, /read-only/);
        }
      } finally {
        await stop(reader);
      }
      assert.equal((await runMkv(['log', 'verify', '--db', out])).status, 0);
    });
  }

  test('history and log dump read the log while the master runs', async () => {
    const history = await runMkv(['history', '--db', db, '/pit/3']);
    assert.equal(history.status, 0, history.stderr);
    const lines = history.stdout.trim().split('\n');
    assert.deepEqual(
      lines.map((line) => line.split('\t')[2]),
      ['WriteStarted', 'WriteCommitted', 'KeyUnlinked'],
    );
    assert.match(lines[1]!, /md5=[0-9a-f]{32}/);
    assert.match(lines[1]!, /size=7/);
    assert.match(lines[1]!, /by api 127\.0\.0\.1|by api ::ffff:127\.0\.0\.1/);
    const json = await runMkv(['history', '--db', db, '--json', '/pit/3']);
    assert.equal((JSON.parse(json.stdout.split('\n')[1]!) as { type: string }).type, 'WriteCommitted');
    assert.equal((await runMkv(['history', '--db', db, '/never'])).status, 1);

    const dump = await runMkv(['log', 'dump', '--db', db, '--from-seq', '5', '--limit', '7']);
    assert.equal(dump.status, 0, dump.stderr);
    const events = dump.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { seq: number; key: string; type: string });
    assert.deepEqual(
      events.map((e) => e.seq),
      [5, 6, 7, 8, 9, 10, 11],
    );
    assert.ok(events.every((e) => typeof e.key === 'string' && typeof e.type === 'string'));
  });

  test('after the master stops: index == replay(log), and rebuild --from-log reproduces it', async () => {
    await stop(master);
    assert.ok(listSegments(logDir(db)).length > 2, 'the workload spans several segments');
    await assertIndexEqualsReplay(db);
    const before = IndexStore.open(indexDir(db), { readOnly: true });
    const entries = [...before.entries()];
    const histories = entries.map(([key]) => before.historyOf(key));
    await before.close();

    const result = await runMkv(['rebuild', '--db', db, '--from-log']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /replayed \d+ events/);
    const rebuilt = IndexStore.open(indexDir(db), { readOnly: true });
    assert.deepEqual([...rebuilt.entries()], entries);
    assert.deepEqual(
      entries.map(([key]) => rebuilt.historyOf(key)),
      histories,
    );
    await rebuilt.close();

    master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db]);
    assert.deepEqual(await snapshot(master.url), final);
  });

  test('log verify passes a sound log, and catches a flipped byte in a sealed block', async () => {
    await stop(master);
    const sound = await runMkv(['log', 'verify', '--db', db]);
    assert.equal(sound.status, 0, sound.stdout);
    assert.match(sound.stdout, /problems: 0/);
    assert.match(sound.stdout, /first seq 1 at \d{4}-/);
    const copy = join(tempDir('mkv-verify-'), 'db');
    scratch.push(copy);
    assert.equal((await runMkv(['rebuild', '--db', db, '--from-log', '--into', copy])).status, 0);
    const sealed = listSegments(logDir(copy))[0]!.path;
    const bytes = readFileSync(sealed);
    bytes[bytes.length - 40]! ^= 0x20;
    writeFileSync(sealed, bytes);
    const broken = await runMkv(['log', 'verify', '--db', copy]);
    assert.equal(broken.status, 1);
    assert.match(broken.stdout, /bad block at byte \d+ \((CRC-32 mismatch|snappy|sync)/);
    master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db]);
  });

  test('LINK serves the old value; restore --unlinked-since undoes the unlinks since then', async () => {
    const url = master.url;
    await http('PUT', `${url}/restore/early`, 'early value');
    await http('PUT', `${url}/restore/late`, 'late value');
    await http('UNLINK', `${url}/restore/early`);
    const since = await instantBetween();
    await http('UNLINK', `${url}/restore/late`);
    await stop(master);
    const dry = await runMkv(['restore', '--db', db, '--unlinked-since', since, '--dry-run']);
    assert.equal(dry.stdout.trim(), '/restore/late');
    const result = await runMkv(['restore', '--db', db, '--unlinked-since', since]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), '/restore/late');
    master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db]);
    assert.equal((await getFollowing(`${master.url}/restore/late`)).text, 'late value');
    assert.equal((await http('GET', `${master.url}/restore/early`)).status, 404);
    const history = JSON.parse((await http('GET', `${master.url}/restore/late?history`)).text) as Array<{ type: string; origin: string }>;
    assert.deepEqual(history.at(-1), { ...history.at(-1), type: 'KeyLinked', origin: 'restore' });
  });
});
