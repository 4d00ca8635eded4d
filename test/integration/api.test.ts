// The whole minikeyvalue API on a real master (port 0, real LMDB, real log) over real volume
// servers: once on embedded volumes, once on stock nginx.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { keyToPath, keyToVolumes } from '../../src/placement.js';
import { getFollowing, http } from '../helpers/http.js';
import { until } from '../helpers/wait.js';
import { nginxSkipReason, removeDir, startMaster, startVolumes, type TestMaster, type VolumeSet } from '../helpers/cluster.js';

const md5 = (data: string | Buffer) => createHash('md5').update(data).digest('hex');

/** Where a volume set keeps a key's blob for (sub)volume name `volume`. */
function blobFile(set: VolumeSet, volume: string, key: string): string {
  const [host, subvolume] = volume.split('/');
  const dir = set.dirs[set.volumes.indexOf(host!)]!;
  return join(dir, subvolume ?? '', keyToPath(key));
}

/** Sends a request by hand, for bodies no HTTP client will send (shorter than Content-Length). */
function rawRequest(port: number, head: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head + body));
    let reply = '';
    socket.on('data', (chunk) => (reply += chunk.toString()));
    socket.on('end', () => resolve(reply));
    socket.on('error', reject);
  });
}

/**
 * The API contract. `nativePath` false sends every request through the Koa app; true (the
 * server's default) answers the hot verbs before Koa: both must answer alike.
 */
function apiSuite(kind: 'embedded' | 'nginx', skip: string | false, nativePath = true): void {
  describe(`API on ${kind} volumes${nativePath ? '' : ', every request through Koa'}`, { skip }, () => {
    let set: VolumeSet;
    let master: TestMaster;
    let url: string;
    before(async () => {
      set = await startVolumes(kind, 3);
      master = await startMaster(set.volumes, { bodyTimeoutMs: 500, voltimeoutMs: 500 }, { nativePath });
      url = master.url;
    });
    after(async () => {
      await master?.close();
      await set?.close();
      if (master) removeDir(master.db);
    });

    test('PUT then GET: 201, then 302 to a replica with Content-Md5, Key-Volumes, Key-Balance', async () => {
      assert.equal((await http('PUT', `${url}/wehave`, 'bigswag')).status, 201);
      const reply = await http('GET', `${url}/wehave`);
      assert.equal(reply.status, 302);
      assert.equal(reply.headers['content-length'], '0');
      assert.equal(reply.headers['content-md5'], md5('bigswag'));
      assert.equal(reply.headers['key-balance'], 'balanced');
      const expected = keyToVolumes('/wehave', set.volumes, 3, 10);
      assert.equal(reply.headers['key-volumes'], expected.join(','));
      assert.ok(
        expected.some((volume) => reply.headers.location === `http://${volume}/60/08/L3dlaGF2ZQ==`),
        reply.headers.location,
      );
      assert.equal((await getFollowing(`${url}/wehave`)).text, 'bigswag');
      const head = await http('HEAD', `${url}/wehave`);
      assert.equal(head.status, 302);
      assert.equal(head.headers['content-md5'], md5('bigswag'));
      for (const volume of expected) assert.equal(readFileSync(blobFile(set, volume, '/wehave'), 'utf8'), 'bigswag');
    });

    test('PUT of an existing key is 403; an empty or missing body is 411', async () => {
      await http('PUT', `${url}/exists`, 'one');
      const again = await http('PUT', `${url}/exists`, 'two');
      assert.equal(again.status, 403);
      assert.match(again.text, /MKV_EXISTS/);
      assert.equal((await getFollowing(`${url}/exists`)).text, 'one');
      assert.equal((await http('PUT', `${url}/empty`, '')).status, 411);
      assert.equal((await http('PUT', `${url}/empty`)).status, 411);
      assert.equal((await http('GET', `${url}/empty`)).status, 404);
    });

    test('GET and HEAD of a missing key: 404 with Content-Length 0', async () => {
      for (const method of ['GET', 'HEAD']) {
        const reply = await http(method, `${url}/nothing-here`);
        assert.equal(reply.status, 404);
        assert.equal(reply.headers['content-length'], '0');
      }
    });

    test('UNLINK hides the key but keeps the blob; listed in ?unlinked; a PUT may replace it', async () => {
      await http('PUT', `${url}/unlinkme`, 'soft');
      assert.equal((await http('UNLINK', `${url}/unlinkme`)).status, 204);
      assert.equal((await http('GET', `${url}/unlinkme`)).status, 404);
      assert.equal((await http('UNLINK', `${url}/unlinkme`)).status, 404);
      const [volume] = keyToVolumes('/unlinkme', set.volumes, 3, 10);
      assert.ok(existsSync(blobFile(set, volume!, '/unlinkme')), 'the blob stays on the volume');
      assert.ok(JSON.parse((await http('GET', `${url}/?unlinked`)).text).keys.includes('/unlinkme'));
      assert.ok(!JSON.parse((await http('GET', `${url}/?list`)).text).keys.includes('/unlinkme'));
      assert.equal((await http('PUT', `${url}/unlinkme`, 'hard')).status, 201);
      assert.equal((await getFollowing(`${url}/unlinkme`)).text, 'hard');
    });

    test('LINK undoes an UNLINK; 404 when the key is not unlinked', async () => {
      await http('PUT', `${url}/linkme`, 'x');
      assert.equal((await http('LINK', `${url}/linkme`)).status, 404);
      await http('UNLINK', `${url}/linkme`);
      assert.equal((await http('LINK', `${url}/linkme`)).status, 204);
      assert.equal((await getFollowing(`${url}/linkme`)).text, 'x');
    });

    test('DELETE removes the key and every replica: 204, then 404', async () => {
      await http('PUT', `${url}/deleteme`, 'bye');
      const volumes = keyToVolumes('/deleteme', set.volumes, 3, 10);
      assert.equal((await http('DELETE', `${url}/deleteme`)).status, 204);
      for (const volume of volumes) assert.ok(!existsSync(blobFile(set, volume, '/deleteme')));
      assert.equal((await http('GET', `${url}/deleteme`)).status, 404);
      assert.equal((await http('DELETE', `${url}/deleteme`)).status, 404);
      await http('PUT', `${url}/deleteme2`, 'bye');
      await http('UNLINK', `${url}/deleteme2`);
      assert.equal((await http('DELETE', `${url}/deleteme2`)).status, 204, 'an unlinked key can be deleted');
    });

    test("a write with a query is refused, never taken as the key's: DELETE /k?tagging deletes nothing", async () => {
      assert.equal((await http('PUT', `${url}/qb/queried`, 'kept')).status, 201);
      // S3's sub-resources are S3 operations, whoever sends them (DeleteObjectTagging removes no value).
      assert.equal((await http('DELETE', `${url}/qb/queried?tagging`)).status, 204);
      for (const [method, target] of [
        ['DELETE', '/qb/queried?x=1'],
        ['UNLINK', '/qb/queried?foo'],
        ['PUT', '/qb/queried?bar'],
        ['LINK', '/qb/queried?baz'],
      ] as const) {
        const refused = await http(method, `${url}${target}`, method === 'PUT' ? 'replaced' : undefined);
        assert.equal(refused.status, 400, `${method} ${target}`);
        assert.match(refused.text, /takes no query/);
      }
      assert.equal((await http('PUT', `${url}/qb/queried?tagging`, '<Tagging/>')).status, 501, 'PutObjectTagging');
      assert.equal((await getFollowing(`${url}/qb/queried`)).body.toString(), 'kept');
    });

    test('list: prefix, sorted bytewise, limit/next, start; bad limit 400; unknown op 403', async () => {
      for (const key of ['/list/b', '/list/a', '/list/c', '/list/é', '/lisz']) await http('PUT', `${url}${encodeURI(key)}`, 'v');
      const all = JSON.parse((await http('GET', `${url}/list/?list`)).text);
      assert.deepEqual(all, { next: '', keys: ['/list/a', '/list/b', '/list/c', '/list/é'] });
      const page = JSON.parse((await http('GET', `${url}/list/?list&limit=2`)).text);
      assert.deepEqual(page, { next: '/list/c', keys: ['/list/a', '/list/b'] });
      const rest = JSON.parse((await http('GET', `${url}/list/?list&limit=2&start=${encodeURIComponent(page.next)}`)).text);
      assert.deepEqual(rest, { next: '', keys: ['/list/c', '/list/é'] });
      const listed = await http('GET', `${url}/list/?list`);
      assert.match(listed.headers['content-type']!, /application\/json/);
      for (const bad of ['abc', '0', '-1', '1.5', '']) {
        if (bad === '') continue;
        const reply = await http('GET', `${url}/list/?list&limit=${bad}`);
        assert.equal(reply.status, 400, `limit=${bad}`);
        assert.match(reply.text, /MKV_BAD_QUERY/);
      }
      assert.equal((await http('GET', `${url}/list/a?frobnicate`)).status, 403);
    });

    test('?history: every event of the key, oldest first, with who caused it', async () => {
      await http('PUT', `${url}/audited`, 'a');
      await http('UNLINK', `${url}/audited`);
      await http('DELETE', `${url}/audited`);
      const reply = await http('GET', `${url}/audited?history`);
      assert.equal(reply.status, 200);
      const events = JSON.parse(reply.text) as Array<{
        seq: number;
        type: string;
        origin: string;
        client: string;
        md5?: string;
        size?: number;
      }>;
      assert.deepEqual(
        events.map((e) => e.type),
        ['WriteStarted', 'WriteCommitted', 'KeyUnlinked', 'DeleteStarted', 'KeyDeleted'],
      );
      assert.ok(events.every((e, i) => i === 0 || e.seq > events[i - 1]!.seq));
      assert.ok(events.every((e) => e.origin === 'api' && /127\.0\.0\.1/.test(e.client)));
      assert.equal(events[1]!.md5, md5('a'));
      assert.equal(events[1]!.size, 1);
      assert.equal((await http('GET', `${url}/never-seen?history`)).status, 404);
    });

    test('odd keys: unicode, spaces, an encoded ?, a base64 with / and one ending in /', async () => {
      for (const key of ['/swag-é中', '/with space', '/what?', '/???', '/п', '/a/b/c/']) {
        const path = key.split('/').map(encodeURIComponent).join('/');
        assert.equal((await http('PUT', `${url}${path}`, `value of ${key}`)).status, 201, key);
        assert.equal((await getFollowing(`${url}${path}`)).text, `value of ${key}`, key);
        const [volume] = keyToVolumes(key, set.volumes, 3, 10);
        assert.ok(existsSync(blobFile(set, volume!, key)), `${key} is at its placement path`);
      }
      assert.ok(existsSync(blobFile(set, keyToVolumes('/п', set.volumes, 3, 10)[0]!, '/п')));
      assert.match(keyToPath('/п'), /_$/);
    });

    test('bad keys get a clear 400 and nothing is written', async () => {
      const before = master.store.log.lastSeq;
      const invalid = await http('PUT', `${url}/bad%ff%fe`, 'x');
      assert.equal(invalid.status, 400);
      assert.match(invalid.text, /UTF-8/);
      const tooLongForIndex = await http('PUT', `${url}/${'k'.repeat(2000)}`, 'x');
      assert.equal(tooLongForIndex.status, 400);
      assert.match(tooLongForIndex.text, /index/);
      const tooLongForName = await http('PUT', `${url}/${'n'.repeat(200)}`, 'x');
      assert.equal(tooLongForName.status, 400);
      assert.match(tooLongForName.text, /file name/);
      assert.equal((await http('GET', `${url}/bad%ff`)).status, 400);
      assert.equal(master.store.log.lastSeq, before, 'no event was appended');
    });

    test('32 concurrent PUTs of one key: exactly one 201, the rest 409 or 403', async () => {
      const replies = await Promise.all(Array.from({ length: 32 }, (_, i) => http('PUT', `${url}/contended`, `writer ${i}`)));
      const statuses = replies.map((reply) => reply.status);
      assert.equal(statuses.filter((status) => status === 201).length, 1, statuses.join(','));
      assert.ok(
        statuses.every((status) => status === 201 || status === 409 || status === 403),
        statuses.join(','),
      );
      const winner = replies.findIndex((reply) => reply.status === 201);
      assert.equal((await getFollowing(`${url}/contended`)).text, `writer ${winner}`);
    });

    test('a chunked PUT (no Content-Length) streams through', async () => {
      const body = Readable.from([Buffer.from('chunk one, '), Buffer.from('chunk two')]);
      assert.equal((await http('PUT', `${url}/chunked`, body)).status, 201);
      const reply = await http('GET', `${url}/chunked`);
      assert.equal(reply.headers['content-md5'], md5('chunk one, chunk two'));
      assert.equal((await getFollowing(`${url}/chunked`)).text, 'chunk one, chunk two');
    });

    test('a body shorter than its Content-Length gets 400 and leaves no key', async () => {
      // A small value is read whole before anything is written: the log never hears of it.
      const reply = await rawRequest(master.port, 'PUT /shortbody HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n', 'only ten b');
      assert.match(reply, /^HTTP\/1\.1 400/);
      assert.match(reply, /MKV_SHORT_BODY/);
      assert.equal((await http('GET', `${url}/shortbody`)).status, 404);
      assert.equal((await http('GET', `${url}/shortbody?history`)).status, 404, 'no event');
      assert.equal((await http('PUT', `${url}/shortbody`, 'now whole')).status, 201);
      // A large one is streamed to the replicas as it arrives: started, then aborted and removed.
      const large = await rawRequest(
        master.port,
        'PUT /shortlarge HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n',
        'x'.repeat(300_000),
      );
      assert.match(large, /^HTTP\/1\.1 400/);
      assert.match(large, /MKV_SHORT_BODY/);
      assert.equal((await http('GET', `${url}/shortlarge`)).status, 404);
      const history = JSON.parse((await http('GET', `${url}/shortlarge?history`)).text) as Array<{ type: string }>;
      assert.deepEqual(
        history.map((e) => e.type),
        ['WriteStarted', 'WriteAborted'],
      );
      for (const volume of keyToVolumes('/shortlarge', set.volumes, 3, 10))
        assert.equal(existsSync(blobFile(set, volume, '/shortlarge')), false);
    });

    test('the native path and Koa send the same statuses, headers and bodies', async () => {
      /** One raw exchange, with what differs by key or by moment taken out. */
      const exchange = async (base: string, method: string, key: string, body?: string) => {
        const port = new URL(base).port;
        const length = body === undefined ? '' : `Content-Length: ${Buffer.byteLength(body)}\r\n`;
        const reply = await rawRequest(
          Number(port),
          `${method} ${key} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${length}\r\n`,
          body ?? '',
        );
        const [head, ...rest] = reply.split('\r\n\r\n');
        const [status, ...lines] = head!.split('\r\n');
        const headers = lines
          .map(
            (line) =>
              line.toLowerCase().split(':')[0]! +
              (/^(date|location|key-volumes|log-seq):/i.test(line) ? '' : line.slice(line.indexOf(':'))),
          )
          .sort();
        return { status, headers, body: rest.join('\r\n\r\n').replaceAll(key, 'KEY') };
      };
      const steps: Array<[string, string, string?]> = [
        ['PUT', '', 'value'],
        ['PUT', '', 'other'],
        ['GET', ''],
        ['HEAD', ''],
        ['PUT', '/empty', ''],
        ['GET', '/missing'],
        ['UNLINK', ''],
        ['GET', ''],
        ['UNLINK', ''],
        ['LINK', ''],
        ['LINK', ''],
        ['DELETE', ''],
        ['DELETE', ''],
        ['GET', '/%zz'],
        ['PUT', '/a/../b', 'x'],
        ['GET', `/${'k'.repeat(2000)}`],
        ['DELETE', '/a/./b'],
      ];
      for (const [method, suffix, body] of steps) {
        const native = await exchange(master.url, method, `/alike/nat${suffix}`, body);
        const koa = await exchange(master.koaUrl, method, `/alike/koa${suffix}`, body);
        assert.deepEqual(native, koa, `${method} ${suffix}`);
      }
    });

    test('a big PUT refused before its body is read gets its answer, not a reset, while the client is still sending', async () => {
      assert.equal((await http('PUT', `${url}/refused-big`, 'exists')).status, 201);
      for (let round = 0; round < 5; round++) {
        // As curl without Expect: the whole body goes out, and the answer is read when it comes.
        const socket = connect(master.port, '127.0.0.1');
        const errors: string[] = [];
        socket.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
        let answer = '';
        const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
        socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
        const size = 32 * 1024 * 1024;
        socket.write(`PUT /refused-big HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
        const chunk = Buffer.alloc(256 * 1024, 0x41);
        for (let sent = 0; sent < size && answer === '' && !socket.destroyed; sent += chunk.length)
          if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
        socket.end();
        await closed;
        assert.match(answer, /^HTTP\/1\.1 403 /, `round ${round}: the answer arrived (${answer.slice(0, 40)})`);
        assert.deepEqual(errors, [], `round ${round}: no reset under the answer`);
      }
    });

    test('a PUT over an unlinked key whose client goes away mid-body leaves the unlinked value for LINK', async () => {
      assert.equal((await http('PUT', `${url}/kept-unlinked`, 'the original')).status, 201);
      assert.equal((await http('UNLINK', `${url}/kept-unlinked`)).status, 204);
      const socket = connect(master.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('PUT /kept-unlinked HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n');
      socket.write(Buffer.alloc(300_000, 0x42));
      const historyOf = async () =>
        (JSON.parse((await http('GET', `${url}/kept-unlinked?history`)).text) as Array<{ type: string }>).map((event) => event.type);
      let history: string[] = [];
      await until('the write to begin', async () => (history = await historyOf()).length === 4);
      socket.destroy();
      await until('the write to be undone', async () => (history = await historyOf()).at(-1) === 'WriteUndone');
      assert.deepEqual(history, ['WriteStarted', 'WriteCommitted', 'KeyUnlinked', 'WriteStarted', 'WriteUndone']);
      assert.equal((await http('LINK', `${url}/kept-unlinked`)).status, 204);
      assert.equal((await getFollowing(`${url}/kept-unlinked`)).text, 'the original');
    });

    test('GET finds a surviving replica when one lost its copy; 404 when none has it', async () => {
      await http('PUT', `${url}/fragile`, 'f');
      const volumes = keyToVolumes('/fragile', set.volumes, 3, 10);
      for (const volume of volumes.slice(0, 2)) await http('DELETE', `http://${volume}${keyToPath('/fragile')}`);
      for (let i = 0; i < 5; i++) {
        const reply = await http('GET', `${url}/fragile`);
        assert.equal(reply.status, 302);
        assert.equal(reply.headers.location, `http://${volumes[2]}${keyToPath('/fragile')}`);
      }
      await http('DELETE', `http://${volumes[2]}${keyToPath('/fragile')}`);
      assert.equal((await http('GET', `${url}/fragile`)).status, 404);
    });

    test('a dead volume: PUT answers 500 and leaves no live key; the retry works once it is back', async () => {
      const key = '/needs-all-three';
      await set.stop(1);
      try {
        const reply = await http('PUT', `${url}${key}`, 'payload');
        assert.equal(reply.status, 500);
        assert.match(reply.text, /MKV_VOLUME_FAILED/);
        assert.equal((await http('GET', `${url}${key}`)).status, 404);
        // The log names the attempt: WriteStarted, then aborted or left pending.
        const history = JSON.parse((await http('GET', `${url}${key}?history`)).text) as Array<{ type: string }>;
        assert.equal(history[0]!.type, 'WriteStarted');
        // The dead volume's partial replica could not be removed: the key stays pending, listed
        // with the unlinked keys (as the original listed a failed write) until a retry or DELETE.
        assert.equal(master.store.index.get(key)?.state, 'pending');
        assert.ok(JSON.parse((await http('GET', `${url}/?unlinked`)).text).keys.includes(key));
        assert.equal((await http('UNLINK', `${url}${key}`)).status, 404);
      } finally {
        await set.start(1);
      }
      assert.equal((await http('PUT', `${url}${key}`, 'payload')).status, 201);
      assert.equal((await getFollowing(`${url}${key}`)).text, 'payload');
    });

    test('DELETE with a dead volume: 500, the key stays unlinked and listed; DELETE again later works', async () => {
      const key = '/delete-while-down';
      await http('PUT', `${url}${key}`, 'x');
      await set.stop(2);
      try {
        const reply = await http('DELETE', `${url}${key}`);
        assert.equal(reply.status, 500);
        assert.ok(JSON.parse((await http('GET', `${url}/?unlinked`)).text).keys.includes(key));
        assert.equal((await http('GET', `${url}${key}`)).status, 404);
      } finally {
        await set.start(2);
      }
      assert.equal((await http('DELETE', `${url}${key}`)).status, 204);
      assert.ok(!JSON.parse((await http('GET', `${url}/?unlinked`)).text).keys.includes(key));
    });

    test('a 100 MB PUT streams: the master does not hold the value in memory', async () => {
      const size = 100 * 1024 * 1024;
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      const hash = createHash('md5');
      for (let i = 0; i < 100; i++) hash.update(chunk);
      const body = Readable.from(
        (function* () {
          for (let i = 0; i < 100; i++) yield chunk;
        })(),
      );
      const reply = await http('PUT', `${url}/big`, body, { 'content-length': String(size) });
      assert.equal(reply.status, 201);
      const head = await http('HEAD', `${url}/big`);
      assert.equal(head.headers['content-md5'], hash.digest('hex'));
      assert.equal(master.store.index.get('/big')?.size, size);
    });
  });
}

apiSuite('embedded', false);
apiSuite('embedded', false, false);
apiSuite('nginx', nginxSkipReason());

describe('API flags', () => {
  let set: VolumeSet;
  before(async () => {
    set = await startVolumes('embedded', 2);
  });
  after(() => set?.close());

  test('--protect: DELETE of a live key is 403 until it is unlinked', async () => {
    const master = await startMaster(set.volumes, { protect: true, replicas: 2 });
    try {
      await http('PUT', `${master.url}/kept`, 'x');
      const refused = await http('DELETE', `${master.url}/kept`);
      assert.equal(refused.status, 403);
      assert.match(refused.text, /MKV_PROTECTED/);
      assert.equal((await http('UNLINK', `${master.url}/kept`)).status, 204);
      assert.equal((await http('DELETE', `${master.url}/kept`)).status, 204);
    } finally {
      await master.close();
      removeDir(master.db);
    }
  });

  test('--fallback: a missing key redirects there', async () => {
    const master = await startMaster(set.volumes, { fallback: '127.0.0.1:9', replicas: 2 });
    try {
      const reply = await http('GET', `${master.url}/elsewhere%20too`);
      assert.equal(reply.status, 302);
      assert.equal(reply.headers.location, 'http://127.0.0.1:9/elsewhere%20too');
    } finally {
      await master.close();
      removeDir(master.db);
    }
  });

  test('--md5sum=false: no Content-Md5; 1 replica, 1 subvolume puts the blob at the volume root', async () => {
    const master = await startMaster(set.volumes, { md5sum: false, replicas: 1, subvolumes: 1 });
    try {
      assert.equal((await http('PUT', `${master.url}/plain`, 'x')).status, 201);
      const reply = await http('GET', `${master.url}/plain`);
      assert.equal(reply.status, 302);
      assert.equal(reply.headers['content-md5'], undefined);
      const [volume] = keyToVolumes('/plain', set.volumes, 1, 1);
      assert.equal(reply.headers.location, `http://${volume}${keyToPath('/plain')}`);
    } finally {
      await master.close();
      removeDir(master.db);
    }
  });
});
