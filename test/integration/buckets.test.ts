// Buckets as S3 has them, driven by a real S3 client (@aws-sdk/client-s3) over real volumes: a
// bucket exists once created (BucketCreated in the log) or while it holds a live key (the native
// API's keys need no bucket); a request into one that does not is 404 NoSuchBucket. Then the
// buckets through a rebuild from the log, a point-in-time rebuild, a compaction, and two masters
// on one JetStream stream.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type BucketLocationConstraint,
} from '@aws-sdk/client-s3';
import { parseCredentials } from '../../src/auth/credentials.js';
import { indexDir } from '../../src/db/paths.js';
import { IndexStore } from '../../src/index/index-store.js';
import type { BucketRecord } from '../../src/index/buckets.js';
import { bucketNameProblem } from '../../src/keys/buckets.js';
import { http } from '../helpers/http.js';
import { assertIndexEqualsReplay } from '../helpers/replay.js';
import { until } from '../helpers/wait.js';
import {
  removeDir,
  runMkv,
  spawnMaster,
  startMaster,
  startVolumes,
  stopMaster,
  tempDir,
  type TestMaster,
  type VolumeSet,
} from '../helpers/cluster.js';
import { natsSkipReason, type NatsServer } from '../helpers/nats.js';
import { startSharedStream, type SharedStream } from '../helpers/shared-stream.js';

function client(url: string, accessKeyId = 'test', secretAccessKey = 'test'): S3Client {
  return new S3Client({
    endpoint: url,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
  });
}

/** The S3 error a request fails with: its name, and its HTTP status. */
async function failure(request: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await request;
  } catch (error) {
    return { name: (error as Error).name, status: (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode };
  }
  assert.fail('the request succeeded');
}

/** An S3 request by hand (an S3 client's User-Agent makes it one), for what the SDK checks itself first. */
const S3_AGENT = { 'user-agent': 'aws-cli/2.9.19' };

async function bucketNames(s3: S3Client): Promise<string[]> {
  return ((await s3.send(new ListBucketsCommand({}))).Buckets ?? []).map((bucket) => bucket.Name!);
}

describe('S3 buckets', () => {
  let set: VolumeSet;
  let master: TestMaster;
  let s3: S3Client;
  before(async () => {
    set = await startVolumes('embedded', 3);
    master = await startMaster(set.volumes);
    s3 = client(master.url);
  });
  after(async () => {
    s3?.destroy();
    await master?.close();
    await set?.close();
    if (master) removeDir(master.db);
  });

  test('CreateBucket, then HeadBucket 200; a bucket never created is 404 NoSuchBucket to every request into it', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'made' }));
    assert.equal((await s3.send(new HeadBucketCommand({ Bucket: 'made' }))).$metadata.httpStatusCode, 200);
    assert.equal((await s3.send(new ListObjectsV2Command({ Bucket: 'made' }))).KeyCount, 0);

    assert.deepEqual(await failure(s3.send(new HeadBucketCommand({ Bucket: 'never-made' }))), { name: 'NotFound', status: 404 });
    const noSuchBucket = { name: 'NoSuchBucket', status: 404 };
    assert.deepEqual(await failure(s3.send(new ListObjectsV2Command({ Bucket: 'never-made' }))), noSuchBucket);
    assert.deepEqual(await failure(s3.send(new ListObjectsCommand({ Bucket: 'never-made' }))), noSuchBucket);
    assert.deepEqual(await failure(s3.send(new PutObjectCommand({ Bucket: 'never-made', Key: 'k', Body: 'v' }))), noSuchBucket);
    assert.deepEqual(await failure(s3.send(new CreateMultipartUploadCommand({ Bucket: 'never-made', Key: 'k' }))), noSuchBucket);
    await s3.send(new PutObjectCommand({ Bucket: 'made', Key: 'source', Body: 'copied' }));
    assert.deepEqual(
      await failure(s3.send(new CopyObjectCommand({ Bucket: 'never-made', Key: 'k', CopySource: 'made/source' }))),
      noSuchBucket,
    );
    assert.deepEqual(await failure(s3.send(new GetObjectCommand({ Bucket: 'never-made', Key: 'k' }))), noSuchBucket);
    // HEAD has no body: a bare 404.
    assert.equal((await failure(s3.send(new HeadObjectCommand({ Bucket: 'never-made', Key: 'k' })))).status, 404);
    const raw = await http('GET', `${master.url}/never-made/k`, undefined, S3_AGENT);
    assert.equal(raw.status, 404);
    assert.match(raw.text, /<Code>NoSuchBucket<\/Code>/);
    assert.equal(master.store.index.get('/never-made/k'), undefined, 'nothing was written');
    // A key that is not there, in a bucket that is: NoSuchKey, as before.
    assert.deepEqual(await failure(s3.send(new GetObjectCommand({ Bucket: 'made', Key: 'absent' }))), { name: 'NoSuchKey', status: 404 });
  });

  test('ListBuckets lists an empty created bucket with its creation date; max-buckets, continuation-token and prefix page it', async () => {
    const before = Date.now();
    for (const Bucket of ['page-a', 'page-b', 'page-c']) await s3.send(new CreateBucketCommand({ Bucket }));
    const listed = await s3.send(new ListBucketsCommand({}));
    const pageA = listed.Buckets?.find((bucket) => bucket.Name === 'page-a');
    assert.ok(pageA, 'an empty created bucket is listed');
    assert.ok(pageA.CreationDate!.getTime() >= before - 1000 && pageA.CreationDate!.getTime() <= Date.now() + 1000);
    assert.equal(listed.Owner?.ID, 'mkv');

    const first = await s3.send(new ListBucketsCommand({ Prefix: 'page-', MaxBuckets: 2 }));
    assert.deepEqual(
      first.Buckets?.map((bucket) => bucket.Name),
      ['page-a', 'page-b'],
    );
    assert.equal(first.Prefix, 'page-');
    assert.ok(first.ContinuationToken, 'a truncated listing says where it goes on');
    const rest = await s3.send(new ListBucketsCommand({ Prefix: 'page-', MaxBuckets: 2, ContinuationToken: first.ContinuationToken }));
    assert.deepEqual(
      rest.Buckets?.map((bucket) => bucket.Name),
      ['page-c'],
    );
    assert.equal(rest.ContinuationToken, undefined);
    assert.equal((await http('GET', `${master.url}/?max-buckets=0`, undefined, S3_AGENT)).status, 400);
  });

  test('DeleteBucket: 204 when empty (then it is gone), 409 BucketNotEmpty while it holds a live key, 404 NoSuchBucket when missing', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'short-lived' }));
    assert.equal((await s3.send(new DeleteBucketCommand({ Bucket: 'short-lived' }))).$metadata.httpStatusCode, 204);
    assert.deepEqual(await failure(s3.send(new HeadBucketCommand({ Bucket: 'short-lived' }))), { name: 'NotFound', status: 404 });
    assert.ok(!(await bucketNames(s3)).includes('short-lived'));
    assert.deepEqual(await failure(s3.send(new DeleteBucketCommand({ Bucket: 'short-lived' }))), { name: 'NoSuchBucket', status: 404 });
    assert.deepEqual(await failure(s3.send(new DeleteBucketCommand({ Bucket: 'never-made' }))), { name: 'NoSuchBucket', status: 404 });

    await s3.send(new CreateBucketCommand({ Bucket: 'holding' }));
    await s3.send(new PutObjectCommand({ Bucket: 'holding', Key: 'kept', Body: 'v' }));
    assert.deepEqual(await failure(s3.send(new DeleteBucketCommand({ Bucket: 'holding' }))), { name: 'BucketNotEmpty', status: 409 });
    await s3.send(new DeleteObjectCommand({ Bucket: 'holding', Key: 'kept' }));
    await s3.send(new DeleteBucketCommand({ Bucket: 'holding' }));
    assert.deepEqual(await failure(s3.send(new PutObjectCommand({ Bucket: 'holding', Key: 'k', Body: 'v' }))), {
      name: 'NoSuchBucket',
      status: 404,
    });
  });

  test('CreateBucket refuses the names S3 refuses (400 InvalidBucketName) and answers 200 again for a bucket that exists', async () => {
    const invalid = [
      'a',
      'aa',
      'a'.repeat(64),
      'Upper',
      'under_score',
      '192.168.5.123',
      '-dash',
      'dash-',
      '.dot',
      'dot.',
      'two..dots',
      'dot-.dash',
      'dash.-dot',
      'xn--reserved',
    ];
    for (const name of invalid) {
      const reply = await http('PUT', `${master.url}/${name}`, '', S3_AGENT);
      assert.equal(reply.status, 400, name);
      assert.match(reply.text, /<Code>InvalidBucketName<\/Code>/, name);
      assert.equal(master.store.index.bucket(name), undefined);
    }
    for (const name of ['abc', 'a'.repeat(63), 'with.dots-and-1', '1.2.3', '192.168.5.123x'])
      assert.equal(bucketNameProblem(name), undefined, name);

    await s3.send(new CreateBucketCommand({ Bucket: 'again' }));
    const created = master.store.index.bucket('again')!;
    const seq = master.store.index.checkpoint;
    assert.equal((await s3.send(new CreateBucketCommand({ Bucket: 'again' }))).$metadata.httpStatusCode, 200);
    assert.deepEqual(master.store.index.bucket('again'), created, 'its creation date stays');
    assert.equal(master.store.index.checkpoint, seq, 'nothing appended');
  });

  test('a key put through the native API makes its bucket exist, created or not; it needs no bucket', async () => {
    assert.equal((await http('PUT', `${master.url}/native-only/file`, 'native')).status, 201);
    assert.equal((await s3.send(new HeadBucketCommand({ Bucket: 'native-only' }))).$metadata.httpStatusCode, 200);
    assert.ok((await bucketNames(s3)).includes('native-only'));
    const got = await s3.send(new GetObjectCommand({ Bucket: 'native-only', Key: 'file' }));
    assert.equal(await got.Body!.transformToString(), 'native');
    // Not created: it exists while it holds the key, and no longer.
    assert.equal((await http('DELETE', `${master.url}/native-only/file`)).status, 204);
    assert.deepEqual(await failure(s3.send(new HeadBucketCommand({ Bucket: 'native-only' }))), { name: 'NotFound', status: 404 });
    // An unlinked key is not in a listing, so it makes no bucket either.
    assert.equal((await http('PUT', `${master.url}/native-only/other`, 'native')).status, 201);
    assert.equal((await http('UNLINK', `${master.url}/native-only/other`)).status, 204);
    assert.deepEqual(await failure(s3.send(new HeadBucketCommand({ Bucket: 'native-only' }))), { name: 'NotFound', status: 404 });
    // A deleted bucket exists again once a native key is put into it; CreateBucket then makes it stay.
    await s3.send(new CreateBucketCommand({ Bucket: 'reborn' }));
    await s3.send(new DeleteBucketCommand({ Bucket: 'reborn' }));
    assert.equal((await http('PUT', `${master.url}/reborn/k`, 'native')).status, 201);
    assert.equal((await s3.send(new HeadBucketCommand({ Bucket: 'reborn' }))).$metadata.httpStatusCode, 200);
    await s3.send(new CreateBucketCommand({ Bucket: 'reborn' }));
    await s3.send(new DeleteObjectCommand({ Bucket: 'reborn', Key: 'k' }));
    assert.equal((await s3.send(new HeadBucketCommand({ Bucket: 'reborn' }))).$metadata.httpStatusCode, 200);
  });

  test('GetBucketLocation answers the LocationConstraint the bucket was created with, none without one', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'located', CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } }));
    assert.equal((await s3.send(new GetBucketLocationCommand({ Bucket: 'located' }))).LocationConstraint, 'eu-west-1');
    await s3.send(new CreateBucketCommand({ Bucket: 'unlocated' }));
    assert.equal((await s3.send(new GetBucketLocationCommand({ Bucket: 'unlocated' }))).LocationConstraint, undefined);
    assert.deepEqual(await failure(s3.send(new GetBucketLocationCommand({ Bucket: 'never-made' }))), { name: 'NoSuchBucket', status: 404 });
    const bad = await http(
      'PUT',
      `${master.url}/badly-located`,
      '<CreateBucketConfiguration><LocationConstraint>no place/here</LocationConstraint></CreateBucketConfiguration>',
      S3_AGENT,
    );
    assert.equal(bad.status, 400);
    assert.equal(master.store.index.bucket('badly-located'), undefined);
  });

  test('x-amz-expected-bucket-owner other than the owner is 403 AccessDenied', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'owned' }));
    assert.equal((await s3.send(new HeadBucketCommand({ Bucket: 'owned', ExpectedBucketOwner: 'mkv' }))).$metadata.httpStatusCode, 200);
    assert.deepEqual(await failure(s3.send(new ListObjectsV2Command({ Bucket: 'owned', ExpectedBucketOwner: '111122223333' }))), {
      name: 'AccessDenied',
      status: 403,
    });
    assert.deepEqual(
      await failure(s3.send(new PutObjectCommand({ Bucket: 'owned', Key: 'k', Body: 'v', ExpectedBucketOwner: '111122223333' }))),
      { name: 'AccessDenied', status: 403 },
    );
    assert.equal(master.store.index.get('/owned/k'), undefined);
  });
});

describe('S3 buckets with --credentials', () => {
  let set: VolumeSet;
  let master: TestMaster;
  before(async () => {
    set = await startVolumes('embedded', 3);
    master = await startMaster(set.volumes, {}, { credentials: parseCredentials('one:one-secret\ntwo:two-secret\n', 'credentials') });
  });
  after(async () => {
    await master?.close();
    await set?.close();
    if (master) removeDir(master.db);
  });

  test('CreateBucket of a bucket another access key created is 409 BucketAlreadyExists; its creator gets 200 again', async () => {
    const one = client(master.url, 'one', 'one-secret');
    const two = client(master.url, 'two', 'two-secret');
    try {
      await one.send(new CreateBucketCommand({ Bucket: 'first-come' }));
      assert.equal(master.store.index.bucket('first-come')?.owner, 'one');
      assert.equal((await one.send(new CreateBucketCommand({ Bucket: 'first-come' }))).$metadata.httpStatusCode, 200);
      assert.deepEqual(await failure(two.send(new CreateBucketCommand({ Bucket: 'first-come' }))), {
        name: 'BucketAlreadyExists',
        status: 409,
      });
      // The credentials file says who may do what in it: the other key may still use it.
      await two.send(new PutObjectCommand({ Bucket: 'first-come', Key: 'k', Body: 'v' }));
    } finally {
      one.destroy();
      two.destroy();
    }
  });
});

/** The created buckets of a db's index (opened read-only; the master must be stopped or read-only itself). */
async function bucketsOf(db: string): Promise<Array<[string, BucketRecord]>> {
  const index = IndexStore.open(indexDir(db), { readOnly: true });
  try {
    return [...index.bucketEntries()];
  } finally {
    await index.close();
  }
}

describe('buckets are the log’s', () => {
  let set: VolumeSet;
  let root: string;
  before(async () => {
    set = await startVolumes('embedded', 3);
    root = tempDir('mkv-buckets-');
  });
  after(async () => {
    await set?.close();
    if (root) removeDir(root);
  });

  test('they survive a rebuild from the log, are there in a point-in-time rebuild as they were, and survive a compaction', async () => {
    const db = `${root}/db`;
    let master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db, '--segment-size', '2048']);
    let s3 = client(master.url);
    await s3.send(
      new CreateBucketCommand({
        Bucket: 'kept-empty',
        CreateBucketConfiguration: { LocationConstraint: 'default' as BucketLocationConstraint },
      }),
    );
    for (const Bucket of ['kept-full', 'dropped']) await s3.send(new CreateBucketCommand({ Bucket }));
    await s3.send(new PutObjectCommand({ Bucket: 'kept-full', Key: 'k', Body: 'v' }));
    for (let i = 0; i < 20; i++) assert.equal((await http('PUT', `${master.url}/filler/${i}`, `value ${i}`)).status, 201);
    await s3.send(new DeleteBucketCommand({ Bucket: 'dropped' }));
    s3.destroy();
    await stopMaster(master);

    const buckets = await bucketsOf(db);
    assert.deepEqual(
      buckets.map(([name]) => name),
      ['kept-empty', 'kept-full'],
    );
    assert.equal(buckets[0]![1].location, 'default');
    await assertIndexEqualsReplay(db);

    // Rebuilt from the log, in place.
    const rebuilt = await runMkv(['rebuild', '--db', db, '--from-log']);
    assert.equal(rebuilt.status, 0, rebuilt.stderr);
    assert.deepEqual(await bucketsOf(db), buckets);

    // As it was before "dropped" was deleted: the seq of that event less one.
    const index = IndexStore.open(indexDir(db), { readOnly: true });
    const history = index.historyOf('dropped');
    await index.close();
    assert.deepEqual(
      history.map((event) => event.change.type),
      ['BucketCreated', 'BucketDeleted'],
    );
    const pit = `${root}/pit`;
    const point = await runMkv(['rebuild', '--db', db, '--from-log', '--until-seq', String(history[1]!.seq - 1), '--into', pit]);
    assert.equal(point.status, 0, point.stderr);
    assert.deepEqual(
      (await bucketsOf(pit)).map(([name]) => name),
      ['dropped', 'kept-empty', 'kept-full'],
    );
    // Served read-only, the point in time answers for its buckets as they were.
    const reader = await spawnMaster(['--volumes', set.volumes.join(','), '--db', pit, '--read-only']);
    s3 = client(reader.url);
    try {
      assert.equal((await s3.send(new HeadBucketCommand({ Bucket: 'dropped' }))).$metadata.httpStatusCode, 200);
    } finally {
      s3.destroy();
      await stopMaster(reader);
    }

    // Compacted: every segment but the newest folded into a snapshot; the buckets stay, dates and all.
    master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db, '--segment-size', '2048']);
    for (let i = 20; i < 30; i++) assert.equal((await http('PUT', `${master.url}/filler/${i}`, `value ${i}`)).status, 201);
    await stopMaster(master);
    const compacted = await runMkv(['log', 'compact', '--db', db, '--before', new Date().toISOString()]);
    assert.equal(compacted.status, 0, compacted.stderr);
    assert.match(compacted.stdout, /compacted [1-9]\d* segments/);
    assert.deepEqual(await bucketsOf(db), buckets);
    await assertIndexEqualsReplay(db);
    const again = await runMkv(['rebuild', '--db', db, '--from-log']);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(await bucketsOf(db), buckets);

    master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db]);
    s3 = client(master.url);
    try {
      const names = await bucketNames(s3);
      assert.ok(names.includes('kept-empty') && names.includes('kept-full') && !names.includes('dropped'), names.join(' '));
      assert.deepEqual(await failure(s3.send(new HeadBucketCommand({ Bucket: 'dropped' }))), { name: 'NotFound', status: 404 });
    } finally {
      s3.destroy();
      await stopMaster(master);
    }
  });
});

describe('buckets on a master with HTTP workers', () => {
  let set: VolumeSet;
  let root: string;
  before(async () => {
    set = await startVolumes('embedded', 3);
    root = tempDir('mkv-buckets-workers-');
  });
  after(async () => {
    await set?.close();
    if (root) removeDir(root);
  });

  test('every worker answers for the buckets created and deleted through any of them', async () => {
    const master = await spawnMaster(['--workers', '2', '--db', `${root}/db`, '--volumes', set.volumes.join(',')]);
    const s3 = client(master.url);
    // New connections each time, so the requests spread over both workers.
    const head = async (Bucket: string) =>
      (await http('HEAD', `${master.url}/${Bucket}`, undefined, { ...S3_AGENT, connection: 'close' })).status;
    try {
      for (let i = 0; i < 4; i++) {
        const reply = await http('PUT', `${master.url}/worker-${i}`, '', { ...S3_AGENT, connection: 'close' });
        assert.equal(reply.status, 200, reply.text);
      }
      for (let round = 0; round < 4; round++) for (let i = 0; i < 4; i++) assert.equal(await head(`worker-${i}`), 200);
      for (let i = 0; i < 4; i++)
        assert.equal((await http('DELETE', `${master.url}/worker-${i}`, undefined, { ...S3_AGENT, connection: 'close' })).status, 204);
      for (let round = 0; round < 4; round++) for (let i = 0; i < 4; i++) assert.equal(await head(`worker-${i}`), 404);
      assert.ok(!(await bucketNames(s3)).some((name) => name.startsWith('worker-')));
    } finally {
      s3.destroy();
      await stopMaster(master);
    }
    await assertIndexEqualsReplay(`${root}/db`);
  });
});

describe('buckets on two masters of one JetStream stream', { skip: natsSkipReason() }, () => {
  let shared: SharedStream<NatsServer>;
  before(async () => (shared = await startSharedStream('mkv-buckets-js-')));
  after(() => shared?.close());

  test('a bucket created through one master exists through the other; deleted through it, it is gone through both', async () => {
    const a = await shared.spawn('a', 'BUCKETS');
    const b = await shared.spawn('b', 'BUCKETS');
    const s3a = client(a.url);
    const s3b = client(b.url);
    const headStatus = (s3: S3Client, Bucket: string) =>
      s3.send(new HeadBucketCommand({ Bucket })).then(
        (reply) => reply.$metadata.httpStatusCode,
        (error: { $metadata?: { httpStatusCode?: number } }) => error.$metadata?.httpStatusCode,
      );
    try {
      // The other master projects the stream on its own time: each step polls until it has.
      await s3a.send(new CreateBucketCommand({ Bucket: 'shared-bucket' }));
      await until('B to see the bucket', async () => (await headStatus(s3b, 'shared-bucket')) === 200, 30_000);
      await s3b.send(new PutObjectCommand({ Bucket: 'shared-bucket', Key: 'k', Body: 'v' }));
      await until('A to see the key', async () => (await http('GET', `${a.url}/shared-bucket/k`)).status === 302, 30_000);
      assert.deepEqual(await failure(s3a.send(new DeleteBucketCommand({ Bucket: 'shared-bucket' }))), {
        name: 'BucketNotEmpty',
        status: 409,
      });
      await s3a.send(new DeleteObjectCommand({ Bucket: 'shared-bucket', Key: 'k' }));
      await until('B to see the key gone', async () => (await http('GET', `${b.url}/shared-bucket/k`)).status === 404, 30_000);
      await s3b.send(new DeleteBucketCommand({ Bucket: 'shared-bucket' }));
      await until('A to see the bucket gone', async () => (await headStatus(s3a, 'shared-bucket')) === 404, 30_000);
      await s3b.send(new CreateBucketCommand({ Bucket: 'second-bucket' }));
      await until('A to list it', async () => (await bucketNames(s3a)).includes('second-bucket'), 30_000);
    } finally {
      s3a.destroy();
      s3b.destroy();
      await stopMaster(a);
      await stopMaster(b);
    }
    assert.deepEqual(await bucketsOf(shared.db('a')), await bucketsOf(shared.db('b')), 'both masters project the same buckets');
    assert.deepEqual(
      (await bucketsOf(shared.db('a'))).map(([name]) => name),
      ['second-bucket'],
    );
  });
});
