// kill -9 of the master under concurrent PUT/UNLINK/DELETE load, then restart:
//   - every acknowledged write is readable with its md5, every acknowledged delete stays deleted;
//   - index == replay(log), with no manual step;
//   - every blob on a volume is named by some event in the log (nothing orphaned untracked).
// MKV_CRASH_ROUNDS sets the number of rounds (3 in npm test; the long run uses 20 or more).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { until } from '../helpers/wait.js';
import { after, before, test } from 'node:test';
import { blobsIn } from '../helpers/blobs.js';
import { http } from '../helpers/http.js';
import { assertIndexEqualsReplay, keysInLog } from '../helpers/replay.js';
import { mkvBin, removeDir, spawnMaster, startVolumes, tempDir, type VolumeSet } from '../helpers/cluster.js';

const rounds = Number(process.env.MKV_CRASH_ROUNDS ?? 3);
type Known =
  { state: 'live'; md5: string } | { state: 'deleted' } | { state: 'unlinked'; md5: string } | { state: 'unknown'; md5s: string[] };

let set: VolumeSet;
let db: string;
before(async () => {
  set = await startVolumes('embedded', 3);
  db = tempDir('mkv-crash-');
});
after(async () => {
  await set?.close();
  if (db) removeDir(db);
});

const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

async function worker(url: string, id: number, round: number, known: Map<string, Known>, stop: { now: boolean }): Promise<void> {
  const mine: string[] = [];
  for (let n = 0; !stop.now; n++) {
    const choice = Math.random();
    if (choice < 0.6 || mine.length === 0) {
      const key = `/crash/r${round}/w${id}/${n}`;
      const value = randomBytes(64 + Math.floor(Math.random() * 4096));
      known.set(key, { state: 'unknown', md5s: [md5(value)] });
      try {
        const reply = await http('PUT', url + key, value);
        if (reply.status === 201) {
          known.set(key, { state: 'live', md5: md5(value) });
          mine.push(key);
        } else if (reply.status !== 500) {
          assert.fail(`PUT ${key} answered ${reply.status}: ${reply.text}`);
        }
      } catch {
        return; // the master died mid-request: the outcome stays unknown
      }
    } else {
      const key = mine.splice(Math.floor(Math.random() * mine.length), 1)[0]!;
      const before = known.get(key) as { state: 'live'; md5: string };
      const method = choice < 0.85 ? 'DELETE' : 'UNLINK';
      known.set(key, { state: 'unknown', md5s: [before.md5] });
      try {
        const reply = await http(method, url + key);
        assert.equal(reply.status, 204, `${method} ${key}: ${reply.text}`);
        known.set(key, method === 'DELETE' ? { state: 'deleted' } : { state: 'unlinked', md5: before.md5 });
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        return;
      }
    }
  }
}

async function verify(url: string, known: Map<string, Known>): Promise<void> {
  const unlinked = new Set((JSON.parse((await http('GET', `${url}/crash/?unlinked`)).text) as { keys: string[] }).keys);
  for (const [key, expected] of known) {
    const reply = await http('GET', url + key);
    if (expected.state === 'live') {
      assert.equal(reply.status, 302, `acknowledged PUT of ${key} survives`);
      assert.equal(reply.headers['content-md5'], expected.md5);
      const blob = await http('GET', reply.headers.location!);
      assert.equal(md5(blob.body), expected.md5, `the blob of ${key} is whole`);
    } else if (expected.state === 'deleted') {
      assert.equal(reply.status, 404, `acknowledged DELETE of ${key} stays deleted`);
      assert.ok(!unlinked.has(key));
    } else if (expected.state === 'unlinked') {
      assert.equal(reply.status, 404, `acknowledged UNLINK of ${key} stays unlinked`);
      assert.ok(unlinked.has(key), `${key} is listed in ?unlinked`);
    } else if (reply.status === 302) {
      // An unacknowledged request may have happened or not, but never half.
      assert.ok(expected.md5s.includes(reply.headers['content-md5']!), `${key} holds a value that was written`);
      const blob = await http('GET', reply.headers.location!);
      assert.ok(expected.md5s.includes(md5(blob.body)));
    } else {
      assert.equal(reply.status, 404);
    }
  }
}

test(`kill -9 of the master under load, ${rounds} rounds: nothing acknowledged is lost`, async (t) => {
  const known = new Map<string, Known>();
  for (let round = 0; round < rounds; round++) {
    // Both ways of serving: HTTP in the writer process, and HTTP workers writing through it.
    const master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db, '--workers', String(round % 2 === 0 ? 0 : 2)]);
    await verify(master.url, known);
    const stop = { now: false };
    const workers = Array.from({ length: 8 }, (_, id) => worker(master.url, id, round, known, stop));
    // Under load for real before the kill: a few outcomes acknowledged this round (a cold master
    // on a slow machine may take most of a second for them), then a random moment.
    const settled = () => [...known.entries()].filter(([key, k]) => key.startsWith(`/crash/r${round}/`) && k.state !== 'unknown').length;
    for (const deadline = Date.now() + 10_000; settled() < 8 && Date.now() < deadline;)
      await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 500));
    master.child.kill('SIGKILL');
    assert.equal(await master.exited, 'SIGKILL');
    stop.now = true;
    await Promise.all(workers);
  }
  const master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db]);
  try {
    await verify(master.url, known);
    const acknowledged = [...known.values()].filter((k) => k.state !== 'unknown').length;
    assert.ok(acknowledged > rounds * 5, `the load acknowledged only ${acknowledged} requests`);
    t.diagnostic(`${known.size} keys touched, ${acknowledged} with an acknowledged outcome`);
  } finally {
    // A master left running keeps this test file from ever ending.
    master.child.kill('SIGKILL');
    await master.exited;
  }

  await assertIndexEqualsReplay(db);
  const named = await keysInLog(db);
  for (const dir of set.dirs) {
    for (const blob of blobsIn(dir)) assert.ok(blob.key !== undefined && named.has(blob.key), `${blob.file} is named by the log`);
  }
});

// A master killed with kill -9 whose parent does not reap it at once (a supervisor killed with
// it, PID 1 reaping late) stays a zombie; the next master, started at once, must start.
test('a master started at once after kill -9, while the killed one is still a zombie, starts', { timeout: 60_000 }, async () => {
  const zombieDb = tempDir('mkv-zombie-');
  // A parent that starts the master and never waits for it: killed, the master stays a zombie.
  const parent = spawn(
    'python3',
    [
      '-c',
      'import subprocess, sys, time\np = subprocess.Popen(sys.argv[1:])\nprint(p.pid, flush=True)\ntime.sleep(60)',
      process.execPath,
      mkvBin,
      'server',
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--volumes',
      set.volumes.join(','),
      '--db',
      zombieDb,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  try {
    // The parent prints the master's pid, then the master (its stdout is the parent's) that it listens, the lock held.
    let said = '';
    parent.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
    await until('the master to listen', () => /listening on/.test(said), 30_000);
    const pid = Number(/^(\d+)\n/.exec(said)![1]);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')); i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    assert.match(readFileSync(`/proc/${pid}/status`, 'utf8'), /^State:\s+Z/m, 'the killed master is a zombie');
    const next = await spawnMaster(['--volumes', set.volumes.join(','), '--db', zombieDb]);
    try {
      assert.equal((await http('PUT', `${next.url}/after/zombie`, 'v')).status, 201);
    } finally {
      next.child.kill('SIGKILL');
      await next.exited;
    }
  } finally {
    parent.kill('SIGKILL');
    removeDir(zombieDb);
  }
});
