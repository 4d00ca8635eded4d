// The S3 subset driven by a real S3 client (@aws-sdk/client-s3), path-style, over real volumes.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { keyToPath } from '../../src/placement.js';
import { uploadsDir } from '../../src/db/paths.js';
import { until } from '../helpers/wait.js';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import { getFollowing, http } from '../helpers/http.js';
import { nginxSkipReason, removeDir, runMkv, startMaster, startVolumes, type TestMaster, type VolumeSet } from '../helpers/cluster.js';

const md5 = (data: Buffer | string) => createHash('md5').update(data).digest('hex');

function client(url: string): S3Client {
  return new S3Client({
    endpoint: url,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
}

async function bodyOf(output: { Body?: unknown }): Promise<Buffer> {
  return Buffer.from(await (output.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

function s3Suite(kind: 'embedded' | 'nginx', skip: string | false): void {
  describe(`S3 subset on ${kind} volumes`, { skip }, () => {
    let set: VolumeSet;
    let master: TestMaster;
    let s3: S3Client;
    before(async () => {
      set = await startVolumes(kind, 3);
      master = await startMaster(set.volumes);
      s3 = client(master.url);
      for (const Bucket of ['bkt', 'del', 'lbk', 'mpu']) await s3.send(new CreateBucketCommand({ Bucket }));
    });
    after(async () => {
      s3?.destroy();
      await master?.close();
      await set?.close();
      if (master) removeDir(master.db);
    });

    test('PutObject, HeadObject, GetObject (whole and a range); a plain client still gets the redirect', async () => {
      const value = Buffer.from('hello from an S3 client');
      const put = await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'greeting.txt', Body: value }));
      assert.equal(put.ETag, `"${md5(value)}"`);
      const head = await s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'greeting.txt' }));
      assert.equal(head.ContentLength, value.length);
      assert.equal(head.ETag, `"${md5(value)}"`);
      const got = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'greeting.txt' }));
      assert.deepEqual(await bodyOf(got), value);
      const ranged = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'greeting.txt', Range: 'bytes=6-9' }));
      assert.equal((await bodyOf(ranged)).toString(), 'from');
      assert.equal(ranged.ContentRange, `bytes 6-9/${value.length}`);
      const plain = await http('GET', `${master.url}/bkt/greeting.txt`);
      assert.equal(plain.status, 302);
      assert.equal((await getFollowing(`${master.url}/bkt/greeting.txt`)).text, value.toString());
    });

    test('GetObject with replicas missing by hand is served from the one left; a range past the end is InvalidRange', async () => {
      const value = randomBytes(50_000);
      await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'thin.bin', Body: value }));
      const volumes = master.store.index.get('/bkt/thin.bin')!.volumes;
      const fileOf = (volume: string) => {
        const [host, subvolume] = volume.split('/');
        return join(set.dirs[set.volumes.indexOf(host!)]!, subvolume ?? '', keyToPath('/bkt/thin.bin'));
      };
      for (const volume of volumes.slice(1)) rmSync(fileOf(volume));
      // The replicas are tried in random order: most reads meet a 404 (an unread error body) first.
      for (let i = 0; i < 8; i++) {
        assert.equal(md5(await bodyOf(await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'thin.bin' })))), md5(value));
      }
      await assert.rejects(
        s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'thin.bin', Range: `bytes=${value.length + 10}-` })),
        (error: Error) => {
          assert.equal(error.name, 'InvalidRange');
          return true;
        },
      );
      assert.equal((await http('GET', `${master.url}/bkt/thin.bin`)).status, 302, 'the master still serves');
    });

    test('a streamed PutObject (aws-chunked with a trailing checksum) stores the payload only', async () => {
      const parts = [randomBytes(70_000), randomBytes(3), randomBytes(100_000)];
      const whole = Buffer.concat(parts);
      await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'streamed.bin', Body: Readable.from(parts), ContentLength: whole.length }));
      const got = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'streamed.bin' }));
      assert.equal(md5(await bodyOf(got)), md5(whole));
      assert.equal(master.store.index.get('/bkt/streamed.bin')?.md5, md5(whole));
    });

    test('errors are S3 errors: NoSuchKey on GET and a bare 404 on HEAD', async () => {
      await assert.rejects(
        s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'missing' })),
        (error: Error & { $metadata?: { httpStatusCode?: number } }) => {
          assert.equal(error.name, 'NoSuchKey');
          assert.equal(error.$metadata?.httpStatusCode, 404);
          return true;
        },
      );
      await assert.rejects(
        s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'missing' })),
        (error: Error & { $metadata?: { httpStatusCode?: number } }) => error.$metadata?.httpStatusCode === 404,
      );
    });

    test('PutObject over a live key replaces it, as S3 does; the native API stays write-once', async () => {
      await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'twice.txt', Body: 'first' }));
      const second = await s3.send(
        new PutObjectCommand({ Bucket: 'bkt', Key: 'twice.txt', Body: 'second value', ContentType: 'text/plain' }),
      );
      assert.equal(second.ETag, `"${md5('second value')}"`);
      const got = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'twice.txt' }));
      assert.equal((await bodyOf(got)).toString(), 'second value');
      assert.equal(got.ContentType, 'text/plain');
      assert.equal((await http('PUT', `${master.url}/bkt/twice.txt`, 'native')).status, 403);
    });

    test('ListObjectsV2: prefix, delimiter with CommonPrefixes, pagination, start-after, escaping', async () => {
      const keys = ['list/a.txt', 'list/b.txt', 'list/dir1/x', 'list/dir1/y', 'list/dir2/z', 'list/q&a <1>.txt', 'list/zz'];
      for (const key of keys) await s3.send(new PutObjectCommand({ Bucket: 'lbk', Key: key, Body: `v:${key}` }));
      const all = await s3.send(new ListObjectsV2Command({ Bucket: 'lbk', Prefix: 'list/' }));
      assert.deepEqual(
        all.Contents?.map((object) => object.Key),
        [...keys].sort(),
      );
      assert.equal(all.KeyCount, keys.length);
      assert.equal(all.Contents?.find((object) => object.Key === 'list/zz')?.Size, 'v:list/zz'.length);
      assert.equal(all.Contents?.find((object) => object.Key === 'list/zz')?.ETag, `"${md5('v:list/zz')}"`);

      const folded = await s3.send(new ListObjectsV2Command({ Bucket: 'lbk', Prefix: 'list/', Delimiter: '/' }));
      assert.deepEqual(
        folded.Contents?.map((object) => object.Key),
        ['list/a.txt', 'list/b.txt', 'list/q&a <1>.txt', 'list/zz'],
      );
      assert.deepEqual(
        folded.CommonPrefixes?.map((prefix) => prefix.Prefix),
        ['list/dir1/', 'list/dir2/'],
      );

      const seen: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const page: ListObjectsV2CommandOutput = await s3.send(
          new ListObjectsV2Command({ Bucket: 'lbk', Prefix: 'list/', Delimiter: '/', MaxKeys: 2, ContinuationToken: token }),
        );
        pages++;
        seen.push(...(page.Contents ?? []).map((object) => object.Key!), ...(page.CommonPrefixes ?? []).map((prefix) => prefix.Prefix!));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      assert.equal(pages, 3);
      assert.deepEqual(seen.sort(), ['list/a.txt', 'list/b.txt', 'list/dir1/', 'list/dir2/', 'list/q&a <1>.txt', 'list/zz']);

      const rest = await s3.send(new ListObjectsV2Command({ Bucket: 'lbk', Prefix: 'list/', StartAfter: 'list/dir2/z' }));
      assert.deepEqual(
        rest.Contents?.map((object) => object.Key),
        ['list/q&a <1>.txt', 'list/zz'],
      );
      await assert.rejects(s3.send(new ListObjectsV2Command({ Bucket: 'nothing-here' })), (error: Error) => error.name === 'NoSuchBucket');
    });

    test('multipart: a 12 MB object in 5 MB parts, streamed to the replicas', async () => {
      const object = randomBytes(12 * 1024 * 1024);
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'big/object.bin' }));
      assert.ok(UploadId);
      const etags: string[] = [];
      for (let i = 0; i * 5 * 1024 * 1024 < object.length; i++) {
        const part = object.subarray(i * 5 * 1024 * 1024, (i + 1) * 5 * 1024 * 1024);
        const { ETag }: { ETag?: string } = await s3.send(
          new UploadPartCommand({ Bucket: 'mpu', Key: 'big/object.bin', UploadId, PartNumber: i + 1, Body: part }),
        );
        assert.equal(ETag, `"${md5(part)}"`);
        etags.push(ETag);
      }
      const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'mpu' }));
      assert.deepEqual(
        listed.Uploads?.map((upload) => [upload.Key, upload.UploadId]),
        [['big/object.bin', UploadId]],
      );
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'mpu',
          Key: 'big/object.bin',
          UploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
        }),
      );
      const got = await s3.send(new GetObjectCommand({ Bucket: 'mpu', Key: 'big/object.bin' }));
      assert.equal(md5(await bodyOf(got)), md5(object));
      assert.equal(master.store.index.get('/mpu/big/object.bin')?.size, object.length);
      assert.equal(
        ((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'mpu' }))).Uploads ?? []).length,
        0,
        'a completed upload is gone',
      );
    });

    test('multipart: a wrong part ETag is InvalidPart; abort removes the upload', async () => {
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'aborted.bin' }));
      await s3.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'aborted.bin', UploadId, PartNumber: 1, Body: 'part one' }));
      await assert.rejects(
        s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: 'mpu',
            Key: 'aborted.bin',
            UploadId,
            MultipartUpload: { Parts: [{ ETag: '"0123"', PartNumber: 1 }] },
          }),
        ),
        (error: Error) => error.name === 'InvalidPart',
      );
      await s3.send(new AbortMultipartUploadCommand({ Bucket: 'mpu', Key: 'aborted.bin', UploadId }));
      await assert.rejects(
        s3.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'aborted.bin', UploadId, PartNumber: 2, Body: 'late' })),
        (error: Error) => error.name === 'NoSuchUpload',
      );
      assert.equal((await http('GET', `${master.url}/mpu/aborted.bin`)).status, 404);
    });

    test('ListBuckets names the created buckets and those that hold a live key: not one whose keys are all unlinked, nor a key outside any bucket', async () => {
      assert.equal((await http('PUT', `${master.url}/lb-live/a`, 'a')).status, 201);
      assert.equal((await http('PUT', `${master.url}/lb-gone/b`, 'b')).status, 201);
      assert.equal((await http('UNLINK', `${master.url}/lb-gone/b`)).status, 204);
      assert.equal((await http('PUT', `${master.url}/lb-outside`, 'no bucket')).status, 201);
      const names = (await s3.send(new ListBucketsCommand({}))).Buckets?.map((bucket) => bucket.Name) ?? [];
      assert.ok(names.includes('lb-live'), names.join(' '));
      assert.ok(names.includes('bkt') && names.includes('lbk'), 'created buckets');
      assert.ok(!names.includes('lb-gone'), 'a bucket of unlinked keys only');
      assert.ok(!names.includes('lb-outside'), 'a key with no bucket');
    });

    test('DeleteObject (present or not) and DeleteObjects', async () => {
      for (const key of ['d/1', 'd/2', 'd/3', 'd/4']) await s3.send(new PutObjectCommand({ Bucket: 'del', Key: key, Body: key }));
      await s3.send(new DeleteObjectCommand({ Bucket: 'del', Key: 'd/1' }));
      await s3.send(new DeleteObjectCommand({ Bucket: 'del', Key: 'd/never' }));
      const result = await s3.send(
        new DeleteObjectsCommand({ Bucket: 'del', Delete: { Objects: [{ Key: 'd/2' }, { Key: 'd/3' }, { Key: 'd/absent' }] } }),
      );
      assert.deepEqual(result.Deleted?.map((deleted) => deleted.Key).sort(), ['d/2', 'd/3', 'd/absent']);
      assert.equal(result.Errors, undefined);
      const left = await s3.send(new ListObjectsV2Command({ Bucket: 'del' }));
      assert.deepEqual(
        left.Contents?.map((object) => object.Key),
        ['d/4'],
      );
    });

    test('malformed XML is a 400 MalformedXML in S3 XML; the server goes on', async () => {
      for (const body of [
        '<Delete><Object><Key>x</Key></Object>',
        'not xml at all',
        '<Delete></Delete>',
        '<Delete><Object><Key><b>x</b></Key></Object></Delete>',
      ]) {
        const md5 = createHash('md5').update(body).digest('base64');
        const reply = await http('POST', `${master.url}/del?delete`, body, { 'content-type': 'application/xml', 'content-md5': md5 });
        assert.equal(reply.status, 400, body);
        assert.match(reply.text, /<Code>MalformedXML<\/Code>/);
      }
      // As S3: the list of keys comes with its digest.
      const unchecked = await http('POST', `${master.url}/del?delete`, '<Delete><Object><Key>d/4</Key></Object></Delete>');
      assert.equal(unchecked.status, 400);
      assert.match(unchecked.text, /<Code>InvalidRequest<\/Code><Message>Missing required header for this request: Content-Md5/);
      assert.equal((await http('GET', `${master.url}/del/d/4`)).status, 302);
    });

    test('checksum headers that disagree, or promise a checksum never sent, are refused: nothing stored', async () => {
      const sdk = { 'amz-sdk-invocation-id': 'test' };
      const crc32 = 'NSRBwg=='; // of "abc"
      const sha256 = 'ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=';
      const refused: Array<Record<string, string>> = [
        { 'x-amz-sdk-checksum-algorithm': 'CRC32' },
        { 'x-amz-checksum-algorithm': 'CRC32' },
        { 'x-amz-sdk-checksum-algorithm': 'CRC32', 'x-amz-checksum-sha256': sha256 },
        { 'x-amz-checksum-crc32': crc32, 'x-amz-checksum-sha256': sha256 },
      ];
      for (const headers of refused) {
        const answer = await http('PUT', `${master.url}/bkt/checked`, 'abc', { ...sdk, ...headers });
        assert.equal(answer.status, 400, JSON.stringify(headers));
        assert.match(answer.text, /<Code>InvalidRequest<\/Code>/);
      }
      assert.equal((await http('HEAD', `${master.url}/bkt/checked`, undefined, sdk)).status, 404);
      const agreed = await http('PUT', `${master.url}/bkt/checked`, 'abc', {
        ...sdk,
        'x-amz-sdk-checksum-algorithm': 'CRC32',
        'x-amz-checksum-crc32': crc32,
      });
      assert.equal(agreed.status, 200);
    });

    test('ListObjectsV2 refuses a continuation-token it did not give for the bucket, and an encoding-type other than url', async () => {
      const sdk = { 'amz-sdk-invocation-id': 'test' };
      const foreign = await http('GET', `${master.url}/bkt?list-type=2&continuation-token=Zm9v`, undefined, sdk);
      assert.equal(foreign.status, 400);
      assert.match(foreign.text, /continuation token provided is incorrect/);
      assert.equal((await http('GET', `${master.url}/bkt?list-type=2&encoding-type=zzz`, undefined, sdk)).status, 400);
    });

    test('with no credentials to check a signature, a body is still checked against the sha256 its request states', async () => {
      const stated = createHash('sha256').update('what was signed').digest('hex');
      const headers = { 'x-amz-content-sha256': stated, 'amz-sdk-invocation-id': 'test' };
      const swapped = await http('PUT', `${master.url}/bkt/swapped`, 'another body', headers);
      assert.equal(swapped.status, 400);
      assert.match(swapped.text, /<Code>XAmzContentSHA256Mismatch<\/Code>/);
      assert.equal((await http('HEAD', `${master.url}/bkt/swapped`, undefined, { 'amz-sdk-invocation-id': 'test' })).status, 404);
      assert.equal((await http('PUT', `${master.url}/bkt/swapped`, 'what was signed', headers)).status, 200);
      const malformed = await http('PUT', `${master.url}/bkt/swapped`, 'x', {
        'x-amz-content-sha256': 'garbage',
        'amz-sdk-invocation-id': 'test',
      });
      assert.equal(malformed.status, 400, 'a stated sha256 that is none is refused, as with credentials');
      // PutObject has one version, "null": another named is refused, not dropped.
      const versioned = await http('PUT', `${master.url}/bkt/swapped?versionId=abc`, 'x', { 'amz-sdk-invocation-id': 'test' });
      assert.equal(versioned.status, 400);
    });
  });
}

s3Suite('embedded', false);
s3Suite('nginx', nginxSkipReason());

describe('S3 multipart aborted while a part arrives', () => {
  test('the part gets NoSuchUpload, and no answer names a file of the master', async () => {
    const set = await startVolumes('embedded', 3);
    const master = await startMaster(set.volumes);
    try {
      assert.equal((await http('PUT', `${master.url}/bkt`, '', { 'user-agent': 'aws-cli/2' })).status, 200);
      const created = await http('POST', `${master.url}/bkt/aborted?uploads`, '');
      const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created.text)![1]!;
      // A part on its way (half its bytes sent), then the abort, then the rest of the part.
      const socket = connect(master.port, '127.0.0.1');
      let reply = '';
      socket.on('data', (chunk) => (reply += chunk.toString()));
      const closed = new Promise((resolve) => socket.on('close', resolve));
      socket.write(
        `PUT /bkt/aborted?partNumber=1&uploadId=${uploadId} HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\nConnection: close\r\n\r\n`,
      );
      socket.write(Buffer.alloc(100_000, 1));
      // The part is being written: its file, aside, holds bytes already.
      const upload = join(uploadsDir(master.db), uploadId);
      await until('the part to be on its way to disk', () =>
        readdirSync(upload).some((name) => name.startsWith('part-00001.tmp-') && statSync(join(upload, name)).size > 0),
      );
      assert.equal((await http('DELETE', `${master.url}/bkt/aborted?uploadId=${uploadId}`)).status, 204);
      socket.write(Buffer.alloc(100_000, 2));
      await closed; // Connection: close
      assert.match(reply, /^HTTP\/1\.1 404/, reply.slice(0, 300));
      assert.match(reply, /<Code>NoSuchUpload<\/Code>/);
      assert.doesNotMatch(reply, /uploads\/|part-0|\.tmp-|\/tmp\//, 'no path of the master in the answer');
    } finally {
      await master.close();
      await set.close();
      removeDir(master.db);
    }
  });
});

describe('S3 multipart across a master restart', () => {
  test('parts uploaded before a restart complete after it', async () => {
    const set = await startVolumes('embedded', 3);
    let master = await startMaster(set.volumes);
    try {
      let s3 = client(master.url);
      await s3.send(new CreateBucketCommand({ Bucket: 'rst' }));
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'rst', Key: 'k' }));
      // Every part but the last is 5 MiB at least (S3's EntityTooSmall otherwise).
      const first = Buffer.alloc(5 * 1024 * 1024, 'first part, ');
      const one = await s3.send(new UploadPartCommand({ Bucket: 'rst', Key: 'k', UploadId, PartNumber: 1, Body: first }));
      s3.destroy();
      await master.close();
      master = await startMaster(set.volumes, {}, { db: master.db });
      s3 = client(master.url);
      const two = await s3.send(new UploadPartCommand({ Bucket: 'rst', Key: 'k', UploadId, PartNumber: 2, Body: 'second part' }));
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'rst',
          Key: 'k',
          UploadId,
          MultipartUpload: {
            Parts: [
              { ETag: one.ETag, PartNumber: 1 },
              { ETag: two.ETag, PartNumber: 2 },
            ],
          },
        }),
      );
      assert.deepEqual(
        await bodyOf(await s3.send(new GetObjectCommand({ Bucket: 'rst', Key: 'k' }))),
        Buffer.concat([first, Buffer.from('second part')]),
      );
      s3.destroy();
    } finally {
      await master.close();
      await set.close();
      removeDir(master.db);
    }
  });
});

describe('mkv uploads', () => {
  test('lists uploads in progress and aborts the abandoned ones', async () => {
    const set = await startVolumes('embedded', 3);
    const master = await startMaster(set.volumes);
    const s3 = client(master.url);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'upl' }));
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'upl', Key: 'left/behind' }));
      await s3.send(new UploadPartCommand({ Bucket: 'upl', Key: 'left/behind', UploadId, PartNumber: 1, Body: 'twelve bytes' }));
      const listed = await runMkv(['uploads', '--db', master.db]);
      assert.equal(listed.status, 0, listed.stderr);
      assert.match(listed.stdout, new RegExp(`^${UploadId}\\t\\S+\\t1 parts\\t12 bytes\\t"/upl/left/behind"\\n$`));
      const young = await runMkv(['uploads', '--db', master.db, '--abort-older-than', '1h']);
      assert.match(young.stderr, /aborted 0 uploads/);
      const dry = await runMkv(['uploads', '--db', master.db, '--abort-older-than', '0', '--dry-run']);
      assert.match(dry.stdout, /\twould abort\n$/);
      assert.match(dry.stderr, /would abort 1 uploads/);
      const cleaned = await runMkv(['uploads', '--db', master.db, '--abort-older-than', '0']);
      assert.match(cleaned.stderr, /aborted 1 uploads/);
      await assert.rejects(
        s3.send(new UploadPartCommand({ Bucket: 'upl', Key: 'left/behind', UploadId, PartNumber: 2, Body: 'x' })),
        (error: Error) => error.name === 'NoSuchUpload',
      );
    } finally {
      s3.destroy();
      await master.close();
      await set.close();
      removeDir(master.db);
    }
  });
});
