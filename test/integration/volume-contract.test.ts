// One contract, two volume servers: the embedded one (`mkv volume`) and stock nginx with the
// project's config. Whatever the master and the rescans rely on is asserted here for both.
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { VolumeClient } from '../../src/volumes/client.js';
import { signHeaders, signQuery, type VolumeOp } from '../../src/volumes/signing.js';
import { http } from '../helpers/http.js';
import { until } from '../helpers/wait.js';
import {
  freePort,
  nginxSkipReason,
  nginxVolumeScript,
  removeDir,
  startVolumes,
  tempDir,
  waitForHttp,
  type VolumeSet,
} from '../helpers/cluster.js';

/**
 * A request whose path goes out exactly as written (undici, as a browser, would resolve "." and
 * ".." first): for the paths a volume must normalize as nginx does.
 */
function raw(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<number> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const sent = httpRequest({ host: hostname, port, method, path, headers, agent: false }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode!));
    });
    sent.on('error', reject);
    sent.end(body);
  });
}

function volumeContract(kind: 'embedded' | 'nginx', skip: string | false): void {
  describe(`volume server contract: ${kind}`, { skip }, () => {
    let set: VolumeSet;
    let base: string;
    before(async () => {
      set = await startVolumes(kind, 1);
      base = `http://${set.volumes[0]}`;
    });
    after(() => set?.close());

    test('PUT creates the full path: 201 new, 204 replaced; GET returns the bytes', async () => {
      const path = '/sv07/60/08/L3dlaGF2ZQ==';
      assert.equal((await http('PUT', base + path, 'first')).status, 201);
      assert.equal((await http('GET', base + path)).text, 'first');
      assert.equal((await http('PUT', base + path, 'second!')).status, 204);
      const got = await http('GET', base + path);
      assert.equal(got.status, 200);
      assert.equal(got.text, 'second!');
      assert.equal(got.headers['content-length'], '7');
      // A blob is the volume's own: no other local user reads it.
      assert.equal(statSync(join(set.dirs[0]!, path)).mode & 0o007, 0, 'not world-readable');
    });

    test('a base64 name with / is a deeper directory; + and = are literal', async () => {
      const path = '/27/6f/Lz8/Pw==';
      assert.equal((await http('PUT', base + path, 'q')).status, 201);
      assert.equal((await http('GET', base + '/27/6f/Lz8/')).status, 200);
      const plus = '/aa/bb/a+b=';
      assert.equal((await http('PUT', base + plus, 'plus')).status, 201);
      assert.equal((await http('GET', base + plus)).text, 'plus');
    });

    test('HEAD answers 200 with the length and no body, 404 when missing', async () => {
      await http('PUT', base + '/h/e/ad', 'twelve bytes');
      const head = await http('HEAD', base + '/h/e/ad');
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], '12');
      assert.equal(head.body.length, 0);
      assert.equal((await http('HEAD', base + '/h/e/missing')).status, 404);
    });

    test('Range: one byte range is 206 with Content-Range; past the end is 416', async () => {
      await http('PUT', base + '/r/a/nge', '0123456789');
      const part = await http('GET', base + '/r/a/nge', undefined, { range: 'bytes=2-4' });
      assert.equal(part.status, 206);
      assert.equal(part.text, '234');
      assert.equal(part.headers['content-range'], 'bytes 2-4/10');
      const suffix = await http('GET', base + '/r/a/nge', undefined, { range: 'bytes=-3' });
      assert.equal(suffix.text, '789');
      const open = await http('GET', base + '/r/a/nge', undefined, { range: 'bytes=7-' });
      assert.equal(open.text, '789');
      assert.equal((await http('GET', base + '/r/a/nge', undefined, { range: 'bytes=20-' })).status, 416);
    });

    test("the master's client: PUT stores, DELETE answers deleted then missing; an aborted PUT rejects with its reason and stores nothing, queued or sending", async () => {
      const volume = set.volumes[0]!;
      // One connection: the second PUT below waits for the first one's.
      const client = new VolumeClient({ requestTimeoutMs: 10_000, connectionsPerVolume: 1 });
      try {
        await client.put(volume, '/c/l/ient', Readable.from([Buffer.from('abc')]), 3);
        assert.equal((await http('GET', base + '/c/l/ient')).text, 'abc');
        assert.equal(await client.delete(volume, '/c/l/ient'), 'deleted');
        assert.equal(await client.delete(volume, '/c/l/ient'), 'missing');

        const stalled = new PassThrough();
        stalled.write(Buffer.alloc(64 * 1024, 1)); // the rest of the megabyte never comes
        const sending = new AbortController();
        const first = client.put(volume, '/c/l/sending', stalled, 1024 * 1024, sending.signal);
        const queued = new AbortController();
        const second = client.put(volume, '/c/l/queued', Readable.from([Buffer.from('never sent')]), 10, queued.signal);
        queued.abort(new Error('given up while queued'));
        // Sending: the client has taken the first 64 KB from the body.
        await until('the PUT to be sending', () => stalled.readableLength === 0);
        sending.abort(new Error('given up while sending'));
        await assert.rejects(first, /given up while sending/);
        await assert.rejects(second, /given up while queued/);
        assert.equal((await http('GET', base + '/c/l/sending')).status, 404);
        assert.equal((await http('GET', base + '/c/l/queued')).status, 404);
      } finally {
        await client.close();
      }
    });

    test('DELETE: 204, then 404', async () => {
      await http('PUT', base + '/d/e/l', 'x');
      assert.equal((await http('DELETE', base + '/d/e/l')).status, 204);
      assert.equal((await http('GET', base + '/d/e/l')).status, 404);
      assert.equal((await http('DELETE', base + '/d/e/l')).status, 404);
    });

    test('a directory listing is nginx autoindex JSON: directories first, name, type, mtime, size; no dot-files', async () => {
      await http('PUT', base + '/list/a/file1', 'abc');
      await http('PUT', base + '/list/a/sub/file2', 'de');
      const listing = await http('GET', base + '/list/a/');
      assert.equal(listing.status, 200);
      assert.match(listing.headers['content-type']!, /json/);
      const entries = JSON.parse(listing.text) as Array<{ name: string; type: string; mtime: string; size?: number }>;
      assert.deepEqual(
        entries.map(({ name, type, size }) => ({ name, type, size })),
        [
          { name: 'sub', type: 'directory', size: undefined },
          { name: 'file1', type: 'file', size: 3 },
        ],
      );
      assert.ok(entries.every((entry) => !Number.isNaN(Date.parse(entry.mtime))));
      const root = JSON.parse((await http('GET', base + '/')).text) as Array<{ name: string }>;
      assert.ok(
        root.every((entry) => !entry.name.startsWith('.')),
        'the upload spool is not listed',
      );
    });

    test('a directory without its trailing slash redirects to it', async () => {
      await http('PUT', base + '/redir/x', 'x');
      const reply = await http('GET', base + '/redir');
      assert.equal(reply.status, 301);
      assert.match(reply.headers.location!, /\/redir\/$/);
    });

    test('GET /health answers "ok" and serves no file; PUT and DELETE there write nothing', async () => {
      const health = await http('GET', `${base}/health`);
      assert.equal(health.status, 200);
      assert.equal(health.text, 'ok\n');
      assert.equal((await http('HEAD', `${base}/health`)).status, 200);
      assert.equal(await raw(base, 'PUT', '/health', {}, 'planted'), 200);
      assert.equal(await raw(base, 'DELETE', '/health'), 200);
      assert.equal(existsSync(join(set.dirs[0]!, 'health')), false, 'no file was written');
      assert.equal((await http('GET', `${base}/health`)).text, 'ok\n');
    });

    test("GET /.disk says the disk's free and total bytes, a subvolume's too; no PUT there writes anything", async () => {
      const client = new VolumeClient();
      try {
        // nginx serves what nginx/disk-report wrote when the volume started.
        let figures: Awaited<ReturnType<VolumeClient['disk']>>;
        await until('the disk figures', async () => (figures = await client.disk(set.volumes[0]!)) !== undefined);
        assert.ok(figures!.size > 0 && figures!.free <= figures!.size, JSON.stringify(figures));
        assert.ok(figures!.ageMs < 60_000, `fresh figures: ${figures!.ageMs} ms old`);
        const subvolume = await client.disk(`${set.volumes[0]}/sv03`);
        assert.equal(subvolume?.size, figures!.size);
      } finally {
        await client.close();
      }
      assert.match((await http('GET', `${base}/.disk`)).text, /^\s*\d+\s+\d+\s*$/);
      assert.notEqual(await raw(base, 'PUT', '/.disk', {}, '1 1'), 201);
      assert.match((await http('GET', `${base}/.disk`)).text, /^\s*\d+\s+\d+\s*$/, 'a PUT changed nothing');
      assert.equal(existsSync(join(set.dirs[0]!, '.disk')), false);
    });

    test('a large body streams through and comes back whole', async () => {
      const big = Buffer.alloc(8 * 1024 * 1024 + 3, 7);
      assert.equal((await http('PUT', base + '/big/x/y', big)).status, 201);
      const got = await http('GET', base + '/big/x/y');
      assert.equal(got.body.length, big.length);
      assert.ok(got.body.equals(big));
    });
  });
}

volumeContract('embedded', false);
volumeContract('nginx', nginxSkipReason());

/** A volume given the master's secret: it serves what the master signed, and nothing else. */
function securedContract(kind: 'embedded' | 'nginx', skip: string | false): void {
  describe(`volume server contract with a secret: ${kind}`, { skip }, () => {
    const secret = 'f00dfeed0123456789abcdef-_xyz';
    let set: VolumeSet;
    let base: string;
    before(async () => {
      set = await startVolumes(kind, 1, undefined, secret);
      base = `http://${set.volumes[0]}`;
    });
    after(() => set?.close());
    const inAMinute = () => Math.ceil(Date.now() / 1000) + 60;
    /** A redirect's link: reads `path` (the query form). */
    const readLink = (path: string, expires = inAMinute()) => `${base}${path}?${signQuery(secret, path, expires)}`;
    /** The master's signature of `op` on `path`, in its headers. */
    const signed = (path: string, op: VolumeOp, expires = inAMinute()) => signHeaders(secret, path, op, expires);
    /** The same signature in a URL's query, as a volume's log would have shown it. */
    const asQuery = (path: string, op: VolumeOp) => {
      const headers = signed(path, op);
      return `?md5=${headers['x-mkv-signature']}&expires=${headers['x-mkv-expires']}`;
    };

    test("the master's client, signing every request, does all it does on an open volume", async () => {
      const volume = set.volumes[0]!;
      const client = new VolumeClient({ requestTimeoutMs: 10_000, secret });
      try {
        await client.put(`${volume}/sv03`, '/ab/cd/c2lnbmVk', Readable.from([Buffer.from('streamed')]), 8);
        await client.put(`${volume}/sv03`, '/ab/cd/c21hbGw=', Buffer.from('small'), 5);
        assert.deepEqual(await client.head(`${volume}/sv03`, '/ab/cd/c2lnbmVk'), { status: 'found', size: 8 });
        assert.deepEqual(await client.head(`${volume}/sv03`, '/ab/cd/bm9uZQ=='), { status: 'missing' });
        const got = await client.get(`${volume}/sv03`, '/ab/cd/c21hbGw=', { range: 'bytes=1-3' });
        assert.equal(got.statusCode, 206);
        assert.equal(Buffer.concat(await got.body.toArray()).toString(), 'mal');
        assert.deepEqual((await client.list(`${volume}/sv03`, '/ab/cd/')).map((entry) => entry.name).sort(), ['c21hbGw=', 'c2lnbmVk']);
        assert.deepEqual(await client.list(`${volume}/sv03`, '/ab/no/'), [], 'a missing directory lists nothing');
        assert.equal((await client.head(`${volume}/sv03`, '/')).status, 'found', "the HEAD of a volume's root (the master's /readyz)");
        assert.equal(
          (await http('GET', client.publicUrl(`${volume}/sv03`, '/ab/cd/c21hbGw='))).text,
          'small',
          'the link a redirect gives reads the blob',
        );
        assert.equal(await client.delete(`${volume}/sv03`, '/ab/cd/c2lnbmVk'), 'deleted');
        assert.equal(await client.delete(`${volume}/sv03`, '/ab/cd/c2lnbmVk'), 'missing');
      } finally {
        await client.close();
      }
    });

    test('anyone else on the port: no read, write, delete or listing without a signature, and a read link only reads', async () => {
      const path = '/sv01/60/08/L3dlaGF2ZQ==';
      assert.equal((await http('PUT', base + path, 'the value', signed(path, 'put'))).status, 201);
      for (const [method, url] of [
        ['GET', base + path],
        ['HEAD', base + path],
        ['PUT', base + path],
        ['DELETE', base + path],
        ['GET', `${base}/sv01/60/`],
        ['GET', `${base}/`],
        ['GET', `${base}/.disk`],
      ] as const) {
        assert.equal((await http(method, url, method === 'PUT' ? 'evil' : undefined)).status, 403, `${method} ${url}`);
      }
      assert.equal((await http('GET', readLink(path))).text, 'the value');
      assert.equal((await http('GET', readLink(path), undefined, { range: 'bytes=4-8' })).text, 'value');
      assert.equal((await http('PUT', readLink(path), 'evil')).status, 403, 'a read link does not write');
      assert.equal((await http('DELETE', readLink(path))).status, 403, 'nor delete');
      assert.equal((await http('GET', readLink(path, Math.floor(Date.now() / 1000) - 5))).status, 403, 'an expired link reads nothing');
      assert.equal((await http('GET', readLink(path).replace('L3dlaGF2ZQ==', 'L2hlbGxv'))).status, 403, 'a link reads only its blob');
      const wrong = signHeaders('another-secret-0123456789', path, 'put', inAMinute());
      assert.equal((await http('PUT', base + path, 'evil', wrong)).status, 403, 'a signature made with another secret does nothing');
      assert.equal(
        (await http('PUT', base + path, 'evil', { ...signed(path, 'put'), 'x-mkv-expires': String(inAMinute() + 1) })).status,
        403,
      );
      assert.equal((await http('PUT', base + path, 'evil', { 'x-mkv-signature': signed(path, 'put')['x-mkv-signature']! })).status, 403);
      assert.equal((await http('GET', readLink(path))).text, 'the value', 'and the value is as it was');
      const master = new VolumeClient({ secret });
      try {
        const figures = await master.disk(set.volumes[0]!);
        assert.ok(figures && figures.free <= figures.size, 'the master, signing, reads the disk figures');
      } finally {
        await master.close();
      }
    });

    test('a signature does what it was made for and nothing else: method and blob or directory are in it', async () => {
      const blob = '/sv02/aa/bb/b3Bz';
      const directory = '/sv02/aa/bb/';
      // What each request needs; none: no signature lets it through.
      const requests: Array<[method: string, path: string, needs: VolumeOp | 'none']> = [
        ['GET', blob, 'read'],
        ['HEAD', blob, 'read'],
        ['GET', directory, 'list'],
        ['HEAD', directory, 'list'],
        ['PUT', blob, 'put'],
        ['DELETE', blob, 'delete'],
        ['DELETE', directory, 'none'],
        ['PUT', directory, 'none'],
        ['POST', blob, 'none'],
        ['MKCOL', `${directory}new/`, 'none'],
        ['COPY', blob, 'none'],
        ['MOVE', blob, 'none'],
        ['PROPFIND', directory, 'none'],
        ['OPTIONS', blob, 'none'],
      ];
      const ops: VolumeOp[] = ['read', 'list', 'put', 'delete'];
      const putBack = async () => assert.ok([201, 204].includes((await http('PUT', base + blob, 'ops', signed(blob, 'put'))).status));
      await putBack();
      for (const [method, path, needs] of requests) {
        for (const op of ops) {
          const status = await raw(base, method, path, { ...signed(path, op), destination: `${base}/sv02/moved` }, 'body');
          if (op === needs) assert.notEqual(status, 403, `${method} ${path} signed for ${op}`);
          else assert.equal(status, 403, `${method} ${path} signed for ${op}: ${status}`);
          if (method === 'DELETE' && op === needs) await putBack();
        }
      }
      assert.equal((await http('GET', readLink(blob))).text, 'ops', 'the blob is as the last signed PUT left it');
      assert.equal(existsSync(join(set.dirs[0]!, 'sv02/moved')), false);
    });

    test("a signature in the URL only reads: a put's, delete's or list's there does nothing, the same in headers does", async () => {
      const blob = '/sv04/cc/dd/cXVlcnk=';
      const directory = '/sv04/cc/dd/';
      assert.equal((await http('PUT', base + blob, 'kept', signed(blob, 'put'))).status, 201);
      assert.equal((await http('PUT', base + blob + asQuery(blob, 'put'), 'overwritten')).status, 403, 'PUT');
      assert.equal((await http('DELETE', base + blob + asQuery(blob, 'delete'))).status, 403, 'DELETE');
      assert.equal((await http('GET', base + directory + asQuery(directory, 'list'))).status, 403, 'a listing');
      assert.equal((await http('GET', base + blob + asQuery(blob, 'read'))).text, 'kept', 'a read');
      assert.equal((await http('GET', base + directory, undefined, signed(directory, 'list'))).status, 200);
      assert.equal(
        (await http('GET', readLink(directory))).status,
        403,
        "a read signature of a directory's own URI lists nothing: a listing is the list op",
      );
      assert.equal((await http('DELETE', base + blob, undefined, signed(blob, 'delete'))).status, 204);
    });

    test('the signed URI is the one nginx serves: a link works however its path is spelt, and only for that path', async () => {
      const blob = '/sv05/ee/ff/c3BlbHQ=';
      assert.equal((await http('PUT', base + blob, 'spelt', signed(blob, 'put'))).status, 201);
      const query = signQuery(secret, blob, inAMinute());
      for (const path of [
        '/sv05//ee/ff/c3BlbHQ=',
        '/sv05/./ee/ff/c3BlbHQ=',
        '/sv05/ee/xx/../ff/c3BlbHQ=',
        '/sv05/ee/ff/c3BlbHQ%3D',
        '/%73v05/ee/ff/c3BlbHQ=',
      ]) {
        assert.equal(await raw(base, 'GET', `${path}?${query}`), 200, path);
      }
      assert.equal(await raw(base, 'GET', `${base}${blob}?${query}`), 200, 'the absolute form of the target');
      for (const path of [
        '/sv05/ee/ff/c3BlbHQ=/',
        '/sv05/ee/ff/',
        '/sv05/ee/ff/c3BlbHQ=/..',
        '/sv05/ee/ff/c3BlbHQ=/.',
        '/sv05/ee/ff/c3BlbHQ',
      ]) {
        assert.equal(await raw(base, 'GET', `${path}?${query}`), 403, path);
      }
      assert.equal(await raw(base, 'GET', `/health/../sv05/ee/ff/c3BlbHQ=`), 403, 'the health path opens nothing else');
      assert.equal(await raw(base, 'GET', `/health/..%2Fsv05/ee/ff/c3BlbHQ=`), 403);
    });

    test('/health answers anyone "ok", and only that exact URI', async () => {
      assert.equal((await http('GET', `${base}/health`)).text, 'ok\n');
      assert.equal((await http('HEAD', `${base}/health`)).status, 200);
      assert.equal((await http('GET', `${base}/health?x=1`)).status, 200);
      assert.equal(await raw(base, 'GET', '/x/../health'), 200);
      for (const path of ['/health/', '/health/x', '/health/..', '/healthz', '/Health', '/health/.tmp/']) {
        assert.equal(await raw(base, 'GET', path), 403, path);
      }
      assert.equal(await raw(base, 'PUT', '/health', {}, 'planted'), 200);
      assert.equal(existsSync(join(set.dirs[0]!, 'health')), false, 'no file was written');
    });
  });
}

securedContract('embedded', false);
securedContract('nginx', nginxSkipReason());

describe('nginx/volume and the directory it serves', { skip: nginxSkipReason() }, () => {
  test('a second one on a directory a running one serves is refused; one left by a killed script is stopped and replaced', async () => {
    const dir = join(tempDir('mkv-volume-owner-'), 'volume');
    const [first, second] = [await freePort(), await freePort()];
    const start = (port: number) => spawn(nginxVolumeScript, [dir], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
    const running = start(first);
    let replacement: ReturnType<typeof start> | undefined;
    try {
      await waitForHttp(`http://127.0.0.1:${first}/health`, running);
      const refused = spawnSync(nginxVolumeScript, [dir], { env: { ...process.env, PORT: String(second) }, encoding: 'utf8' });
      assert.equal(refused.status, 2);
      assert.match(refused.stderr, /is served by a running nginx\/volume \(pid \d+\); stop it first/);
      assert.equal((await http('GET', `http://127.0.0.1:${first}/health`)).text, 'ok\n', 'the running volume still serves');

      // Its script killed with -9, its nginx is an orphan: the next start stops it and serves.
      running.kill('SIGKILL');
      replacement = start(second);
      await waitForHttp(`http://127.0.0.1:${second}/health`, replacement);
      await until('the orphan nginx to stop', () =>
        http('GET', `http://127.0.0.1:${first}/health`).then(
          () => false,
          () => true,
        ),
      );
    } finally {
      running.kill('SIGKILL');
      if (replacement) {
        const exited = new Promise((resolve) => replacement!.once('exit', resolve));
        replacement.kill('SIGTERM');
        await exited;
      }
      removeDir(join(dir, '..'));
    }
  });
});
