// `mkv server --workers 2`: HTTP workers (cluster) over one writer process. Every API behaviour
// must hold across workers: read-your-writes from any worker, 409 on a key another worker is
// writing, a dead worker's locks released and its pending write cleaned up, workers gone with
// the primary, a graceful stop that finishes the write in flight.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { removeDir, spawnMaster, startVolumes, tempDir, type MkvProcess, type VolumeSet } from '../helpers/cluster.js';
import { getFollowing, http } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

let set: VolumeSet;
let root: string;
before(async () => {
  set = await startVolumes('embedded', 3);
  root = tempDir('mkv-workers-');
});
after(async () => {
  await set?.close();
  if (root) removeDir(root);
});

function workerPids(master: MkvProcess): number[] {
  return readFileSync(`/proc/${master.child.pid}/task/${master.child.pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
}

function alive(pid: number): boolean {
  try {
    // A zombie (exited, not yet reaped) is not alive.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** A request on a connection of its own: cluster hands each connection to the next worker. */
function fresh(
  method: string,
  url: string,
  body?: string | Buffer | PassThrough,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  const dispatcher = new Agent({ pipelining: 0 });
  return request(url, { method, body, dispatcher, headers: { connection: 'close', ...headers } }).then(async (response) => {
    const text = await response.body.text();
    await dispatcher.close();
    return { status: response.statusCode, text, headers: response.headers };
  });
}

/** Starts a PUT whose body stays open until `finish` is called; resolves once the key's write has started. */
async function slowPut(master: MkvProcess, key: string): Promise<{ finish(): void; reply: Promise<{ status: number; text: string }> }> {
  const body = new PassThrough();
  body.write('first half, ');
  const reply = fresh('PUT', master.url + key, body);
  reply.catch(() => undefined);
  await until(`the WriteStarted of ${key}`, async () => {
    const history = await http('GET', `${master.url}${key}?history`);
    return history.status === 200 && (JSON.parse(history.text) as Array<{ type: string }>).some((event) => event.type === 'WriteStarted');
  });
  return { finish: () => body.end('second half'), reply };
}

function serverArgs(db: string): string[] {
  return ['--workers', '2', '--db', db, '--volumes', set.volumes.join(','), '--replicas', '2'];
}

test('two HTTP workers serve one port; each client reads its own writes from any worker', async () => {
  const master = await spawnMaster(serverArgs(`${root}/rw`));
  try {
    assert.match(master.output(), /2 HTTP workers/);
    assert.equal(workerPids(master).length, 2);
    // 16 clients, each with two keep-alive connections (cluster hands them to alternate workers):
    // PUT and DELETE on one, GET on the other, so most reads follow a write made by the other worker.
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async (_, client) => {
        const writes = new Agent({ connections: 1 });
        const reads = new Agent({ connections: 1 });
        const call = async (dispatcher: Agent, method: string, key: string, body?: string) => {
          const response = await request(master.url + key, { method, body, dispatcher });
          await response.body.dump();
          return response.statusCode;
        };
        for (let round = 0; round < 40; round++) {
          const key = `/rw/${client}/${round}`;
          const put = await call(writes, 'PUT', key, `value ${client} ${round}`);
          if (put !== 201) failures.push(`PUT ${key}: ${put}`);
          const got = await call(reads, 'GET', key);
          if (got !== 302) failures.push(`GET ${key} after its PUT: ${got}`);
          const deleted = await call(writes, 'DELETE', key);
          if (deleted !== 204) failures.push(`DELETE ${key}: ${deleted}`);
          const gone = await call(reads, 'GET', key);
          if (gone !== 404) failures.push(`GET ${key} after its DELETE: ${gone}`);
        }
        await writes.close();
        await reads.close();
      }),
    );
    assert.equal((await getFollowing(`${master.url}/rw/0/0`)).status, 404);
    assert.deepEqual(failures, []);
  } finally {
    master.child.kill('SIGTERM');
    await master.exited;
  }
});

test('a key being written through one worker answers 409 on every worker until the write ends', async () => {
  const master = await spawnMaster(serverArgs(`${root}/locks`));
  try {
    const slow = await slowPut(master, '/locked/key');
    const racers = await Promise.all(Array.from({ length: 8 }, () => fresh('PUT', `${master.url}/locked/key`, 'other value')));
    assert.deepEqual(
      racers.map((reply) => reply.status),
      Array(8).fill(409),
    );
    const deletes = await Promise.all(Array.from({ length: 4 }, () => fresh('DELETE', `${master.url}/locked/key`)));
    assert.deepEqual(
      deletes.map((reply) => reply.status),
      Array(4).fill(409),
    );
    slow.finish();
    assert.equal((await slow.reply).status, 201);
    assert.equal((await getFollowing(`${master.url}/locked/key`)).text, 'first half, second half');
    // The lock is gone everywhere: an UNLINK through either worker now works.
    assert.equal((await fresh('UNLINK', `${master.url}/locked/key`)).status, 204);
  } finally {
    master.child.kill('SIGTERM');
    await master.exited;
  }
});

test('a worker killed with kill -9 mid-write is replaced; its lock is released and the pending write cleaned up', async () => {
  const master = await spawnMaster(serverArgs(`${root}/dead-worker`));
  try {
    const before = workerPids(master);
    const slow = await slowPut(master, '/orphan/key');
    // Which worker holds the request is unknown: kill both; the primary replaces each.
    for (const pid of before) process.kill(pid, 'SIGKILL');
    await slow.reply.then(
      () => assert.fail('the PUT cannot succeed: its worker died'),
      () => undefined,
    );
    await until('two new workers', () => {
      const now = workerPids(master).filter(alive);
      return now.length === 2 && now.every((pid) => !before.includes(pid));
    });
    await until(
      'the new workers to listen',
      async () => (await fresh('GET', `${master.url}/orphan/key?unlinked`).catch(() => ({ status: 0 }))).status === 200,
    );
    // The write never committed: the key is pending (listed by ?unlinked), not live, and not locked.
    assert.equal((await fresh('GET', `${master.url}/orphan/key`)).status, 404);
    assert.deepEqual(JSON.parse((await fresh('GET', `${master.url}/orphan/?unlinked`)).text).keys, ['/orphan/key']);
    const retry = await fresh('PUT', `${master.url}/orphan/key`, 'second try');
    assert.equal(retry.status, 201, retry.text);
    assert.equal((await getFollowing(`${master.url}/orphan/key`)).text, 'second try');
    const history = JSON.parse((await http('GET', `${master.url}/orphan/key?history`)).text) as Array<{ type: string }>;
    assert.deepEqual(
      history.map((event) => event.type),
      ['WriteStarted', 'WriteStarted', 'WriteCommitted'],
    );
  } finally {
    master.child.kill('SIGTERM');
    await master.exited;
  }
});

test('every worker grants what the credentials file said when the master started, a replacement too', async () => {
  const file = `${root}/credentials`;
  writeFileSync(file, 'ops:ops-secret-key\n');
  const master = await spawnMaster([...serverArgs(`${root}/credentials-db`), '--credentials', file]);
  const as = (who: string) => ({ authorization: `Basic ${Buffer.from(who).toString('base64')}` });
  const ops = as('ops:ops-secret-key');
  const other = as('other:other-secret-key');
  try {
    for (let i = 0; i < 4; i++) {
      assert.equal((await fresh('PUT', `${master.url}/granted/${i}`, 'x', ops)).status, 201);
      assert.equal((await fresh('PUT', `${master.url}/refused/${i}`, 'x')).status, 401);
    }
    // The file is read once, by the primary: an edit since changes nothing until a restart, on
    // any worker, the replacement of a dead one too.
    writeFileSync(file, 'other:other-secret-key\n');
    const before = workerPids(master);
    for (const pid of before) process.kill(pid, 'SIGKILL');
    await until('two new workers', () => {
      const now = workerPids(master).filter(alive);
      return now.length === 2 && now.every((pid) => !before.includes(pid));
    });
    await until(
      'the new workers to listen',
      async () => (await fresh('GET', `${master.url}/granted/0`, undefined, ops).catch(() => ({ status: 0 }))).status !== 0,
    );
    for (let i = 0; i < 4; i++) {
      assert.equal((await fresh('GET', `${master.url}/granted/${i}?history`, undefined, ops)).status, 200);
      assert.equal(
        (await fresh('GET', `${master.url}/granted/${i}?history`, undefined, other)).status,
        401,
        'a key the file names only since is unknown',
      );
    }
  } finally {
    master.child.kill('SIGTERM');
    await master.exited;
  }
});

test('a worker gets the volume secret over IPC: no worker holds it in its environment or command line', async () => {
  const secret = 'volume-secret-never-in-environ';
  const signed = await startVolumes('embedded', 2, tempDir('mkv-workers-signed-'), secret);
  const secretFile = `${root}/volume-secret`;
  writeFileSync(secretFile, `${secret}\n`);
  const master = await spawnMaster([
    '--workers',
    '2',
    '--db',
    `${root}/secret-db`,
    '--volumes',
    signed.volumes.join(','),
    '--replicas',
    '2',
    '--volume-secret-file',
    secretFile,
  ]);
  try {
    // The workers sign with it (a volume serves nothing unsigned), so each got it.
    for (let i = 0; i < 4; i++) assert.equal((await fresh('PUT', `${master.url}/signed/${i}`, 'x')).status, 201);
    for (let i = 0; i < 4; i++) assert.equal((await getFollowing(`${master.url}/signed/${i}`)).text, 'x');
    const pids = workerPids(master);
    assert.equal(pids.length, 2);
    for (const pid of pids) {
      for (const file of ['environ', 'cmdline']) {
        assert.ok(!readFileSync(`/proc/${pid}/${file}`, 'latin1').includes(secret), `worker ${pid}'s ${file} holds the secret`);
      }
    }
  } finally {
    master.child.kill('SIGTERM');
    await master.exited;
    await signed.close();
  }
});

test('kill -9 of the primary takes its workers down; a restart serves every acknowledged write', async () => {
  const db = `${root}/dead-primary`;
  const master = await spawnMaster(serverArgs(db));
  const workers = workerPids(master);
  const acknowledged: string[] = [];
  for (let i = 0; i < 20; i++) {
    const reply = await fresh('PUT', `${master.url}/kept/${i}`, `kept ${i}`);
    assert.equal(reply.status, 201);
    acknowledged.push(`/kept/${i}`);
  }
  master.child.kill('SIGKILL');
  await master.exited;
  // No worker may go on holding the port without a writer behind it.
  await until('the workers to exit', () => workers.every((pid) => !alive(pid)));
  const again = await spawnMaster(serverArgs(db));
  try {
    for (const key of acknowledged) assert.equal((await getFollowing(again.url + key)).text, `kept ${key.split('/')[2]}`);
  } finally {
    again.child.kill('SIGTERM');
    await again.exited;
  }
});

test('SIGTERM lets the write in flight finish, then stops every process', async () => {
  const db = `${root}/graceful`;
  const master = await spawnMaster(serverArgs(db));
  const workers = workerPids(master);
  const slow = await slowPut(master, '/graceful/key');
  master.child.kill('SIGTERM');
  await until('the master to take the signal', () => master.output().includes('SIGTERM: stopping'));
  slow.finish();
  assert.equal((await slow.reply).status, 201);
  assert.equal(await master.exited, 0);
  assert.ok(workers.every((pid) => !alive(pid)));
  const again = await spawnMaster(serverArgs(db));
  try {
    assert.equal((await getFollowing(`${again.url}/graceful/key`)).text, 'first half, second half');
  } finally {
    again.child.kill('SIGTERM');
    await again.exited;
  }
});

test('the admin port sums the metrics of the writer and of every worker', async () => {
  const master = await spawnMaster([...serverArgs(`${root}/metrics`), '--admin-port', '0']);
  try {
    const admin = Number(/admin .* on port (\d+)/.exec(master.output())![1]);
    for (let i = 0; i < 10; i++) assert.equal((await fresh('PUT', `${master.url}/m/${i}`, 'x')).status, 201);
    const text = (await http('GET', `http://127.0.0.1:${admin}/metrics`)).text;
    assert.match(text, /^mkv_http_requests_total\{method="PUT",status="201"\} 10$/m);
    assert.match(text, /^mkv_log_events_total 20$/m);
    assert.match(text, /^mkv_log_last_seq 20$/m);
    assert.equal((await http('GET', `http://127.0.0.1:${admin}/readyz`)).status, 200);
  } finally {
    master.child.kill('SIGTERM');
    await master.exited;
  }
});
