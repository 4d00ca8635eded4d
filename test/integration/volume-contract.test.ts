// One contract, two volume servers: the embedded one (`mkv volume`) and stock nginx with the
// project's config. Whatever the master and the rescans rely on is asserted here for both.
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { VolumeClient } from '../../src/volumes/client.js';
import { signQuery } from '../../src/volumes/signing.js';
import { http } from '../helpers/http.js';
import { nginxSkipReason, startVolumes, type VolumeSet } from '../helpers/cluster.js';

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
        setTimeout(() => sending.abort(new Error('given up while sending')), 100);
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
    const signed = (path: string, op: 'read' | 'write', expires = inAMinute()) => `${base}${path}?${signQuery(secret, path, op, expires)}`;

    test("the master's client, signing every request, does all it does on an open volume", async () => {
      const volume = set.volumes[0]!;
      const client = new VolumeClient({ requestTimeoutMs: 10_000, secret });
      try {
        await client.put(`${volume}/sv03`, '/ab/cd/c2lnbmVk', Readable.from([Buffer.from('streamed')]), 8);
        await client.put(`${volume}/sv03`, '/ab/cd/c21hbGw=', Buffer.from('small'), 5);
        assert.deepEqual(await client.head(`${volume}/sv03`, '/ab/cd/c2lnbmVk'), { status: 'found', size: 8 });
        const got = await client.get(`${volume}/sv03`, '/ab/cd/c21hbGw=');
        assert.equal(got.statusCode, 200);
        assert.equal(Buffer.concat(await got.body.toArray()).toString(), 'small');
        assert.deepEqual((await client.list(`${volume}/sv03`, '/ab/cd/')).map((entry) => entry.name).sort(), ['c21hbGw=', 'c2lnbmVk']);
        assert.equal(
          (await http('GET', client.publicUrl(`${volume}/sv03`, '/ab/cd/c21hbGw='))).text,
          'small',
          'the link a redirect gives reads the blob',
        );
        assert.equal(await client.delete(`${volume}/sv03`, '/ab/cd/c2lnbmVk'), 'deleted');
      } finally {
        await client.close();
      }
    });

    test('anyone else on the port: no read, write, delete or listing without a link, and a read link only reads', async () => {
      const path = '/sv01/60/08/L3dlaGF2ZQ==';
      assert.equal((await http('PUT', signed(path, 'write'), 'the value')).status, 201);
      for (const [method, url] of [
        ['GET', base + path],
        ['HEAD', base + path],
        ['PUT', base + path],
        ['DELETE', base + path],
        ['GET', `${base}/sv01/60/`],
        ['GET', `${base}/`],
      ] as const) {
        assert.equal((await http(method, url, method === 'PUT' ? 'evil' : undefined)).status, 403, `${method} ${url}`);
      }
      assert.equal((await http('GET', signed(path, 'read'))).text, 'the value');
      assert.equal((await http('GET', signed(path, 'read'), undefined, { range: 'bytes=4-8' })).text, 'value');
      assert.equal((await http('PUT', signed(path, 'read'), 'evil')).status, 403, 'a read link does not write');
      assert.equal((await http('DELETE', signed(path, 'read'))).status, 403, 'nor delete');
      assert.equal(
        (await http('GET', signed(path, 'read', Math.floor(Date.now() / 1000) - 5))).status,
        403,
        'an expired link reads nothing',
      );
      assert.equal((await http('GET', signed(path, 'read').replace('L3dlaGF2ZQ==', 'L2hlbGxv'))).status, 403, 'a link reads only its blob');
      assert.equal((await http('GET', signed(path, 'read'))).text, 'the value', 'and the value is as it was');
    });
  });
}

securedContract('embedded', false);
securedContract('nginx', nginxSkipReason());
