// Reading the past on the live master: GET /key?version=SEQ and ?at=TIME redirect to the bytes the
// key held then (404: it held none; 410: those bytes were removed since), and ?history marks
// each value with whether its bytes are still held.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseCredentials } from '../../src/auth/credentials.js';
import { removeStale } from '../../src/keys/stale-sweeper.js';
import { silentLogger } from '../../src/logger.js';
import { VolumeClient } from '../../src/volumes/client.js';
import { http } from '../helpers/http.js';
import { instantBetween } from '../helpers/wait.js';
import { removeDir, startMaster, startVolumes, type TestMaster, type VolumeSet } from '../helpers/cluster.js';

interface Shown {
  seq: number;
  time: string;
  type: string;
  held?: boolean;
}

/** Now, with every event so far stamped before it and every later one at it or after. */
async function instant(): Promise<number> {
  return Date.parse(await instantBetween());
}

describe('reading earlier versions of a key', () => {
  let set: VolumeSet;
  let master: TestMaster;
  let volumes: VolumeClient;
  before(async () => {
    set = await startVolumes('embedded', 2);
    master = await startMaster(set.volumes, { replicas: 2 });
    volumes = new VolumeClient();
  });
  after(async () => {
    await volumes?.close();
    await master?.close();
    await set?.close();
    if (master) removeDir(master.db);
  });

  /** The bytes a ?version or ?at read redirects to, and the version it names. */
  async function read(path: string): Promise<{ status: number; text: string; version?: string }> {
    const first = await http('GET', `${master.url}${path}`);
    if (first.status !== 302) return { status: first.status, text: first.text };
    const bytes = await http('GET', first.headers.location!);
    assert.equal(bytes.status, 200);
    return { status: 302, text: bytes.text, version: first.headers['key-version'] as string };
  }

  test('a native key: written, unlinked, written again over it, deleted', async () => {
    const beforeAll = await instant();
    const first = await http('PUT', `${master.url}/native/k`, 'first value');
    assert.equal(first.status, 201);
    const firstSeq = Number(first.headers['log-seq']);
    const afterFirst = await instant();
    assert.equal((await http('UNLINK', `${master.url}/native/k`)).status, 204);
    const whileUnlinked = await instant();

    assert.deepEqual(await read(`/native/k?version=${firstSeq}`), { status: 302, text: 'first value', version: String(firstSeq) });
    assert.deepEqual(await read(`/native/k?at=${new Date(afterFirst).toISOString()}`), {
      status: 302,
      text: 'first value',
      version: String(firstSeq),
    });
    assert.equal((await read(`/native/k?at=${afterFirst}`)).text, 'first value', 'milliseconds too');
    assert.equal((await read(`/native/k?at=${whileUnlinked}`)).status, 404, 'unlinked then: no value, as GET answered');
    assert.equal((await read(`/native/k?at=${beforeAll}`)).status, 404, 'before the key existed');

    // A native PUT over the unlinked key writes its own path: the first value's bytes are gone.
    const second = await http('PUT', `${master.url}/native/k`, 'second value');
    assert.equal(second.status, 201);
    const secondSeq = Number(second.headers['log-seq']);
    const gone = await http('GET', `${master.url}/native/k?version=${firstSeq}`);
    assert.equal(gone.status, 410);
    assert.match(gone.text, new RegExp(`version ${firstSeq}'s bytes were removed at `));
    assert.equal((await read(`/native/k?at=${afterFirst}`)).status, 410, 'the value then is known, its bytes are not held');
    assert.equal((await read(`/native/k?version=${secondSeq}`)).text, 'second value');

    const history = JSON.parse((await http('GET', `${master.url}/native/k?history`)).text) as Shown[];
    assert.deepEqual(
      history.filter((event) => event.held !== undefined).map((event) => [event.seq, event.type, event.held]),
      [
        [firstSeq, 'WriteCommitted', false],
        [secondSeq, 'WriteCommitted', true],
      ],
    );

    const beforeDelete = await instant();
    assert.equal((await http('DELETE', `${master.url}/native/k`)).status, 204);
    assert.equal((await read(`/native/k?at=${beforeDelete}`)).status, 410, 'DELETE removed the bytes it served then');
    assert.equal((await read(`/native/k?at=${await instant()}`)).status, 404, 'after the DELETE: nothing');
    assert.equal((await read(`/native/k?version=${secondSeq + 1}`)).status, 404, 'an event that made no value');
  });

  test('an S3 overwrite: the replaced value reads until its blob is removed, then 410', async () => {
    const put = (body: string) => http('PUT', `${master.s3Url}/bucket/obj`, body);
    assert.equal((await http('PUT', `${master.s3Url}/bucket`)).status, 200);
    assert.equal((await put('old bytes')).status, 200);
    const oldTime = await instant();
    assert.equal((await put('new bytes')).status, 200);
    const history = JSON.parse((await http('GET', `${master.url}/bucket/obj?history`)).text) as Shown[];
    const commits = history.filter((event) => event.type === 'ObjectCommitted');
    assert.equal(commits.length, 2);
    assert.deepEqual(
      commits.map((event) => event.held),
      [true, true],
      'the replaced blob stays for --stale-grace',
    );
    assert.equal((await read(`/bucket/obj?version=${commits[0]!.seq}`)).text, 'old bytes');
    assert.equal((await read(`/bucket/obj?at=${oldTime}`)).text, 'old bytes');
    assert.equal((await read(`/bucket/obj?version=${commits[1]!.seq}`)).text, 'new bytes');
    assert.equal((await read('/bucket/obj')).text, 'new bytes');

    // The grace over, the sweeper removes the old blob (StaleRemoved): its version is gone.
    const deps = { config: master.config, index: master.store.index, writer: master.store.writer, volumes, logger: silentLogger };
    assert.equal(await removeStale(deps, '/bucket/obj'), 1);
    assert.equal((await read(`/bucket/obj?version=${commits[0]!.seq}`)).status, 410);
    assert.equal((await read(`/bucket/obj?version=${commits[1]!.seq}`)).text, 'new bytes');
    const after = JSON.parse((await http('GET', `${master.url}/bucket/obj?history`)).text) as Shown[];
    assert.deepEqual(
      after.filter((event) => event.type === 'ObjectCommitted').map((event) => event.held),
      [false, true],
    );
  });

  test('a query it cannot read is 400 with what it takes; HEAD answers as GET', async () => {
    assert.equal((await http('PUT', `${master.url}/q`, 'q')).status, 201);
    for (const [query, message] of [
      ['version=abc', /version must be a seq/],
      ['version=0', /version must be a seq/],
      ['at=yesterday', /at must be a time/],
      ['at=', /at must be a time/],
      ['version=1&at=1', /not both/],
      ['version=2&version=5', /not several/],
    ] as const) {
      const answer = await http('GET', `${master.url}/q?${query}`);
      assert.equal(answer.status, 400, query);
      assert.match(answer.text, message, query);
    }
    const head = await http('HEAD', `${master.url}/q?at=${Date.now()}`);
    assert.equal(head.status, 302);
    assert.ok(head.headers.location);
  });
});

describe('reading earlier versions with --credentials', () => {
  test('needs the read right on the key: 401 for no one, 403 for a key without it', async () => {
    const set = await startVolumes('embedded', 1);
    const credentials = parseCredentials('ops:ops-secret-key\nother:other-secret-key read /elsewhere/\n', 'credentials');
    const master = await startMaster(set.volumes, { replicas: 1 }, { credentials });
    const as = (who: string) => ({ authorization: `Basic ${Buffer.from(who).toString('base64')}` });
    try {
      const put = await http('PUT', `${master.url}/secret/k`, 'classified', as('ops:ops-secret-key'));
      assert.equal(put.status, 201);
      const seq = put.headers['log-seq'] as string;
      for (const query of [`version=${seq}`, `at=${Date.now()}`]) {
        assert.equal((await http('GET', `${master.url}/secret/k?${query}`)).status, 401, query);
        assert.equal((await http('GET', `${master.url}/secret/k?${query}`, undefined, as('other:other-secret-key'))).status, 403, query);
        assert.equal((await http('GET', `${master.url}/secret/k?${query}`, undefined, as('ops:ops-secret-key'))).status, 302, query);
      }
    } finally {
      await master.close();
      await set.close();
      removeDir(master.db);
    }
  });
});
