// --retain: every replaced value (overwritten, deleted) keeps its blob for the window after it was
// replaced, readable with ?version and ?at; a key deleted and written again gets a new blob path,
// so nothing kept is written over; the retention sweep removes what is past the window.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sweepRetained } from '../../src/keys/stale-sweeper.js';
import { silentLogger } from '../../src/logger.js';
import { blobPath } from '../../src/placement.js';
import { VolumeClient } from '../../src/volumes/client.js';
import { blobsIn } from '../helpers/blobs.js';
import { http } from '../helpers/http.js';
import { removeDir, startMaster, startVolumes, tempDir, type TestMaster, type VolumeSet } from '../helpers/cluster.js';
import { assertIndexEqualsReplay } from '../helpers/replay.js';
import { signedHeaders, type Signer } from '../helpers/sign.js';
import { parseCredentials, type Credentials } from '../../src/auth/credentials.js';
import type { MkvError } from '../../src/errors.js';
import { recordToRead } from '../../src/master/s3/versions.js';
import { createHash } from 'node:crypto';

const RETAIN_MS = 3_600_000;

interface Shown {
  seq: number;
  type: string;
  held?: boolean;
}

/** A master with --retain on `count` embedded volumes (each key on all of them), and a volume client. */
async function startRetaining(
  count: number,
  credentials?: Credentials,
): Promise<{ set: VolumeSet; master: TestMaster; volumes: VolumeClient }> {
  const set = await startVolumes('embedded', count);
  const overrides = { replicas: count, retainMs: RETAIN_MS, staleGraceMs: 0 };
  const master = await startMaster(set.volumes, overrides, credentials ? { credentials } : {});
  return { set, master, volumes: new VolumeClient() };
}

async function stopRetaining(cluster: { set?: VolumeSet; master?: TestMaster; volumes?: VolumeClient }): Promise<void> {
  await cluster.volumes?.close();
  await cluster.master?.close().catch(() => undefined);
  await cluster.set?.close();
  if (cluster.master) removeDir(cluster.master.db);
}

describe('--retain', () => {
  let set: VolumeSet;
  let master: TestMaster;
  let volumes: VolumeClient;
  before(async () => ({ set, master, volumes } = await startRetaining(2)));
  after(() => stopRetaining({ set, master, volumes }));

  const deps = () => ({ config: master.config, index: master.store.index, writer: master.store.writer, volumes, logger: silentLogger });

  /** What a ?version or ?at read answers: the bytes it redirects to, or its status. */
  async function read(path: string): Promise<string | number> {
    const first = await http('GET', `${master.url}${path}`);
    if (first.status !== 302) return first.status;
    return (await http('GET', first.headers.location!)).text;
  }

  /** The files of the key's blobs on the first volume: its own path (version 0) and path~N. */
  function blobFiles(key: string): string[] {
    return blobsIn(set.dirs[0]!)
      .map((blob) => blob.file)
      .filter((file) => file.includes(blobPath(key, 0).split('/').pop()!))
      .map((file) => file.split('/').pop()!)
      .sort();
  }

  test('a DELETE keeps the blob: 404 for the key, its version reads; written again, the new value goes beside it', async () => {
    const first = await http('PUT', `${master.url}/kept/k`, 'first');
    assert.equal(first.status, 201);
    const firstSeq = first.headers['log-seq'] as string;
    assert.equal((await http('DELETE', `${master.url}/kept/k`)).status, 204);
    assert.equal((await http('GET', `${master.url}/kept/k`)).status, 404);
    assert.equal((await http('DELETE', `${master.url}/kept/k`)).status, 404, 'deleted once');
    assert.equal((await http('UNLINK', `${master.url}/kept/k`)).status, 404);
    assert.equal(await read(`/kept/k?version=${firstSeq}`), 'first');
    assert.deepEqual(
      JSON.parse((await http('GET', `${master.url}/?list`)).text).keys.filter((key: string) => key.startsWith('/kept/')),
      [],
      'not listed',
    );
    const history = JSON.parse((await http('GET', `${master.url}/kept/k?history`)).text) as Shown[];
    assert.deepEqual(
      history.map((event) => [event.type, event.held]),
      [
        ['WriteStarted', undefined],
        ['WriteCommitted', true],
        ['KeyDeleted', undefined],
      ],
    );

    // Written again: beside the kept blob, which the original's in-place write would overwrite.
    const second = await http('PUT', `${master.url}/kept/k`, 'second');
    assert.equal(second.status, 201);
    const secondSeq = Number(second.headers['log-seq']);
    assert.equal(await read('/kept/k'), 'second');
    assert.equal(await read(`/kept/k?version=${firstSeq}`), 'first', 'the kept value is as it was');
    const name = blobPath('/kept/k', 0).split('/').pop()!;
    assert.deepEqual(blobFiles('/kept/k'), [name, `${name}~${secondSeq - 1}`].sort());
  });

  test('UNLINK, then a native PUT: the unlinked value is kept, not written over', async () => {
    const first = await http('PUT', `${master.url}/kept/u`, 'unlinked value');
    const firstSeq = first.headers['log-seq'] as string;
    assert.equal((await http('UNLINK', `${master.url}/kept/u`)).status, 204);
    assert.equal((await http('PUT', `${master.url}/kept/u`, 'new value')).status, 201);
    assert.equal(await read('/kept/u'), 'new value');
    assert.equal(await read(`/kept/u?version=${firstSeq}`), 'unlinked value');
  });

  test('an S3 overwrite keeps the replaced value past --stale-grace, for the window', async () => {
    assert.equal((await http('PUT', `${master.s3Url}/bucket`)).status, 200);
    assert.equal((await http('PUT', `${master.s3Url}/bucket/o`, 'one')).status, 200);
    assert.equal((await http('PUT', `${master.s3Url}/bucket/o`, 'two')).status, 200);
    const figures = await sweepRetained(deps());
    assert.equal(figures.removed, 0, 'nothing is past the window');
    const commits = (JSON.parse((await http('GET', `${master.url}/bucket/o?history`)).text) as Shown[]).filter(
      (event) => event.type === 'ObjectCommitted',
    );
    assert.equal(await read(`/bucket/o?version=${commits[0]!.seq}`), 'one');
    assert.equal(await read('/bucket/o'), 'two');
  });

  test('past the window the sweep removes what was kept; a deleted key goes from the index with its last blob and its marker', async () => {
    assert.equal((await http('PUT', `${master.url}/kept/gone`, 'soon gone')).status, 201);
    assert.equal((await http('DELETE', `${master.url}/kept/gone`)).status, 204);
    const counted = await sweepRetained(deps());
    // /kept/k's first value, /kept/u's unlinked one, /bucket/o's "one", /kept/gone's: one blob each.
    assert.equal(counted.blobs, 4);
    assert.equal(counted.bytes, 'first'.length + 'unlinked value'.length + 'one'.length + 'soon gone'.length);
    assert.equal(master.store.index.get('/kept/gone')?.state, 'deleted');

    const swept = await sweepRetained(deps(), Date.now() + RETAIN_MS + 1000);
    // Four blobs, and /kept/gone's delete marker (S3's expired delete marker).
    assert.equal(swept.removed, 5);
    assert.deepEqual([swept.blobs, swept.bytes], [0, 0]);
    assert.equal(master.store.index.get('/kept/gone'), undefined, 'the deleted key is gone with its last blob and its marker');
    const gone = await http('GET', `${master.url}/kept/gone?at=${Date.now() - 1}`);
    assert.equal(gone.status, 404);
    const history = JSON.parse((await http('GET', `${master.url}/kept/gone?history`)).text) as Shown[];
    assert.deepEqual(
      history.map((event) => [event.type, event.held]),
      [
        ['WriteStarted', undefined],
        ['WriteCommitted', false],
        ['KeyDeleted', undefined],
        ['StaleRemoved', undefined],
        ['MarkerRemoved', undefined],
      ],
    );
    assert.equal(await read('/kept/k'), 'second', 'values in use stay');
    assert.deepEqual(blobFiles('/kept/gone'), []);
    await master.close();
    await assertIndexEqualsReplay(master.db);
  });
});

function canMountTmpfs(): string | false {
  const probe = tempDir('mkv-mount-probe-');
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' }).status === 0;
  if (ok) spawnSync('umount', [probe]);
  removeDir(probe);
  return ok ? false : 'mounting a tmpfs needs root (a volume whose disk fills is a real small file system)';
}

describe('--retain on a volume whose disk fills', { skip: canMountTmpfs() }, () => {
  test('a write that does not fit fails cleanly; every value kept is still there and readable', async () => {
    const root = tempDir('mkv-full-volume-');
    const disk = join(root, 'volume1');
    mkdirSync(disk);
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=320k', 'tmpfs', disk]).status, 0);
    const set = await startVolumes('embedded', 1, root);
    const master = await startMaster(set.volumes, { replicas: 1, retainMs: RETAIN_MS, staleGraceMs: 0 });
    try {
      const value = (fill: string) => Buffer.alloc(100 * 1024, fill);
      assert.equal((await http('PUT', `${master.s3Url}/full`)).status, 200);
      assert.equal((await http('PUT', `${master.s3Url}/full/k`, value('a'))).status, 200);
      assert.equal((await http('PUT', `${master.s3Url}/full/k`, value('b'))).status, 200);
      assert.equal((await http('PUT', `${master.s3Url}/full/k`, value('c'))).status, 200);
      // Three values kept (one live, two replaced); a fourth does not fit.
      const refused = await http('PUT', `${master.s3Url}/full/k`, value('d'));
      assert.equal(refused.status, 500, refused.text);
      assert.match(refused.text, /<Code>InternalError<\/Code>/);
      assert.doesNotMatch(refused.text, new RegExp(root), 'no path in the answer');
      assert.equal((await http('GET', `${master.s3Url}/full/k`)).body.equals(value('c')), true, 'the live value is as it was');
      const commits = (JSON.parse((await http('GET', `${master.url}/full/k?history`)).text) as Shown[]).filter(
        (event) => event.type === 'ObjectCommitted',
      );
      assert.deepEqual(
        commits.map((event) => event.held),
        [true, true, true],
      );
      for (const [i, fill] of ['a', 'b'].entries()) {
        const first = await http('GET', `${master.url}/full/k?version=${commits[i]!.seq}`);
        assert.equal(first.status, 302);
        assert.ok((await http('GET', first.headers.location!)).body.equals(value(fill)), `the kept value ${fill}`);
      }
      const name = blobPath('/full/k', 0).split('/').pop()!;
      const files = blobsIn(disk).map((blob) => blob.file.split('/').pop()!);
      assert.equal(files.filter((file) => file.startsWith(name)).length, 3, `nothing of the failed write is left: ${files.join(' ')}`);
      // A DELETE needs no space: it keeps what is there.
      assert.equal((await http('DELETE', `${master.s3Url}/full/k`)).status, 204);
      assert.equal(master.store.index.get('/full/k')?.stale.length, 3);
    } finally {
      await master.close();
      await set.stop(0);
      spawnSync('umount', [disk]);
      await set.close();
      removeDir(master.db);
    }
  });
});

describe('--retain: what S3 answers names the versions', () => {
  let set: VolumeSet;
  let master: TestMaster;
  let volumes: VolumeClient;
  before(async () => ({ set, master, volumes } = await startRetaining(1)));
  after(() => stopRetaining({ set, master, volumes }));

  test('writes answer x-amz-version-id; a deleted key answers with its delete marker; a marker stays listed until its window passes', async () => {
    const s3 = (method: string, path: string, body?: string, headers: Record<string, string> = {}) =>
      http(method, `${master.s3Url}${path}`, body, headers);
    const versionOf = (reply: { headers: Record<string, string> }) => {
      const id = reply.headers['x-amz-version-id'];
      assert.match(id ?? '', /^\d+$/, 'a version id');
      return id!;
    };
    assert.equal((await s3('PUT', '/vers')).status, 200);
    const first = versionOf(await s3('PUT', '/vers/k', 'one'));
    const copied = await s3('PUT', '/vers/c', undefined, { 'x-amz-copy-source': '/vers/k' });
    assert.equal(copied.status, 200, copied.text);
    assert.notEqual(versionOf(copied), first);
    const started = await s3('POST', '/vers/m?uploads');
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(started.text)![1]!;
    const part = await s3('PUT', `/vers/m?partNumber=1&uploadId=${uploadId}`, 'the only part');
    const completed = await s3(
      'POST',
      `/vers/m?uploadId=${uploadId}`,
      `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${part.headers.etag}</ETag></Part></CompleteMultipartUpload>`,
    );
    assert.equal(completed.status, 200, completed.text);
    assert.equal(
      versionOf(completed),
      String(JSON.parse((await http('GET', `${master.url}/vers/m?history`)).text).at(-1).seq),
      "the commit's seq",
    );

    const marker = versionOf(await s3('DELETE', '/vers/k'));
    for (const method of ['GET', 'HEAD']) {
      const gone = await s3(method, '/vers/k');
      assert.equal(gone.status, 404);
      assert.equal(gone.headers['x-amz-delete-marker'], 'true', `${method} of a deleted key`);
      assert.equal(gone.headers['x-amz-version-id'], marker);
      const asked = await s3(method, `/vers/k?versionId=${marker}`);
      assert.equal(asked.status, 405);
      assert.equal(asked.headers['x-amz-delete-marker'], 'true', `${method} of a delete marker`);
      assert.equal(asked.headers['x-amz-version-id'], marker);
      assert.ok(asked.headers['last-modified']);
    }
    // Its one value removed by its id: the marker is still the key's latest version, listed.
    assert.equal((await s3('DELETE', `/vers/k?versionId=${first}`)).status, 204);
    const listing = async () => (await s3('GET', '/vers?versions&prefix=k')).text;
    assert.match(await listing(), new RegExp(`<DeleteMarker><Key>k</Key><VersionId>${marker}</VersionId><IsLatest>true</IsLatest>`));
    assert.doesNotMatch(await listing(), /<Version>/);
    const deps = { config: master.config, index: master.store.index, writer: master.store.writer, volumes, logger: silentLogger };
    await sweepRetained(deps);
    assert.match(await listing(), /<DeleteMarker>/, 'within the window it stays');
    await sweepRetained(deps, Date.now() + RETAIN_MS + 1000);
    assert.doesNotMatch(await listing(), /<DeleteMarker>/, 'past it, it goes with the key');
    assert.equal(master.store.index.get('/vers/k'), undefined);
    await master.close();
    await assertIndexEqualsReplay(master.db);
  });
});

describe('--retain: removing versions by id, under attack and after failures', () => {
  let set: VolumeSet;
  let master: TestMaster;
  let volumes: VolumeClient;
  const who = {
    ops: { accessKey: 'ops', secret: 'ops-secret' },
    deleter: { accessKey: 'deleter', secret: 'deleter-secret' },
  };
  before(async () => {
    const credentials = parseCredentials('ops:ops-secret\ndeleter:deleter-secret read,write,delete,list /vers/\n', 'test');
    ({ set, master, volumes } = await startRetaining(2, credentials));
  });
  after(() => stopRetaining({ set, master, volumes }));

  const s3 = async (as: Signer, method: string, path: string, body?: string, headers: Record<string, string> = {}) => {
    const url = `${master.s3Url}${path}`;
    return http(method, url, body, await signedHeaders(as, method, url, headers, body));
  };
  const versionOf = (reply: { headers: Record<string, string> }) => reply.headers['x-amz-version-id']!;
  const read = async (path: string) => {
    const got = await s3(who.ops, 'GET', path);
    return got.status === 200 ? got.text : got.status;
  };

  test('a version goes for good only with the purge right: delete leaves a marker, and no more', async () => {
    assert.equal((await s3(who.ops, 'PUT', '/vers')).status, 200);
    const first = versionOf(await s3(who.ops, 'PUT', '/vers/p', 'one'));
    const denied = await s3(who.deleter, 'DELETE', `/vers/p?versionId=${first}`);
    assert.equal(denied.status, 403, denied.text);
    const document = `<Delete><Object><Key>p</Key><VersionId>${first}</VersionId></Object></Delete>`;
    const many = await s3(who.deleter, 'POST', '/vers?delete', document, {
      'content-md5': createHash('md5').update(document).digest('base64'),
    });
    assert.match(many.text, /<Error><Key>p<\/Key><Code>AccessDenied<\/Code>/);
    assert.equal(await read('/vers/p'), 'one', 'the version is there');
    const marker = await s3(who.deleter, 'DELETE', '/vers/p');
    assert.equal(marker.headers['x-amz-delete-marker'], 'true', 'a delete with the delete right: a marker');
    assert.equal(await read(`/vers/p?versionId=${first}`), 'one', 'and the version is kept');
    // versionId=null names no version here: nothing is removed, no marker is left.
    const none = await s3(who.ops, 'DELETE', '/vers/p?versionId=null');
    assert.equal(none.status, 204);
    assert.equal(none.headers['x-amz-delete-marker'], undefined);
  });

  test('--protect and UNLINK keep the value a key serves from a delete by its id', async () => {
    const first = versionOf(await s3(who.ops, 'PUT', '/vers/u', 'one'));
    const second = versionOf(await s3(who.ops, 'PUT', '/vers/u', 'two'));
    const basic = { authorization: `Basic ${Buffer.from('ops:ops-secret').toString('base64')}` };
    assert.equal((await http('UNLINK', `${master.url}/vers/u`, undefined, basic)).status, 204);
    const refused = await s3(who.ops, 'DELETE', `/vers/u?versionId=${second}`);
    assert.equal(refused.status, 403, refused.text);
    assert.equal((await http('LINK', `${master.url}/vers/u`, undefined, basic)).status, 204);
    assert.equal(await read('/vers/u'), 'two', 'LINK brings back the value it had');
    master.config.protect = true;
    try {
      assert.equal((await s3(who.ops, 'DELETE', `/vers/u?versionId=${second}`)).status, 403);
      assert.equal((await s3(who.ops, 'DELETE', `/vers/u?versionId=${first}`)).status, 204, 'an older version may go');
    } finally {
      master.config.protect = false;
    }
    assert.equal(await read('/vers/u'), 'two');
  });

  test('the only version of a key whose removal failed on a volume: its id again finishes it, and no marker is claimed', async () => {
    const only = versionOf(await s3(who.ops, 'PUT', '/vers/f', 'only'));
    await set.stop(1);
    const failed = await s3(who.ops, 'DELETE', `/vers/f?versionId=${only}`);
    assert.equal(failed.status, 500, failed.text);
    assert.equal(master.store.index.get('/vers/f')?.state, 'deleting');
    await set.start(1);
    const finished = await s3(who.ops, 'DELETE', `/vers/f?versionId=${only}`);
    assert.equal(finished.status, 204, finished.text);
    assert.equal(finished.headers['x-amz-delete-marker'], undefined);
    assert.equal(master.store.index.get('/vers/f'), undefined, 'the key is gone');
    assert.equal((await s3(who.ops, 'GET', '/vers/f')).headers['x-amz-delete-marker'], undefined, 'no marker');
  });

  test('a copy onto itself is a version of its own; a bucket holding versions is not empty; an expired marker is no version', async () => {
    const first = versionOf(await s3(who.ops, 'PUT', '/vers/c', 'same', { 'x-amz-meta-a': '1' }));
    const copied = await s3(who.ops, 'PUT', '/vers/c', undefined, {
      'x-amz-copy-source': '/vers/c',
      'x-amz-metadata-directive': 'REPLACE',
      'x-amz-meta-a': '2',
    });
    assert.equal(copied.status, 200, copied.text);
    assert.notEqual(versionOf(copied), first);
    assert.equal(
      (await s3(who.ops, 'HEAD', `/vers/c?versionId=${first}`)).headers['x-amz-meta-a'],
      '1',
      'the old version keeps its metadata',
    );

    assert.equal((await s3(who.ops, 'PUT', '/gone')).status, 200);
    assert.equal((await s3(who.ops, 'PUT', '/gone/k', 'v')).status, 200);
    const marker = versionOf(await s3(who.ops, 'DELETE', '/gone/k'));
    const notEmpty = await s3(who.ops, 'DELETE', '/gone');
    assert.equal(notEmpty.status, 409, 'a deleted key keeps its versions: S3 answers BucketNotEmpty');
    assert.match(notEmpty.text, /BucketNotEmpty/);
    const again = versionOf(await s3(who.ops, 'PUT', '/gone/k', 'w'));
    // Past the window, the marker a value came after is no version any more; the value before it went too.
    const deps = { config: master.config, index: master.store.index, writer: master.store.writer, volumes, logger: silentLogger };
    const later = Date.now() + RETAIN_MS + 1000;
    await sweepRetained(deps, later);
    const realNow = Date.now;
    Date.now = () => later;
    try {
      const reader = { ...deps, index: master.store.index } as unknown as Parameters<typeof recordToRead>[0];
      assert.throws(
        () => recordToRead(reader, '/gone/k', marker),
        (error: MkvError) => error.code === 'MKV_NO_SUCH_VERSION',
      );
    } finally {
      Date.now = realNow;
    }
    assert.equal(await read(`/gone/k?versionId=${again}`), 'w');
  });

  test('a key an S3 DELETE marked before it ever held a value gets its first value in its own path', async () => {
    assert.equal((await s3(who.ops, 'DELETE', '/vers/never')).headers['x-amz-delete-marker'], 'true');
    assert.equal((await s3(who.ops, 'PUT', '/vers/never', 'first')).status, 200);
    const history = JSON.parse(
      (
        await http('GET', `${master.url}/vers/never?history`, undefined, {
          authorization: `Basic ${Buffer.from('ops:ops-secret').toString('base64')}`,
        })
      ).text,
    ) as Shown[];
    assert.deepEqual(
      history.map((event) => event.type),
      ['KeyDeleted', 'WriteStarted', 'ObjectCommitted'],
    );
    assert.equal(await read('/vers/never'), 'first');
    await master.close();
    await assertIndexEqualsReplay(master.db);
  });
});
