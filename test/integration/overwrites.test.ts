// S3 PutObjects of one key at once (DESIGN invariant 4): both succeed, the last to commit wins,
// a reader gets the old value or a new one throughout, and no blob is lost or left behind —
// also when one of them fails, when the master is killed with both in flight, and across
// HTTP workers.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { writesWaiting } from '../../src/keys/key-write.js';
import { after, before, describe, test } from 'node:test';
import { inFlight } from '../../src/index/evolve.js';
import { blobPath } from '../../src/placement.js';
import { blobsIn } from '../helpers/blobs.js';
import { removeDir, spawnMaster, startMaster, startVolumes, tempDir, type TestMaster, type VolumeSet } from '../helpers/cluster.js';
import { assertIndexEqualsReplay } from '../helpers/replay.js';
import { until } from '../helpers/wait.js';
import { getFollowing, http } from '../helpers/http.js';

/** Bigger than SMALL_VALUE_BYTES, so the value streams to the volumes as it arrives. */
const SIZE = 1024 * 1024;
const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

/** A PutObject whose body is sent in two goes: the first part now, the rest when told. */
function startPut(url: string, body: Buffer) {
  const put = request(url, {
    method: 'PUT',
    headers: { 'content-length': String(body.length), 'content-type': 'application/octet-stream' },
  });
  const answered = new Promise<number>((resolve, reject) => {
    put.on('response', (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode!));
    });
    put.on('error', reject);
  });
  put.write(body.subarray(0, body.length / 4));
  return {
    finish: () => {
      put.end(body.subarray(body.length / 4));
      return answered;
    },
    abort: () => {
      answered.catch(() => {});
      put.destroy();
    },
  };
}

async function get(url: string): Promise<{ status: number; body: Buffer }> {
  const response = await fetch(url);
  return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
}

/** The blob files of `key` on the volumes, by path (the key's path, with ~N for an overwrite's), one per replica. */
function blobFilesOf(set: VolumeSet, key: string): string[] {
  const path = blobPath(key, 0);
  const files: string[] = [];
  for (const dir of set.dirs)
    for (const { file } of blobsIn(dir)) {
      const at = file.indexOf(path);
      if (at !== -1 && (file.length === at + path.length || file[at + path.length] === '~')) files.push(file.slice(at));
    }
  return files.sort();
}

describe('S3 overwrites of one key at once', () => {
  let set: VolumeSet;
  let master: TestMaster;
  before(async () => {
    set = await startVolumes('embedded', 3);
    master = await startMaster(set.volumes, { replicas: 2, staleGraceMs: 50 });
    assert.equal((await fetch(`${master.s3Url}/bucket`, { method: 'PUT' })).status, 200);
  });
  after(async () => {
    await master?.close();
    await set?.close();
    if (master) removeDir(master.db);
  });

  const inFlightOf = (key: string) => {
    const record = master.store.index.get(key);
    return record ? inFlight(record).length : 0;
  };

  test('both succeed, the last to commit wins, and a reader sees the old value until then', async () => {
    const key = '/bucket/dual';
    const url = `${master.s3Url}${key}`;
    const old = randomBytes(SIZE);
    assert.equal((await fetch(url, { method: 'PUT', body: old })).status, 200);
    const [a, b] = [randomBytes(SIZE), randomBytes(SIZE)];
    const first = startPut(url, a);
    await until('the first overwrite to start', () => inFlightOf(key) === 1);
    const second = startPut(url, b);
    await until('the second overwrite to start beside it', () => inFlightOf(key) === 2);
    assert.equal(md5((await get(url)).body), md5(old), 'both in flight: the old value is served');
    // A native DELETE waits for neither: it is refused, as a held lock is.
    assert.equal((await fetch(`${master.url}${key}`, { method: 'DELETE' })).status, 409);
    assert.equal(await second.finish(), 200);
    assert.equal(md5((await get(url)).body), md5(b), 'the second committed first');
    assert.equal(await first.finish(), 200);
    assert.equal(md5((await get(url)).body), md5(a), 'the last to commit wins');
    assert.equal(inFlightOf(key), 0);
    // The replaced values' blobs go once their grace has passed: only the value's remain.
    const record = master.store.index.get(key)!;
    await until('the stale blobs to be removed', () => master.store.index.get(key)!.stale.length === 0);
    assert.deepEqual(blobFilesOf(set, key), record.volumes.map(() => blobPath(key, record.version)).sort());
    assert.equal(record.version, master.store.index.historyOf(key).filter((event) => event.change.type === 'OverwriteStarted')[0]!.seq);
  });

  test('one that fails takes nothing from the other', async () => {
    const key = '/bucket/one-fails';
    const url = `${master.s3Url}${key}`;
    assert.equal((await fetch(url, { method: 'PUT', body: 'old' })).status, 200);
    const [a, b] = [randomBytes(SIZE), randomBytes(SIZE)];
    const failing = startPut(url, a);
    await until('the first overwrite to start', () => inFlightOf(key) === 1);
    const second = startPut(url, b);
    await until('the second overwrite to start', () => inFlightOf(key) === 2);
    failing.abort();
    await until('the failed overwrite to be given up', () => inFlightOf(key) === 1);
    assert.equal((await get(url)).body.toString(), 'old');
    assert.equal(await second.finish(), 200);
    assert.equal(md5((await get(url)).body), md5(b));
    const aborted = master.store.index.historyOf(key).filter((event) => event.change.type === 'OverwriteAborted');
    assert.equal(aborted.length, 1);
    const started = master.store.index.historyOf(key).filter((event) => event.change.type === 'OverwriteStarted');
    assert.deepEqual(
      aborted.map((event) => (event.change as { version: number }).version),
      [started[0]!.seq],
      'the abort names the overwrite that failed',
    );
    await until('the stale blobs to be removed', () => master.store.index.get(key)!.stale.length === 0);
    const record = master.store.index.get(key)!;
    assert.deepEqual(blobFilesOf(set, key), record.volumes.map(() => blobPath(key, record.version)).sort());
  });

  test('a native PUT over an unlinked value an S3 overwrite wrote (path~N) goes beside it, and serves what it wrote', async () => {
    assert.equal((await http('PUT', `${master.s3Url}/bucket/twice`, 'first')).status, 200);
    assert.equal((await http('PUT', `${master.s3Url}/bucket/twice`, 'second')).status, 200);
    assert.equal((await http('UNLINK', `${master.url}/bucket/twice`)).status, 204);
    assert.equal((await http('PUT', `${master.url}/bucket/twice`, 'native')).status, 201);
    assert.equal((await getFollowing(`${master.url}/bucket/twice`)).text, 'native');
    assert.equal((await http('GET', `${master.s3Url}/bucket/twice`)).text, 'native');
  });

  test('the native API still gets one winner: its PUT and UNLINK are refused while an overwrite is in flight', async () => {
    const key = '/bucket/native';
    assert.equal((await fetch(`${master.url}${key}`, { method: 'PUT', body: 'v1' })).status, 201);
    const overwrite = startPut(`${master.s3Url}${key}`, randomBytes(SIZE));
    await until('the overwrite to start', () => inFlightOf(key) === 1);
    const refused = (await fetch(`${master.url}${key}`, { method: 'PUT', body: 'v2' })).status;
    assert.ok(refused === 403 || refused === 409, `a native PUT is refused (${refused})`);
    assert.equal((await fetch(`${master.url}${key}`, { method: 'UNLINK' })).status, 409);
    assert.equal(await overwrite.finish(), 200);
    assert.equal((await get(`${master.url}${key}`)).body.length, SIZE);
  });

  test('two PutObjects of a new key at once both succeed: the second waits for the first, which holds the key, and wins', async () => {
    const key = '/bucket/new-twice';
    const url = `${master.s3Url}${key}`;
    const [a, b] = [randomBytes(SIZE), randomBytes(SIZE)];
    const first = startPut(url, a);
    await until('the first write to hold the key', () => master.store.index.get(key)?.state === 'pending');
    let secondAnswered = false;
    const second = startPut(url, b)
      .finish()
      .then((status) => ((secondAnswered = true), status));
    const first2xx = first.finish();
    assert.equal(await first2xx, 200);
    assert.equal(await second, 200);
    assert.ok(secondAnswered);
    assert.equal(md5((await get(url)).body), md5(b), 'the second, which ended last, wins');
    assert.deepEqual(
      master.store.index
        .historyOf(key)
        .map((event) => event.change.type)
        // The first value's blob goes on its own time (StaleRemoved, --stale-grace after).
        .filter((type) => type !== 'StaleRemoved'),
      ['WriteStarted', 'ObjectCommitted', 'OverwriteStarted', 'ObjectCommitted'],
      'the second began once the first had committed',
    );
  });

  test('a PutObject waiting for a key whose client goes is never made: the next write is not undone by it', async () => {
    const key = '/bucket/gone-waiter';
    const url = `${master.s3Url}${key}`;
    const first = startPut(url, randomBytes(SIZE));
    await until('the first write to hold the key', () => master.store.index.get(key)?.state === 'pending');
    const { port } = new URL(master.s3Url);
    const waiter = connect(Number(port), '127.0.0.1');
    waiter.on('error', () => undefined);
    waiter.write(`PUT ${key} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nlate`);
    await until('the second to wait its turn', () => writesWaiting() === 1);
    waiter.destroy();
    await until('the wait to end with its client', () => writesWaiting() === 0);
    assert.equal(await first.finish(), 200);
    const later = await fetch(url, { method: 'PUT', body: 'after' });
    assert.equal(later.status, 200);
    assert.equal((await get(url)).body.toString(), 'after');
    const commits = master.store.index.historyOf(key).filter((event) => event.change.type === 'ObjectCommitted');
    assert.equal(commits.length, 2, 'the first and the one after it; never the one whose client went');
  });

  test('DeleteObjects does not wait for a key held: that key is OperationAborted at once, the others deleted', async () => {
    const key = '/bucket/held-in-batch';
    const url = `${master.s3Url}${key}`;
    assert.equal((await fetch(url, { method: 'PUT', body: 'old' })).status, 200);
    assert.equal((await fetch(`${master.s3Url}/bucket/free-in-batch`, { method: 'PUT', body: 'x' })).status, 200);
    const overwrite = startPut(url, randomBytes(SIZE));
    await until('the overwrite to start', () => inFlightOf(key) === 1);
    const body = '<Delete><Object><Key>held-in-batch</Key></Object><Object><Key>free-in-batch</Key></Object></Delete>';
    const answer = await fetch(`${master.s3Url}/bucket?delete`, {
      method: 'POST',
      body,
      headers: { 'content-md5': createHash('md5').update(body).digest('base64') },
    });
    assert.equal(answer.status, 200);
    const text = await answer.text();
    assert.match(text, /<Error><Key>held-in-batch<\/Key><Code>OperationAborted<\/Code>/);
    assert.match(text, /<Deleted><Key>free-in-batch<\/Key><\/Deleted>/);
    assert.equal(inFlightOf(key), 1, 'answered while the write was still in flight');
    assert.equal(await overwrite.finish(), 200);
  });

  test('an S3 DeleteObject while a write is in flight waits for it, then deletes: S3 takes both', async () => {
    const key = '/bucket/delete-during';
    const url = `${master.s3Url}${key}`;
    assert.equal((await fetch(url, { method: 'PUT', body: 'old' })).status, 200);
    const overwrite = startPut(url, randomBytes(SIZE));
    await until('the overwrite to start', () => inFlightOf(key) === 1);
    const deleted = fetch(url, { method: 'DELETE' });
    assert.equal(await overwrite.finish(), 200);
    assert.equal((await deleted).status, 204);
    assert.equal((await get(url)).status, 404);
    assert.deepEqual(
      master.store.index
        .historyOf(key)
        .map((event) => event.change.type)
        // The replaced value's blob goes on its own time (StaleRemoved), before or after the DELETE.
        .filter((type) => type !== 'StaleRemoved')
        .slice(-4),
      ['OverwriteStarted', 'ObjectCommitted', 'DeleteStarted', 'KeyDeleted'],
    );
  });

  test('a conditional PutObject does not overlap one in flight: 409, as S3 answers a conditional write that races another', async () => {
    const key = '/bucket/conditional';
    const url = `${master.s3Url}${key}`;
    assert.equal((await fetch(url, { method: 'PUT', body: 'old' })).status, 200);
    const overwrite = startPut(url, randomBytes(SIZE));
    await until('the overwrite to start', () => inFlightOf(key) === 1);
    const conditional = await fetch(url, {
      method: 'PUT',
      body: 'conditional',
      headers: { 'if-none-match': '"0123456789abcdef0123456789abcdef"' },
    });
    assert.equal(conditional.status, 409);
    assert.match(await conditional.text(), /<Code>ConditionalRequestConflict<\/Code>/);
    assert.equal(await overwrite.finish(), 200);
    assert.equal((await get(url)).body.length, SIZE);
    const now = await fetch(url, {
      method: 'PUT',
      body: 'conditional',
      headers: { 'if-none-match': '"0123456789abcdef0123456789abcdef"' },
    });
    assert.equal(now.status, 200, 'alone, it is taken');
  });
});

describe('S3 overwrites in flight when the master dies', () => {
  let set: VolumeSet;
  let db: string;
  before(async () => {
    set = await startVolumes('embedded', 3);
    db = tempDir('mkv-db-');
  });
  after(async () => {
    await set?.close();
    if (db) removeDir(db);
  });

  test('kill -9 with two in flight: index == replay, the old value served, the next overwrite gives them up', async () => {
    const args = ['--db', db, '--volumes', set.volumes.join(','), '--replicas', '2', '--stale-grace', '50ms'];
    let master = await spawnMaster(args);
    const key = '/bucket/crash';
    const url = `${master.url}${key}`;
    const old = randomBytes(SIZE);
    // S3 on the main port: an SDK's request (amz-sdk-invocation-id) gets S3's answers.
    const s3 = { 'amz-sdk-invocation-id': 'test' };
    assert.equal((await fetch(`${master.url}/bucket`, { method: 'PUT', headers: s3 })).status, 200);
    assert.equal((await fetch(url, { method: 'PUT', body: old, headers: s3 })).status, 200);
    const history = async () =>
      (await (await fetch(`${master.url}${key}?history`)).json()) as Array<{ seq: number; type: string; abandons?: number[] }>;
    const puts = [startPutWith(url, s3), startPutWith(url, s3)];
    await until(
      'two overwrites in flight',
      async () => (await history()).filter((event) => event.type === 'OverwriteStarted').length === 2,
    );
    master.child.kill('SIGKILL');
    await master.exited;
    for (const put of puts) put.abort();
    await assertIndexEqualsReplay(db);

    master = await spawnMaster(args);
    try {
      assert.equal(md5((await get(`${master.url}${key}`)).body), md5(old), 'the old value is served');
      const value = randomBytes(SIZE);
      assert.equal((await fetch(`${master.url}${key}`, { method: 'PUT', body: value, headers: s3 })).status, 200);
      assert.equal(md5((await get(`${master.url}${key}`)).body), md5(value));
      const started = (await history()).filter((event) => event.type === 'OverwriteStarted');
      assert.deepEqual(started[2]!.abandons, [started[0]!.seq, started[1]!.seq], 'the new overwrite gives up the two its dead master left');
      await until('only the value to be left on the volumes', () =>
        blobFilesOf(set, key).every((file) => file.includes(`~${started[2]!.seq}`)),
      );
      assert.equal(blobFilesOf(set, key).length, 2);
    } finally {
      master.child.kill('SIGTERM');
      await master.exited;
    }
    await assertIndexEqualsReplay(db);
  });
});

/** startPut with extra headers, for the spawned master's main port. */
function startPutWith(url: string, headers: Record<string, string>) {
  const body = randomBytes(SIZE);
  const put = request(url, { method: 'PUT', headers: { 'content-length': String(body.length), ...headers } });
  put.on('error', () => {});
  put.write(body.subarray(0, body.length / 4));
  return { abort: () => put.destroy() };
}

describe('S3 overwrites at once across HTTP workers', () => {
  let set: VolumeSet;
  let db: string;
  before(async () => {
    set = await startVolumes('embedded', 3);
    db = tempDir('mkv-db-');
  });
  after(async () => {
    await set?.close();
    if (db) removeDir(db);
  });

  test('two workers, one key: all succeed, the last to commit wins', async () => {
    const master = await spawnMaster(['--workers', '2', '--db', db, '--volumes', set.volumes.join(','), '--s3-port', '0']);
    try {
      const s3Port = Number(/S3 on port (\d+)/.exec(master.output())?.[1] ?? NaN);
      assert.ok(Number.isInteger(s3Port), `the S3 port is announced:\n${master.output()}`);
      const url = `http://127.0.0.1:${s3Port}/bucket/workers`;
      assert.equal((await fetch(`http://127.0.0.1:${s3Port}/bucket`, { method: 'PUT' })).status, 200);
      assert.equal((await fetch(url, { method: 'PUT', body: 'old' })).status, 200);
      const history = async () => (await (await fetch(`${master.url}/bucket/workers?history`)).json()) as Array<{ type: string }>;
      // Several connections, so the workers' round robin gives both of them one.
      const bodies = [randomBytes(SIZE), randomBytes(SIZE), randomBytes(SIZE)];
      const puts = bodies.map((body) => startPut(url, body));
      await until(
        'three overwrites in flight',
        async () => (await history()).filter((event) => event.type === 'OverwriteStarted').length === 3,
      );
      assert.equal((await get(url)).body.toString(), 'old');
      for (const put of puts.slice(1)) assert.equal(await put.finish(), 200);
      assert.equal(await puts[0]!.finish(), 200);
      assert.equal(md5((await get(url)).body), md5(bodies[0]!));
      assert.equal((await fetch(url, { method: 'DELETE' })).status, 204, 'no overwrite is left in flight');
    } finally {
      master.child.kill('SIGTERM');
      await master.exited;
    }
    await assertIndexEqualsReplay(db);
  });
});
