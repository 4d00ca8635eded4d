// kill -9 during the long-running tools — rebuild, rebalance, verify --repair — and run them
// again: the second run finishes the job, and index == replay(log) holds throughout.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { listSegments } from '../../src/log/segments.js';
import { keyToPath, keyToVolumes } from '../../src/placement.js';
import { indexDir, logDir } from '../../src/db/paths.js';
import { getFollowing, http } from '../helpers/http.js';
import { assertIndexEqualsReplay } from '../helpers/replay.js';
import { mkvBin, removeDir, runMkv, spawnMaster, startVolumes, tempDir, type VolumeSet } from '../helpers/cluster.js';

const md5 = (data: Buffer | string) => createHash('md5').update(data).digest('hex');

/**
 * Starts an mkv command and kill -9s it once `progressed()` says it has done some of its work
 * (plus a random few ms), so the kill lands midway, not before the work begins.
 */
function killMidway(args: string[], progressed: () => boolean): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [mkvBin, ...args], { stdio: 'ignore' });
    const poll = setInterval(() => {
      if (!progressed()) return;
      clearInterval(poll);
      setTimeout(() => child.kill('SIGKILL'), Math.random() * 20);
    }, 2);
    child.on('exit', (code, signal) => {
      clearInterval(poll);
      resolve(signal ?? `exit ${code}`);
    });
  });
}

/** The size of the db's newest log segment now; a tool that appends events makes it grow. */
function logSize(db: string): () => number {
  return () => statSync(listSegments(logDir(db)).at(-1)!.path).size;
}

function grows(measure: () => number, by: number): () => boolean {
  const start = measure();
  return () => measure() > start + by;
}

describe('kill -9 during the tools', () => {
  let set: VolumeSet;
  let db: string;
  const values = new Map<string, string>();

  function fileOf(volume: string, key: string): string {
    const [host, subvolume] = volume.split('/');
    return join(set.dirs[set.volumes.indexOf(host!)]!, subvolume!, keyToPath(key));
  }

  before(async () => {
    set = await startVolumes('embedded', 4);
    db = tempDir('mkv-toolcrash-');
    const master = await spawnMaster(['--volumes', set.volumes.slice(0, 3).join(','), '--db', db]);
    await Promise.all(
      Array.from({ length: 8 }, async (_, lane) => {
        for (let i = lane; i < 400; i += 8) {
          const key = `/tool/${i}`;
          assert.equal((await http('PUT', master.url + key, `value ${i}`)).status, 201);
          values.set(key, `value ${i}`);
        }
      }),
    );
    master.child.kill('SIGTERM');
    await master.exited;
  });
  after(async () => {
    await set?.close();
    if (db) removeDir(db);
  });

  test('rebalance killed midway: the re-run moves the rest, every blob where placement says', async (t) => {
    // Right after the kill the index may trail the log; the next run catches it up first.
    const how = await killMidway(['rebalance', '--db', db, '--volumes', set.volumes.join(',')], grows(logSize(db), 2000));
    const rerun = await runMkv(['rebalance', '--db', db, '--volumes', set.volumes.join(',')]);
    assert.equal(rerun.status, 0, rerun.stdout + rerun.stderr);
    t.diagnostic(`first run: ${how}; re-run: ${/moved \d+/.exec(rerun.stderr)?.[0]}, ${/already balanced \d+/.exec(rerun.stderr)?.[0]}`);
    for (const [key, value] of values) {
      for (const volume of keyToVolumes(key, set.volumes, 3, 10))
        assert.equal(readFileSync(fileOf(volume, key), 'utf8'), value, `${key} on ${volume}`);
    }
    await assertIndexEqualsReplay(db);
  });

  test('rebuild --from-log killed midway: the next start (or re-run) has the whole index', async (t) => {
    const scratchIndex = () => readdirSync(db).some((name) => name.startsWith('index.rebuild-'));
    const how = await killMidway(['rebuild', '--db', db, '--from-log'], scratchIndex);
    const master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db]);
    try {
      for (const [key, value] of values) assert.equal((await getFollowing(master.url + key)).text, value);
    } finally {
      master.child.kill('SIGTERM');
      await master.exited;
    }
    t.diagnostic(`rebuild: ${how}`);
    const how2 = await killMidway(['rebuild', '--db', db, '--from-log'], () => !existsSync(indexDir(db)));
    const rerun = await runMkv(['rebuild', '--db', db, '--from-log']);
    assert.equal(rerun.status, 0, rerun.stderr);
    t.diagnostic(`second kill: ${how2}; re-run: ${rerun.stdout.trim()}`);
    await assertIndexEqualsReplay(db);
  });

  test('verify --repair killed midway: the re-run restores every replica', async (t) => {
    const lost = [...values.keys()].filter((_, i) => i % 3 === 0);
    for (const key of lost) rmSync(fileOf(keyToVolumes(key, set.volumes, 3, 10)[0]!, key));
    const how = await killMidway(['verify', '--db', db, '--repair', '--concurrency', '2'], grows(logSize(db), 1500));
    const rerun = await runMkv(['verify', '--db', db, '--repair']);
    assert.equal(rerun.status, 0, rerun.stdout + rerun.stderr);
    t.diagnostic(`first run: ${how}; re-run: ${rerun.stderr.trim().split('\n').at(-1)}`);
    for (const key of lost) {
      const file = fileOf(keyToVolumes(key, set.volumes, 3, 10)[0]!, key);
      assert.ok(existsSync(file), key);
      assert.equal(md5(readFileSync(file)), md5(values.get(key)!));
    }
    await assertIndexEqualsReplay(db);
  });
});
