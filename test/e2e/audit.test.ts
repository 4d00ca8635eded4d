// Who did what: each event of an API call names the access key it was signed with (or
// "anonymous") beside the client's address, ?history shows it, and `mkv audit` finds the events
// by time, access key, key prefix and kind of change, straight from the log.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parseCredentials } from '../../src/auth/credentials.js';
import { http } from '../helpers/http.js';
import { instantBetween } from '../helpers/wait.js';
import { removeDir, runMkv, startMaster, startVolumes, type TestMaster, type VolumeSet } from '../helpers/cluster.js';

const CREDENTIALS = 'ops:ops-secret-key\nauditor:auditor-secret-key read,list,admin\nanonymous write /drop/\n';
const basic = (who: string) => ({ authorization: `Basic ${Buffer.from(who).toString('base64')}` });

interface Shown {
  seq: number;
  time: string;
  type: string;
  key: string;
  origin: string;
  client: string | null;
  who?: string;
}

function lines(text: string): Shown[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Shown);
}

describe('who did what, with --credentials', () => {
  let set: VolumeSet;
  let master: TestMaster;
  let s3: S3Client;
  let between: number;
  before(async () => {
    set = await startVolumes('embedded', 2);
    master = await startMaster(set.volumes, { replicas: 2 }, { credentials: parseCredentials(CREDENTIALS, 'credentials') });
    s3 = new S3Client({
      endpoint: master.s3Url,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'ops', secretAccessKey: 'ops-secret-key' },
      maxAttempts: 1,
    });
    assert.equal((await http('PUT', `${master.url}/native/a`, 'a', basic('ops:ops-secret-key'))).status, 201);
    assert.equal((await http('PUT', `${master.url}/drop/anon`, 'x')).status, 201, 'anonymous may write under /drop/');
    // Every event so far was appended before `between`; every one after, at it or later.
    between = Date.parse(await instantBetween());
    await s3.send(new CreateBucketCommand({ Bucket: 'media' }));
    await s3.send(new PutObjectCommand({ Bucket: 'media', Key: 'clip', Body: 'clip' }));
    await s3.send(new DeleteObjectCommand({ Bucket: 'media', Key: 'clip' }));
    assert.equal((await http('DELETE', `${master.url}/native/a`, undefined, basic('ops:ops-secret-key'))).status, 204);
  });
  after(async () => {
    s3?.destroy();
    await master?.close();
    await set?.close();
    if (master) removeDir(master.db);
  });

  test('?history names the access key of each event, and anonymous for an unsigned request', async () => {
    const history = await http('GET', `${master.url}/native/a?history`, undefined, basic('auditor:auditor-secret-key'));
    assert.equal(history.status, 200, history.text);
    const events = JSON.parse(history.text) as Shown[];
    assert.deepEqual(
      events.map((event) => [event.type, event.origin, event.who]),
      [
        ['WriteStarted', 'api', 'ops'],
        ['WriteCommitted', 'api', 'ops'],
        ['DeleteStarted', 'api', 'ops'],
        ['KeyDeleted', 'api', 'ops'],
      ],
    );
    assert.ok(events.every((event) => event.client === '127.0.0.1'));
    const anonymous = JSON.parse(
      (await http('GET', `${master.url}/drop/anon?history`, undefined, basic('ops:ops-secret-key'))).text,
    ) as Shown[];
    assert.deepEqual(
      anonymous.map((event) => event.who),
      ['anonymous', 'anonymous'],
    );
  });

  test('mkv audit: every event by one access key, of some kinds, under a prefix, in a time window', async () => {
    const all = await runMkv(['audit', '--db', master.db]);
    assert.equal(all.status, 0, all.stderr);
    assert.equal(all.stderr, '', 'no progress line off a terminal');
    const every = lines(all.stdout);
    assert.deepEqual(
      every.map((event) => event.seq),
      every.map((_, i) => i + 1),
      'every event of the log, in order',
    );
    const byOps = lines((await runMkv(['audit', '--db', master.db, '--who', 'ops'])).stdout);
    assert.ok(byOps.length > 0 && byOps.every((event) => event.who === 'ops'));
    assert.deepEqual(
      lines((await runMkv(['audit', '--db', master.db, '--who', 'anonymous'])).stdout).map((event) => [event.key, event.type]),
      [
        ['/drop/anon', 'WriteStarted'],
        ['/drop/anon', 'WriteCommitted'],
      ],
    );
    const deletes = lines((await runMkv(['audit', '--db', master.db, '--change', 'keydeleted,BucketCreated'])).stdout);
    assert.deepEqual(
      deletes.map((event) => [event.type, event.key, event.who]),
      [
        ['BucketCreated', 'media', 'ops'],
        ['KeyDeleted', '/media/clip', 'ops'],
        ['KeyDeleted', '/native/a', 'ops'],
      ],
    );
    const media = lines((await runMkv(['audit', '--db', master.db, '--prefix', '/media/', '--who', 'ops'])).stdout);
    assert.ok(media.length >= 3 && media.every((event) => event.key.startsWith('/media/')));
    const before = lines((await runMkv(['audit', '--db', master.db, '--until', new Date(between - 1).toISOString()])).stdout);
    const since = lines((await runMkv(['audit', '--db', master.db, '--since', String(between)])).stdout);
    assert.deepEqual(
      [...before, ...since].map((event) => event.seq),
      every.map((event) => event.seq),
      'the window before and the window since split the log',
    );
    assert.ok(since.every((event) => Date.parse(event.time) >= between));
    assert.deepEqual(
      since.slice(0, 1).map((event) => event.type),
      ['BucketCreated'],
    );
  });

  test('mkv audit refuses a flag it cannot honour, in one line', async () => {
    const wrongChange = await runMkv(['audit', '--db', master.db, '--change', 'Deleted']);
    assert.equal(wrongChange.status, 2);
    assert.match(wrongChange.stderr, /^mkv: --change Deleted: not a change; one of WriteStarted, .*KeyDeleted/);
    const wrongTime = await runMkv(['audit', '--db', master.db, '--since', 'yesterday']);
    assert.equal(wrongTime.status, 2);
    assert.match(wrongTime.stderr, /--since "yesterday" is not a time/);
    const noDb = await runMkv(['audit', '--db', `${master.db}-typo`]);
    assert.equal(noDb.status, 2);
    assert.match(noDb.stderr, /is not an mkv db/);
    const none = await runMkv(['audit']);
    assert.equal(none.status, 2);
    assert.equal(none.stderr.split('\n').filter(Boolean).length, 1, none.stderr);
  });
});

describe('who did what, without --credentials', () => {
  test('events name no one (who is absent), as before', async () => {
    const set = await startVolumes('embedded', 1);
    const master = await startMaster(set.volumes, { replicas: 1 });
    try {
      assert.equal((await http('PUT', `${master.url}/open`, 'x')).status, 201);
      const events = JSON.parse((await http('GET', `${master.url}/open?history`)).text) as Shown[];
      assert.equal(events.length, 2);
      assert.ok(events.every((event) => !('who' in event)));
      const audited = await runMkv(['audit', '--db', master.db, '--who', 'anonymous']);
      assert.equal(audited.status, 0, audited.stderr);
      assert.equal(audited.stdout, '', 'nobody is anonymous on an open server');
    } finally {
      await master.close();
      await set.close();
      removeDir(master.db);
    }
  });
});
