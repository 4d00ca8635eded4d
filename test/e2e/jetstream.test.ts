// Several masters on one JetStream stream (real nats-server processes on loopback ports): each
// projects the whole stream into its own index; a write through one is readable through another
// with Min-Log-Seq; racing writes of one key through both give exactly one 201; a master killed
// with kill -9 catches up on restart; a three-node stream keeps taking writes with a node down.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { IndexStore } from '../../src/index/index-store.js';
import { indexDir } from '../../src/db/paths.js';
import type { LogEvent } from '../../src/events/event.js';
import { SegmentLog } from '../../src/log/segment-log.js';
import { JetStreamLog } from '../../src/log/jetstream-log.js';
import { JetStreamWriter } from '../../src/writer/jetstream-writer.js';
import { silentLogger } from '../../src/logger.js';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import {
  adminUrlOf,
  freePort,
  nginxSkipReason,
  removeDir,
  repoRoot,
  runMkv,
  spawnMaster,
  stopMaster,
  tempDir,
  waitForHttp,
  type MkvProcess,
} from '../helpers/cluster.js';
import { until } from '../helpers/wait.js';
import { http } from '../helpers/http.js';
import { natsSkipReason, startNats, type NatsServer } from '../helpers/nats.js';
import { startSharedStream, startSharedStreamCluster, type SharedStream } from '../helpers/shared-stream.js';

/** GET with Min-Log-Seq, following the redirect to the volume. */
async function readThrough(url: string, seq: string): Promise<{ status: number; text: string }> {
  const first = await http('GET', url, undefined, { 'min-log-seq': seq });
  if (first.status !== 302) return { status: first.status, text: first.text };
  const blob = await http('GET', first.headers.location!);
  return { status: blob.status, text: blob.text };
}

function indexRows(db: string): Array<[string, unknown]> {
  const index = IndexStore.open(indexDir(db), { readOnly: true });
  try {
    return [...index.entries()].map(([key, record]) => [key, record]);
  } finally {
    void index.close();
  }
}

describe('masters on one JetStream stream', { skip: natsSkipReason() }, () => {
  let shared: SharedStream<NatsServer>;
  before(async () => (shared = await startSharedStream('mkv-jetstream-')));
  after(() => shared?.close());

  test('a write through one master is readable through the other with Min-Log-Seq; every write answers Log-Seq', async () => {
    const a = await shared.spawn('rw-a', 'RW');
    const b = await shared.spawn('rw-b', 'RW');
    try {
      for (let i = 0; i < 20; i++) {
        const put = await http('PUT', `${a.url}/shared/${i}`, `value ${i}`);
        assert.equal(put.status, 201, put.text);
        const seq = put.headers['log-seq']!;
        assert.match(seq, /^\d+$/);
        assert.deepEqual(await readThrough(`${b.url}/shared/${i}`, seq), { status: 200, text: `value ${i}` });
      }
      const unlinked = await http('UNLINK', `${b.url}/shared/0`);
      assert.equal(unlinked.status, 204);
      assert.equal((await http('GET', `${a.url}/shared/0`, undefined, { 'min-log-seq': unlinked.headers['log-seq']! })).status, 404);
      const deleted = await http('DELETE', `${a.url}/shared/1`);
      assert.equal(deleted.status, 204);
      assert.ok(Number(deleted.headers['log-seq']) > Number(unlinked.headers['log-seq']));
      assert.equal((await http('GET', `${b.url}/shared/1`, undefined, { 'min-log-seq': deleted.headers['log-seq']! })).status, 404);
      // Both masters keep the same history of a key.
      const history = (url: string) =>
        http('GET', `${url}/shared/0?history`, undefined, { 'min-log-seq': deleted.headers['log-seq']! }).then((reply) => reply.text);
      assert.equal(await history(a.url), await history(b.url));
      assert.equal((await http('GET', `${a.url}/shared/2`, undefined, { 'min-log-seq': 'soon' })).status, 400);
    } finally {
      await stopMaster(a);
      await stopMaster(b);
    }
  });

  test('32 concurrent PUTs of one key spread over both masters: exactly one 201', async () => {
    const a = await shared.spawn('race-a', 'RACE');
    const b = await shared.spawn('race-b', 'RACE');
    try {
      for (let round = 0; round < 3; round++) {
        const key = `/contested/${round}`;
        const replies = await Promise.all(
          Array.from({ length: 32 }, (_, i) => http('PUT', `${i % 2 === 0 ? a.url : b.url}${key}`, `writer ${i}`, { connection: 'close' })),
        );
        const statuses = replies.map((reply) => reply.status);
        assert.equal(statuses.filter((status) => status === 201).length, 1, `statuses: ${statuses.join(',')}`);
        assert.ok(
          statuses.every((status) => status === 201 || status === 409 || status === 403),
          `statuses: ${statuses.join(',')}`,
        );
        const winner = replies.findIndex((reply) => reply.status === 201);
        const seq = replies[winner]!.headers['log-seq']!;
        for (const url of [a.url, b.url])
          assert.deepEqual(await readThrough(`${url}${key}`, seq), { status: 200, text: `writer ${winner}` });
        const history = JSON.parse((await http('GET', `${a.url}${key}?history`, undefined, { 'min-log-seq': seq })).text) as Array<{
          type: string;
        }>;
        assert.equal(history.filter((event) => event.type === 'WriteCommitted').length, 1);
      }
    } finally {
      await stopMaster(a);
      await stopMaster(b);
    }
  });

  test("a master killed with kill -9 under load restarts, catches up, and its index equals the other's", async () => {
    let a = await shared.spawn('crash-a', 'CRASH');
    const b = await shared.spawn('crash-b', 'CRASH');
    try {
      let stopLoad = false;
      let written = 0;
      const load = Promise.all(
        Array.from({ length: 8 }, async (_, client) => {
          for (let n = 0; !stopLoad; n++) {
            const reply = await http('PUT', `${b.url}/load/${client}/${n}`, `v${n}`).catch(() => undefined);
            if (reply?.status === 201) written++;
          }
        }),
      );
      for (let i = 0; i < 30; i++) await http('PUT', `${a.url}/before/${i}`, 'x').catch(() => undefined);
      a.child.kill('SIGKILL');
      await a.exited;
      // B goes on writing while A is down.
      const atCrash = written;
      await until('B to write while A is down', () => written >= atCrash + 40, 30_000);
      stopLoad = true;
      await load;
      const last = await http('PUT', `${b.url}/after/crash`, 'last');
      assert.equal(last.status, 201);
      a = await shared.spawn('crash-a', 'CRASH');
      assert.deepEqual(await readThrough(`${a.url}/after/crash`, last.headers['log-seq']!), { status: 200, text: 'last' });
      await stopMaster(a);
      await stopMaster(b);
      assert.deepEqual(indexRows(shared.db('crash-a')), indexRows(shared.db('crash-b')));
      assert.ok(indexRows(shared.db('crash-a')).length > 30);
    } finally {
      await stopMaster(a);
      await stopMaster(b);
    }
  });
});

/**
 * Runs `body` with a master on a nats-server of its own (one the test may freeze) and three
 * embedded volumes; then thaws the server and stops everything, whatever body did.
 */
async function withOwnNats(
  stream: string,
  extraArgs: string[],
  body: (nats: NatsServer, master: MkvProcess) => Promise<void>,
): Promise<void> {
  const shared = await startSharedStream('mkv-jetstream-own-');
  try {
    await body(shared.nats, await shared.spawn('db', stream, ...extraArgs));
  } finally {
    shared.nats.thaw();
    await shared.close();
  }
}

describe('a JetStream server that stops answering for a while', { skip: natsSkipReason(), timeout: 120_000 }, () => {
  test('writes answer 503 in bounded time while it hangs and /readyz says so; writes go on once it answers again, without a restart', async () => {
    await withOwnNats('HANG', ['--admin-port', '0'], async (nats, master) => {
      const readyz = () => http('GET', `${adminUrlOf(master)}/readyz`, undefined, {}, 20_000);
      const before = await http('PUT', `${master.url}/hang/before`, 'before', {}, 20_000);
      assert.equal(before.status, 201, before.text);
      nats.freeze();
      // Bounded: a PUT still waiting when the client gives up fails the test.
      const during = await http('PUT', `${master.url}/hang/during`, 'during', {}, 30_000);
      assert.equal(during.status, 503, during.text);
      // Another write, sent once that one timed out: by then the projector's consumer has missed
      // its heartbeats and asked JetStream about itself, so this publish (the same timeout,
      // started later) times out after that request does, and the projector has a timed-out
      // request to recover from. Meanwhile /readyz tells a load balancer to send no writes here.
      const [again, frozen] = await Promise.all([http('PUT', `${master.url}/hang/during-again`, 'during', {}, 30_000), readyz()]);
      assert.equal(again.status, 503, again.text);
      assert.equal(frozen.status, 503, frozen.text);
      assert.match(JSON.parse(frozen.text).checks.log, /does not answer/);
      nats.thaw();
      // The projector follows the stream again by itself: /readyz says so (the log answers and
      // the index has applied all of it), and a write is taken and readable.
      await until('/readyz to say the master takes writes again', async () => (await readyz()).status === 200, 40_000);
      const after = await http('PUT', `${master.url}/hang/after`, 'after', {}, 40_000);
      assert.equal(after.status, 201, after.text);
      assert.deepEqual(await readThrough(`${master.url}/hang/after`, after.headers['log-seq']!), { status: 200, text: 'after' });
      const ready = await readyz();
      assert.equal(JSON.parse(ready.text).checks.log, 'ok', ready.text);
      assert.deepEqual(await readThrough(`${master.url}/hang/before`, before.headers['log-seq']!), { status: 200, text: 'before' });
    });
  });

  test('SIGTERM ends a master whose server hangs in bounded time: a connection that does not drain is closed', async () => {
    await withOwnNats('STOP', [], async (nats, master) => {
      assert.equal((await http('PUT', `${master.url}/stop/before`, 'x', {}, 20_000)).status, 201);
      nats.freeze();
      master.child.kill('SIGTERM');
      const code = await Promise.race([master.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 40_000))]);
      assert.notEqual(code, 'still running', 'the master did not exit within 40 s of SIGTERM');
    });
  });
});

describe('the projector of a JetStream master', { skip: natsSkipReason(), timeout: 120_000 }, () => {
  test('a consumer that cannot be created (JetStream not answering) is created again later: the projector does not stop', async () => {
    const nats = await startNats();
    const root = tempDir('mkv-jetstream-follow-');
    const log = await JetStreamLog.open({ url: `${nats.url}/FOLLOW` });
    const index = IndexStore.open(join(root, 'index'));
    const warnings: string[] = [];
    const writer = new JetStreamWriter(log, index, { ...silentLogger, warn: (message) => warnings.push(message) });
    writer.start();
    const put = (key: string) =>
      writer.append([{ key, cause: { origin: 'api', client: null }, change: { type: 'WriteStarted', volumes: ['v1'] } }]);
    try {
      assert.equal((await put('/before'))[0]!.seq, 1);
      nats.freeze();
      // What the watchdog does when the stream holds events its consumer did not deliver (its
      // node went away): follow again. Creating the consumer now times out, and the projector says so.
      writer.followAgain();
      await until(
        'the projector to log that following the stream failed',
        () => warnings.some((w) => /^following the stream failed/.test(w)),
        60_000,
      );
      nats.thaw();
      const after = await put('/after');
      assert.equal(after[0]!.seq, 2);
      assert.equal(index.checkpoint, 2);
      assert.equal(index.get('/after')?.state, 'pending');
      assert.ok(writer.healthy);
    } finally {
      nats.thaw();
      await writer.close();
      await index.close();
      await log.close();
      await nats.stop();
      removeDir(root);
    }
  });
});

describe('nginx in front of two masters (nginx/masters)', { skip: natsSkipReason() || nginxSkipReason() }, () => {
  test('a master killed with kill -9: reads and writes through nginx go on, with nothing to promote', async () => {
    const shared = await startSharedStream('mkv-front-');
    const a = await shared.spawn('a', 'FRONT');
    const b = await shared.spawn('b', 'FRONT');
    const port = await freePort();
    const front = spawn(join(repoRoot, 'nginx/masters'), [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`], {
      env: { ...process.env, PORT: String(port) },
      stdio: 'ignore',
    });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitForHttp(`${url}/none`, front);
      const seqs: string[] = [];
      for (let i = 0; i < 6; i++) {
        const put = await http('PUT', `${url}/front/${i}`, `value ${i}`);
        assert.equal(put.status, 201, put.text);
        seqs.push(put.headers['log-seq']!);
      }
      a.child.kill('SIGKILL');
      await a.exited;
      for (let i = 0; i < 6; i++) assert.deepEqual(await readThrough(`${url}/front/${i}`, seqs[i]!), { status: 200, text: `value ${i}` });
      for (let i = 6; i < 12; i++) assert.equal((await http('PUT', `${url}/front/${i}`, `value ${i}`)).status, 201);
    } finally {
      front.kill('SIGTERM');
      await shared.close();
    }
  });
});

describe('moving a log between backends', { skip: natsSkipReason() }, () => {
  let shared: SharedStream<NatsServer>;
  before(async () => (shared = await startSharedStream('mkv-migrate-')));
  after(() => shared?.close());

  async function events(dir: string): Promise<LogEvent[]> {
    const log = await SegmentLog.open(dir, { readOnly: true });
    const all: LogEvent[] = [];
    for await (const batch of log.readFrom(1)) all.push(...batch);
    await log.close();
    return all;
  }

  test('mkv log import moves a local log onto a stream that a master then serves; mkv log export gives the same log back', async () => {
    const { nats, set, root } = shared;
    const local = `${root}/local`;
    const stream = `${nats.url}/MIGRATE`;
    const one = await spawnMaster(['--db', local, '--volumes', set.volumes.join(','), '--replicas', '2']);
    for (let i = 0; i < 20; i++) assert.equal((await http('PUT', `${one.url}/moved/${i}`, `value ${i}`)).status, 201);
    assert.equal((await http('DELETE', `${one.url}/moved/0`)).status, 204);
    assert.equal((await http('UNLINK', `${one.url}/moved/1`)).status, 204);
    await stopMaster(one);

    const imported = await runMkv(['log', 'import', '--db', local, '--log', stream]);
    assert.equal(imported.status, 0, imported.stderr);
    assert.match(imported.stdout, /imported 43 events \(seq 1 to 43\)/);
    // Again: the stream already holds all of it.
    assert.match((await runMkv(['log', 'import', '--db', local, '--log', stream])).stdout, /imported 0 events/);

    const two = await shared.spawn('on-stream', 'MIGRATE');
    try {
      assert.equal((await readThrough(`${two.url}/moved/5`, '43')).text, 'value 5');
      assert.equal((await http('GET', `${two.url}/moved/0`)).status, 404);
      assert.deepEqual(JSON.parse((await http('GET', `${two.url}/moved/?unlinked`)).text).keys, ['/moved/1']);
      const put = await http('PUT', `${two.url}/moved/new`, 'written on the stream');
      assert.equal(put.headers['log-seq'], '45');
    } finally {
      await stopMaster(two);
    }

    // The offline tools read the stream too: a point-in-time rebuild after the 10th PUT.
    const rebuilt = await runMkv([
      'rebuild',
      '--db',
      `${root}/pit-source`,
      '--log',
      stream,
      '--from-log',
      '--until-seq',
      '20',
      '--into',
      `${root}/pit`,
    ]);
    assert.equal(rebuilt.status, 0, rebuilt.stderr);
    assert.match(rebuilt.stdout, /10 keys from 20 events \(up to seq 20\)/);
    const rebalanced = await runMkv([
      'rebalance',
      '--db',
      `${root}/tool-index`,
      '--log',
      stream,
      '--volumes',
      set.volumes.join(','),
      '--replicas',
      '2',
    ]);
    assert.equal(rebalanced.status, 0, rebalanced.stderr);
    assert.match(rebalanced.stdout + rebalanced.stderr, /already balanced 20/);

    const exported = await runMkv(['log', 'export', '--log', stream, '--into', `${root}/exported`]);
    assert.equal(exported.status, 0, exported.stderr);
    const back = await events(`${root}/exported`);
    const original = await events(`${local}/log`);
    assert.equal(back.length, 45);
    assert.deepEqual(back.slice(0, 43), original);
    assert.equal((await runMkv(['log', 'export', '--log', stream, '--into', `${root}/exported`])).status, 2);
  });

  test('mkv log import refuses a stream that holds another log, and says where the two differ', async () => {
    const { nats, set, root } = shared;
    const stream = `${nats.url}/OTHERS`;
    const dbs = [`${root}/cluster-a`, `${root}/cluster-b`];
    for (const [i, db] of dbs.entries()) {
      const master = await spawnMaster(['--db', db, '--volumes', set.volumes.join(','), '--replicas', '2']);
      for (let k = 0; k < 3 + i; k++) assert.equal((await http('PUT', `${master.url}/cluster-${i}/${k}`, `value ${k}`)).status, 201);
      await stopMaster(master);
    }
    const first = await runMkv(['log', 'import', '--db', dbs[0]!, '--log', stream]);
    assert.equal(first.status, 0, first.stderr);
    const before = await runMkv(['log', 'dump', '--log', stream]);
    // The other cluster's log is longer, but its first event is not this stream's.
    const other = await runMkv(['log', 'import', '--db', dbs[1]!, '--log', stream]);
    assert.equal(other.status, 2, other.stdout + other.stderr);
    assert.match(
      other.stderr,
      /is not a beginning of .*: at seq 1 it holds WriteStarted of \/cluster-0\/0 .* where .* holds WriteStarted of \/cluster-1\/0/,
    );
    assert.equal(other.stderr.trim().split('\n').length, 1, 'one line');
    assert.equal((await runMkv(['log', 'dump', '--log', stream])).stdout, before.stdout, 'the stream is as it was');
    // mkv audit reads a stream as it reads DB/log.
    const fromStream = await runMkv(['audit', '--log', stream, '--prefix', '/cluster-0/', '--change', 'WriteCommitted']);
    assert.equal(fromStream.status, 0, fromStream.stderr);
    const fromDb = await runMkv(['audit', '--db', dbs[0]!, '--prefix', '/cluster-0/', '--change', 'WriteCommitted']);
    assert.equal(fromStream.stdout, fromDb.stdout);
    assert.equal(fromStream.stdout.trim().split('\n').length, 3);
  });
});

describe('a three-node JetStream cluster', { skip: natsSkipReason(), timeout: 120_000 }, () => {
  test('with one node stopped, writes go on and nothing acknowledged is lost', async () => {
    const shared = await startSharedStreamCluster('mkv-jetstream-cluster-');
    const cluster = shared.nats;
    const serve = () => shared.spawn('db', undefined, '--log-replicas', '3', '--admin-port', '0');
    let master = await serve();
    try {
      const acknowledged = new Map<string, string>();
      /** Whether the master's /readyz finds the stream answering (its leader elected, reachable from the master's node). */
      const logAnswers = async () =>
        JSON.parse((await http('GET', `${adminUrlOf(master)}/readyz`, undefined, {}, 20_000)).text).checks.log === 'ok';
      /** Writes fresh keys until `count` are acknowledged (201); during a leader election some answer 503. */
      const writeSome = async (prefix: string, count: number) => {
        const deadline = Date.now() + 60_000;
        for (let n = 0; [...acknowledged.keys()].filter((key) => key.startsWith(prefix)).length < count; n++) {
          assert.ok(Date.now() < deadline, `writes under ${prefix} did not resume within 60 s`);
          const key = `${prefix}${n}`;
          // Bounded: a PUT that hangs fails the test here, and the finally still stops the cluster.
          const reply = await http('PUT', `${master.url}${key}`, `value of ${key}`, {}, 20_000);
          if (reply.status === 201) acknowledged.set(key, reply.headers['log-seq']!);
          else {
            assert.ok([503, 409].includes(reply.status), `PUT ${key}: ${reply.status} ${reply.text}`);
            // The next write once the stream answers again, not before.
            await until('the stream to answer the master again', logAnswers, Math.max(deadline - Date.now(), 0));
          }
        }
      };
      await writeSome('/three/', 10);
      // The node listed first: the master is most likely connected to it.
      await cluster.stop(0);
      await writeSome('/two/', 10);
      await cluster.start(0);
      await writeSome('/three-again/', 5);
      assert.equal(acknowledged.size, 25);
      await stopMaster(master);
      master = await serve();
      for (const [key, seq] of acknowledged)
        assert.deepEqual(await readThrough(`${master.url}${key}`, seq), { status: 200, text: `value of ${key}` });
    } finally {
      await shared.close();
    }
  });
});
