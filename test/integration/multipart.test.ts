// S3 multipart upload as S3 answers it, driven by the AWS SDK (and the aws cli where installed)
// against a master with --credentials over real volumes: UploadPartCopy (ranges, the read right,
// copy conditions), EntityTooSmall, a repeated CompleteMultipartUpload, part checksums (header
// and aws-chunked trailer, COMPOSITE and FULL_OBJECT), ListParts and ListMultipartUploads paging,
// GET/HEAD ?partNumber, GetObjectAttributes.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectAttributesCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { parseCredentials } from '../../src/auth/credentials.js';
import { clientEnv } from '../helpers/s3-clients.js';
import { http } from '../helpers/http.js';
import { uploadsDir } from '../../src/db/paths.js';
import { removeDir, runMkv, startMaster, startVolumes, type TestMaster, type VolumeSet } from '../helpers/cluster.js';

const MiB = 1024 * 1024;
const CREDENTIALS = 'admin:admin-secret-key\nwriter:writer-secret-key read,write,list,delete /dst/\n';
const md5 = (data: Buffer | string) => createHash('md5').update(data).digest('hex');
const run = promisify(execFile);

function client(url: string, user = 'admin'): S3Client {
  return new S3Client({
    endpoint: url,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: user, secretAccessKey: `${user}-secret-key` },
    maxAttempts: 1,
  });
}

async function bodyOf(output: { Body?: unknown }): Promise<Buffer> {
  return Buffer.from(await (output.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

/** An S3 error of this code and HTTP status. */
function s3Error(name: string, status: number) {
  return (error: Error & { $metadata?: { httpStatusCode?: number } }) => {
    assert.equal(error.name, name, error.message);
    assert.equal(error.$metadata?.httpStatusCode, status);
    return true;
  };
}

/** The ETag of a multipart value of these parts: md5 of the parts' md5s, then -N. */
function multipartEtag(parts: Buffer[]): string {
  const all = createHash('md5');
  for (const part of parts) all.update(createHash('md5').update(part).digest());
  return `"${all.digest('hex')}-${parts.length}"`;
}

describe('S3 multipart upload as S3 answers it', () => {
  let set: VolumeSet;
  let master: TestMaster;
  let s3: S3Client;
  let writer: S3Client;
  const source = randomBytes(12 * MiB + 12345);
  before(async () => {
    set = await startVolumes('embedded', 3);
    master = await startMaster(set.volumes, {}, { credentials: parseCredentials(CREDENTIALS, 'credentials') });
    s3 = client(master.url);
    writer = client(master.url, 'writer');
    for (const Bucket of ['src', 'dst']) await s3.send(new CreateBucketCommand({ Bucket }));
    await s3.send(new PutObjectCommand({ Bucket: 'src', Key: 'big', Body: source }));
  });
  after(async () => {
    s3?.destroy();
    writer?.destroy();
    await master?.close();
    await set?.close();
    if (master) removeDir(master.db);
  });

  async function begin(Key: string, options: Partial<ConstructorParameters<typeof CreateMultipartUploadCommand>[0]> = {}) {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'dst', Key, ...options }));
    assert.ok(UploadId);
    return UploadId;
  }

  test('UploadPartCopy of a 12 MiB value in ranges: each part its bytes, the value the source', async () => {
    const UploadId = await begin('copy');
    const cut = 6 * MiB;
    const first = await s3.send(
      new UploadPartCopyCommand({
        Bucket: 'dst',
        Key: 'copy',
        UploadId,
        PartNumber: 1,
        CopySource: 'src/big',
        CopySourceRange: `bytes=0-${cut - 1}`,
      }),
    );
    assert.equal(first.CopyPartResult?.ETag, `"${md5(source.subarray(0, cut))}"`);
    assert.ok(first.CopyPartResult?.LastModified instanceof Date);
    const second = await s3.send(
      new UploadPartCopyCommand({
        Bucket: 'dst',
        Key: 'copy',
        UploadId,
        PartNumber: 2,
        CopySource: '/src/big',
        CopySourceRange: `bytes=${cut}-${source.length - 1}`,
        CopySourceIfMatch: `"${md5(source)}"`,
      }),
    );
    assert.equal(second.CopyPartResult?.ETag, `"${md5(source.subarray(cut))}"`);
    const listed = await s3.send(new ListPartsCommand({ Bucket: 'dst', Key: 'copy', UploadId }));
    assert.deepEqual(
      listed.Parts?.map((part) => [part.PartNumber, part.Size]),
      [
        [1, cut],
        [2, source.length - cut],
      ],
    );
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'dst',
        Key: 'copy',
        UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: first.CopyPartResult.ETag },
            { PartNumber: 2, ETag: second.CopyPartResult.ETag },
          ],
        },
      }),
    );
    assert.equal(done.ETag, multipartEtag([source.subarray(0, cut), source.subarray(cut)]));
    const copied = await bodyOf(await s3.send(new GetObjectCommand({ Bucket: 'dst', Key: 'copy' })));
    assert.equal(copied.length, source.length);
    assert.ok(copied.equals(source), 'the copy holds the source bytes, in order');
  });

  test('UploadPartCopy without a range copies the whole value; a short range of it too', async () => {
    const UploadId = await begin('whole');
    const whole = await s3.send(new UploadPartCopyCommand({ Bucket: 'dst', Key: 'whole', UploadId, PartNumber: 1, CopySource: 'src/big' }));
    assert.equal(whole.CopyPartResult?.ETag, `"${md5(source)}"`);
    const tail = await s3.send(
      new UploadPartCopyCommand({
        Bucket: 'dst',
        Key: 'whole',
        UploadId,
        PartNumber: 2,
        CopySource: 'src/big',
        CopySourceRange: 'bytes=10-19',
      }),
    );
    assert.equal(tail.CopyPartResult?.ETag, `"${md5(source.subarray(10, 20))}"`);
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'dst',
        Key: 'whole',
        UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: whole.CopyPartResult.ETag },
            { PartNumber: 2, ETag: tail.CopyPartResult.ETag },
          ],
        },
      }),
    );
    const value = await bodyOf(await s3.send(new GetObjectCommand({ Bucket: 'dst', Key: 'whole' })));
    assert.ok(value.equals(Buffer.concat([source, source.subarray(10, 20)])));
  });

  test('UploadPartCopy refuses as S3 does: bad ranges, a missing source, a failed condition; and stores no part', async () => {
    const UploadId = await begin('refused');
    const copy = (extra: Partial<ConstructorParameters<typeof UploadPartCopyCommand>[0]>) =>
      s3.send(new UploadPartCopyCommand({ Bucket: 'dst', Key: 'refused', UploadId, PartNumber: 1, CopySource: 'src/big', ...extra }));
    await assert.rejects(copy({ CopySourceRange: `bytes=0-${source.length}` }), s3Error('InvalidRange', 416));
    for (const range of ['0-2', 'bytes=0', 'bytes=hello-world', 'bytes=0-bar', 'bytes=hello-', 'bytes=0-2,3-5', 'bytes=5-2'])
      await assert.rejects(copy({ CopySourceRange: range }), s3Error('InvalidArgument', 400), range);
    await assert.rejects(copy({ CopySource: 'src/nothing-here' }), s3Error('NoSuchKey', 404));
    await assert.rejects(copy({ CopySourceIfMatch: '"0123"' }), s3Error('PreconditionFailed', 412));
    await assert.rejects(copy({ CopySourceIfNoneMatch: `"${md5(source)}"` }), s3Error('PreconditionFailed', 412));
    const listed = await s3.send(new ListPartsCommand({ Bucket: 'dst', Key: 'refused', UploadId }));
    assert.deepEqual(listed.Parts ?? [], []);
  });

  test('UploadPartCopy needs the read right on the source: a key that may write the destination only is AccessDenied', async () => {
    const { UploadId } = await writer.send(new CreateMultipartUploadCommand({ Bucket: 'dst', Key: 'stolen' }));
    await assert.rejects(
      writer.send(new UploadPartCopyCommand({ Bucket: 'dst', Key: 'stolen', UploadId, PartNumber: 1, CopySource: 'src/big' })),
      s3Error('AccessDenied', 403),
    );
    assert.deepEqual((await writer.send(new ListPartsCommand({ Bucket: 'dst', Key: 'stolen', UploadId }))).Parts ?? [], []);
    // What it may read, it may copy.
    await writer.send(new PutObjectCommand({ Bucket: 'dst', Key: 'mine', Body: 'my own bytes' }));
    const own = await writer.send(
      new UploadPartCopyCommand({ Bucket: 'dst', Key: 'stolen', UploadId, PartNumber: 1, CopySource: 'dst/mine' }),
    );
    assert.equal(own.CopyPartResult?.ETag, `"${md5('my own bytes')}"`);
  });

  test('EntityTooSmall: a part under 5 MiB but the last; nothing is written', async () => {
    const UploadId = await begin('small-parts');
    const parts: CompletedPart[] = [];
    for (const PartNumber of [1, 2]) {
      const { ETag } = await s3.send(
        new UploadPartCommand({ Bucket: 'dst', Key: 'small-parts', UploadId, PartNumber, Body: Buffer.alloc(1024, PartNumber) }),
      );
      parts.push({ PartNumber, ETag: ETag! });
    }
    await assert.rejects(
      s3.send(new CompleteMultipartUploadCommand({ Bucket: 'dst', Key: 'small-parts', UploadId, MultipartUpload: { Parts: parts } })),
      s3Error('EntityTooSmall', 400),
    );
    assert.equal(master.store.index.get('/dst/small-parts'), undefined);
    // Only the last part may be small: the upload completes with part 1 alone.
    await s3.send(
      new CompleteMultipartUploadCommand({ Bucket: 'dst', Key: 'small-parts', UploadId, MultipartUpload: { Parts: parts.slice(0, 1) } }),
    );
    assert.equal(master.store.index.get('/dst/small-parts')?.size, 1024);
  });

  test('CompleteMultipartUpload again answers as the first time while the key holds that value; then NoSuchUpload', async () => {
    const UploadId = await begin('twice');
    const part = randomBytes(100);
    const { ETag } = await s3.send(new UploadPartCommand({ Bucket: 'dst', Key: 'twice', UploadId, PartNumber: 1, Body: part }));
    const complete = () =>
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'dst',
          Key: 'twice',
          UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: ETag! }] },
        }),
      );
    const first = await complete();
    const seq = master.store.index.get('/dst/twice')?.seq;
    const again = await complete();
    assert.equal(again.ETag, first.ETag);
    assert.equal(again.Key, 'twice');
    assert.equal(master.store.index.get('/dst/twice')?.seq, seq, 'nothing written again');
    // Again with other parts: not the completion that was made.
    const other = s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'dst',
        Key: 'twice',
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"ffffffffffffffffffffffffffffffff"' }] },
      }),
    );
    await assert.rejects(other, s3Error('NoSuchUpload', 404));
    // Completed: no longer listed, and no part may be added.
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'dst' }));
    assert.ok(!(uploads.Uploads ?? []).some((upload) => upload.UploadId === UploadId));
    await assert.rejects(
      s3.send(new UploadPartCommand({ Bucket: 'dst', Key: 'twice', UploadId, PartNumber: 2, Body: 'late' })),
      s3Error('NoSuchUpload', 404),
    );
    await assert.rejects(s3.send(new AbortMultipartUploadCommand({ Bucket: 'dst', Key: 'twice', UploadId })), s3Error('NoSuchUpload', 404));
    await s3.send(new PutObjectCommand({ Bucket: 'dst', Key: 'twice', Body: 'another value' }));
    await assert.rejects(complete(), s3Error('NoSuchUpload', 404));
    await assert.rejects(
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'dst',
          Key: 'twice',
          UploadId: 'abc1234def',
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '1234' }] },
        }),
      ),
      s3Error('NoSuchUpload', 404),
    );
    await assert.rejects(
      s3.send(new AbortMultipartUploadCommand({ Bucket: 'dst', Key: 'twice', UploadId: '56788' })),
      s3Error('NoSuchUpload', 404),
    );
  });

  test('CompleteMultipartUpload with x-amz-mp-object-size: the size the parts hold, else 400 and nothing written', async () => {
    const UploadId = await begin('sized');
    const { ETag } = await s3.send(new UploadPartCommand({ Bucket: 'dst', Key: 'sized', UploadId, PartNumber: 1, Body: randomBytes(100) }));
    const complete = (MpuObjectSize: number) =>
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'dst',
          Key: 'sized',
          UploadId,
          MpuObjectSize,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: ETag! }] },
        }),
      );
    await assert.rejects(complete(12345), s3Error('InvalidRequest', 400));
    assert.equal(master.store.index.get('/dst/sized'), undefined);
    await complete(100);
    assert.equal(master.store.index.get('/dst/sized')?.size, 100);
  });

  test('two CompleteMultipartUploads of one upload at once: both answer the same, one value is written', async () => {
    const UploadId = await begin('at-once');
    const parts: CompletedPart[] = [];
    for (const PartNumber of [1, 2]) {
      const { ETag } = await s3.send(
        new UploadPartCommand({ Bucket: 'dst', Key: 'at-once', UploadId, PartNumber, Body: Buffer.alloc(5 * MiB, PartNumber) }),
      );
      parts.push({ PartNumber, ETag: ETag! });
    }
    const complete = () =>
      s3.send(new CompleteMultipartUploadCommand({ Bucket: 'dst', Key: 'at-once', UploadId, MultipartUpload: { Parts: parts } }));
    const [one, two] = await Promise.all([complete(), complete()]);
    assert.equal(one.ETag, two.ETag);
    const committed = master.store.index.historyOf('/dst/at-once').filter((event) => event.change.type === 'ObjectCommitted');
    assert.equal(committed.length, 1);
  });

  test('CompleteMultipartUpload takes If-None-Match (* or ETags) and If-Match, checked when it commits', async () => {
    const attempt = async (condition: { IfNoneMatch?: string; IfMatch?: string }) => {
      const UploadId = await begin('conditional');
      const { ETag } = await s3.send(new UploadPartCommand({ Bucket: 'dst', Key: 'conditional', UploadId, PartNumber: 1, Body: 'abc' }));
      return s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'dst',
          Key: 'conditional',
          UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: ETag! }] },
          ...condition,
        }),
      );
    };
    await assert.rejects(attempt({ IfMatch: '*' }), s3Error('NoSuchKey', 404));
    const first = await attempt({ IfNoneMatch: '*' });
    await assert.rejects(attempt({ IfNoneMatch: '*' }), s3Error('PreconditionFailed', 412));
    await assert.rejects(attempt({ IfNoneMatch: first.ETag! }), s3Error('PreconditionFailed', 412));
    await assert.rejects(attempt({ IfMatch: '"badetag"' }), s3Error('PreconditionFailed', 412));
    await attempt({ IfNoneMatch: '"badetag"' });
    await attempt({ IfMatch: first.ETag! });
  });

  test('UploadPart checks its body: a wrong (or malformed) x-amz-checksum-* or a wrong Content-MD5 is BadDigest, a malformed Content-MD5 InvalidDigest; no part is kept', async () => {
    const UploadId = await begin('digests');
    const upload = (extra: Partial<ConstructorParameters<typeof UploadPartCommand>[0]>) =>
      s3.send(new UploadPartCommand({ Bucket: 'dst', Key: 'digests', UploadId, PartNumber: 1, Body: 'part bytes', ...extra }));
    await assert.rejects(upload({ ChecksumCRC32: 'AAAAAA==' }), s3Error('BadDigest', 400));
    // Not a CRC32 at all: no body matches it either (ceph's s3-tests: BadDigest).
    await assert.rejects(upload({ ChecksumCRC32: 'bad' }), s3Error('BadDigest', 400));
    await assert.rejects(upload({ ChecksumSHA256: createHash('sha256').update('other').digest('base64') }), s3Error('BadDigest', 400));
    await assert.rejects(upload({ ContentMD5: createHash('md5').update('other').digest('base64') }), s3Error('BadDigest', 400));
    await assert.rejects(upload({ ContentMD5: 'not-an-md5' }), s3Error('InvalidDigest', 400));
    assert.deepEqual((await s3.send(new ListPartsCommand({ Bucket: 'dst', Key: 'digests', UploadId }))).Parts ?? [], []);
    const right = await upload({ ContentMD5: createHash('md5').update('part bytes').digest('base64') });
    assert.equal(right.ETag, `"${md5('part bytes')}"`);
  });

  // ceph's s3-tests' vectors: three 5 MiB parts of A, B and C.
  const abc = ['A', 'B', 'C'].map((char) => Buffer.alloc(5 * MiB, char));

  test('a SHA256 upload: each part checksum answered and listed, the COMPOSITE one of the value served with x-amz-checksum-mode', async () => {
    const UploadId = await begin('sha256', { ChecksumAlgorithm: 'SHA256' });
    const expected = [
      '275VF5loJr1YYawit0XSHREhkFXYkkPKGuoK0x9VKxI=',
      'mrHwOfjTL5Zwfj74F05HOQGLdUb7E5szdCbxgUSq6NM=',
      'Vw7oB/nKQ5xWb3hNgbyfkvDiivl+U+/Dft48nfJfDow=',
    ];
    const parts: CompletedPart[] = [];
    for (const [i, body] of abc.entries()) {
      // Part 2 as a stream of unknown hash: the SDK sends it aws-chunked, its checksum in the trailer.
      const Body = i === 1 ? Readable.from([body]) : body;
      const answer = await s3.send(
        new UploadPartCommand({
          Bucket: 'dst',
          Key: 'sha256',
          UploadId,
          PartNumber: i + 1,
          Body,
          ContentLength: body.length,
          ChecksumAlgorithm: 'SHA256',
        }),
      );
      assert.equal(answer.ChecksumSHA256, expected[i]);
      parts.push({ PartNumber: i + 1, ETag: answer.ETag!, ChecksumSHA256: answer.ChecksumSHA256! });
    }
    // A part of another algorithm is refused.
    await assert.rejects(
      s3.send(new UploadPartCommand({ Bucket: 'dst', Key: 'sha256', UploadId, PartNumber: 4, Body: 'x', ChecksumAlgorithm: 'CRC32' })),
      s3Error('InvalidRequest', 400),
    );
    const page = await s3.send(new ListPartsCommand({ Bucket: 'dst', Key: 'sha256', UploadId, MaxParts: 2 }));
    assert.equal(page.IsTruncated, true);
    assert.equal(page.NextPartNumberMarker, '2');
    assert.equal(page.MaxParts, 2);
    assert.equal(page.StorageClass, 'STANDARD');
    assert.equal(page.Initiator?.ID, 'admin');
    assert.ok(page.Owner?.ID);
    assert.equal(page.ChecksumAlgorithm, 'SHA256');
    assert.deepEqual(
      page.Parts?.map((part) => [part.PartNumber, part.Size, part.ChecksumSHA256]),
      [
        [1, 5 * MiB, expected[0]],
        [2, 5 * MiB, expected[1]],
      ],
    );
    const rest = await s3.send(new ListPartsCommand({ Bucket: 'dst', Key: 'sha256', UploadId, PartNumberMarker: '2' }));
    assert.equal(rest.IsTruncated, false);
    assert.deepEqual(
      rest.Parts?.map((part) => part.PartNumber),
      [3],
    );

    const complete = (extra: Partial<ConstructorParameters<typeof CompleteMultipartUploadCommand>[0]>) =>
      s3.send(new CompleteMultipartUploadCommand({ Bucket: 'dst', Key: 'sha256', UploadId, MultipartUpload: { Parts: parts }, ...extra }));
    await assert.rejects(
      complete({ MultipartUpload: { Parts: [{ ...parts[0]!, ChecksumSHA256: expected[1] }, ...parts.slice(1)] } }),
      s3Error('InvalidPart', 400),
    );
    await assert.rejects(complete({ ChecksumSHA256: 'bad' }), s3Error('BadDigest', 400));
    const composite = 'uWBwpe1dxI4Vw8Gf0X9ynOdw/SS6VBzfWm9giiv1sf4=-3';
    const done = await complete({ ChecksumSHA256: composite });
    assert.equal(done.ETag, `"b2add96cc9702bbf4efb0ccdfc6b7747-3"`);
    assert.equal(done.ChecksumSHA256, composite);
    assert.equal(done.ChecksumType, 'COMPOSITE');
    const again = await complete({ ChecksumSHA256: composite });
    assert.equal(again.ETag, done.ETag);
    assert.equal(again.ChecksumSHA256, composite);

    assert.equal((await s3.send(new HeadObjectCommand({ Bucket: 'dst', Key: 'sha256' }))).ChecksumSHA256, undefined);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'dst', Key: 'sha256', ChecksumMode: 'ENABLED' }));
    assert.equal(head.ChecksumSHA256, composite);
    assert.equal(head.ChecksumType, 'COMPOSITE');

    // GET ?partNumber: that part's bytes and checksum, the value's ETag and part count.
    const second = await s3.send(new GetObjectCommand({ Bucket: 'dst', Key: 'sha256', PartNumber: 2 }));
    assert.equal(second.$metadata.httpStatusCode, 206);
    assert.equal(second.ContentRange, `bytes ${5 * MiB}-${10 * MiB - 1}/${15 * MiB}`);
    assert.equal(second.PartsCount, 3);
    assert.equal(second.ETag, done.ETag);
    assert.equal(second.ChecksumSHA256, expected[1]);
    assert.ok((await bodyOf(second)).equals(abc[1]!));
    const third = await s3.send(new HeadObjectCommand({ Bucket: 'dst', Key: 'sha256', PartNumber: 3 }));
    assert.equal(third.$metadata.httpStatusCode, 206);
    assert.equal(third.ContentLength, 5 * MiB);
    assert.equal(third.PartsCount, 3);
    await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'dst', Key: 'sha256', PartNumber: 4 })), s3Error('InvalidPart', 400));

    const attributes = await s3.send(
      new GetObjectAttributesCommand({
        Bucket: 'dst',
        Key: 'sha256',
        ObjectAttributes: ['ETag', 'Checksum', 'ObjectParts', 'StorageClass', 'ObjectSize'],
        MaxParts: 1,
        PartNumberMarker: '1',
      }),
    );
    assert.equal(attributes.ETag, 'b2add96cc9702bbf4efb0ccdfc6b7747-3');
    assert.equal(attributes.ObjectSize, 15 * MiB);
    assert.equal(attributes.StorageClass, 'STANDARD');
    assert.equal(attributes.Checksum?.ChecksumSHA256, composite);
    assert.equal(attributes.ObjectParts?.TotalPartsCount, 3);
    assert.equal(attributes.ObjectParts?.IsTruncated, true);
    assert.equal(attributes.ObjectParts?.NextPartNumberMarker, '2');
    assert.deepEqual(
      attributes.ObjectParts?.Parts?.map((part) => [part.PartNumber, part.Size, part.ChecksumSHA256]),
      [[2, 5 * MiB, expected[1]]],
    );
  });

  test('a CRC32 FULL_OBJECT upload: the value checksum is a CRC of every byte; a wrong one stated stores nothing', async () => {
    const crcs = ['JRTCyQ==', 'QoZTGg==', 'YAgjqw=='];
    const upload = async (Key: string) => {
      const UploadId = await begin(Key, { ChecksumAlgorithm: 'CRC32', ChecksumType: 'FULL_OBJECT' });
      const parts: CompletedPart[] = [];
      for (const [i, Body] of abc.entries()) {
        const answer = await s3.send(
          new UploadPartCommand({
            Bucket: 'dst',
            Key,
            UploadId,
            PartNumber: i + 1,
            Body,
            ChecksumAlgorithm: 'CRC32',
            ChecksumCRC32: crcs[i],
          }),
        );
        assert.equal(answer.ChecksumCRC32, crcs[i]);
        parts.push({ PartNumber: i + 1, ETag: answer.ETag!, ChecksumCRC32: answer.ChecksumCRC32! });
      }
      return (ChecksumCRC32: string) =>
        s3.send(new CompleteMultipartUploadCommand({ Bucket: 'dst', Key, UploadId, MultipartUpload: { Parts: parts }, ChecksumCRC32 }));
    };
    const wrong = await upload('crc32-wrong');
    await assert.rejects(wrong('AAAAAA=='), s3Error('BadDigest', 400));
    assert.notEqual(master.store.index.get('/dst/crc32-wrong')?.state, 'live');
    const right = await upload('crc32');
    const done = await right('WgDhBQ==');
    assert.equal(done.ChecksumCRC32, 'WgDhBQ==');
    assert.equal(done.ChecksumType, 'FULL_OBJECT');
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'dst', Key: 'crc32', ChecksumMode: 'ENABLED' }));
    assert.equal(head.ChecksumCRC32, 'WgDhBQ==');
    assert.equal(head.ChecksumType, 'FULL_OBJECT');
    const first = await s3.send(new GetObjectCommand({ Bucket: 'dst', Key: 'crc32', PartNumber: 1 }));
    assert.equal(first.ChecksumCRC32, crcs[0]);
    assert.ok((await bodyOf(first)).equals(abc[0]!));
  });

  test('GET ?partNumber of a value written whole: part 1 is all of it, part 2 is InvalidPart; GetObjectAttributes has no parts', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'dst', Key: 'single', Body: 'body' }));
    const one = await s3.send(new GetObjectCommand({ Bucket: 'dst', Key: 'single', PartNumber: 1 }));
    assert.equal((await bodyOf(one)).toString(), 'body');
    assert.equal(one.ETag, `"${md5('body')}"`);
    await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'dst', Key: 'single', PartNumber: 2 })), s3Error('InvalidPart', 400));
    await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'dst', Key: 'single', PartNumber: 0 })), s3Error('InvalidArgument', 400));
    await assert.rejects(
      s3.send(new GetObjectCommand({ Bucket: 'dst', Key: 'single', PartNumber: 1, Range: 'bytes=0-1' })),
      s3Error('InvalidRequest', 400),
    );
    const attributes = await s3.send(
      new GetObjectAttributesCommand({ Bucket: 'dst', Key: 'single', ObjectAttributes: ['ETag', 'ObjectParts', 'ObjectSize'] }),
    );
    assert.equal(attributes.ETag, md5('body'));
    assert.equal(attributes.ObjectSize, 4);
    assert.equal(attributes.ObjectParts, undefined);
    await assert.rejects(
      s3.send(new GetObjectAttributesCommand({ Bucket: 'dst', Key: 'nothing', ObjectAttributes: ['ETag'] })),
      s3Error('NoSuchKey', 404),
    );
  });

  test('ListMultipartUploads pages by key-marker and upload-id-marker, under a prefix, rolled up at a delimiter', async () => {
    const ids: Record<string, string[]> = {};
    for (const key of ['list/a', 'list/a', 'list/b', 'list/sub/c', 'list/sub/d']) {
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'dst', Key: key }));
      (ids[key] ??= []).push(UploadId!);
    }
    const page1 = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'dst', Prefix: 'list/', MaxUploads: 2 }));
    assert.deepEqual(
      page1.Uploads?.map((upload) => [upload.Key, upload.UploadId]),
      ids['list/a']!.map((id) => ['list/a', id]),
    );
    assert.equal(page1.IsTruncated, true);
    assert.equal(page1.NextKeyMarker, 'list/a');
    assert.equal(page1.NextUploadIdMarker, ids['list/a']![1]);
    assert.equal(page1.Uploads?.[0]?.Initiator?.ID, 'admin');
    assert.equal(page1.Uploads?.[0]?.StorageClass, 'STANDARD');
    const page2 = await s3.send(
      new ListMultipartUploadsCommand({
        Bucket: 'dst',
        Prefix: 'list/',
        Delimiter: '/',
        KeyMarker: page1.NextKeyMarker,
        UploadIdMarker: page1.NextUploadIdMarker,
      }),
    );
    assert.deepEqual(
      page2.Uploads?.map((upload) => upload.Key),
      ['list/b'],
    );
    assert.deepEqual(
      page2.CommonPrefixes?.map((common) => common.Prefix),
      ['list/sub/'],
    );
    assert.equal(page2.IsTruncated, false);
    const after = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'dst', Prefix: 'list/', KeyMarker: 'list/b' }));
    assert.deepEqual(
      after.Uploads?.map((upload) => upload.Key),
      ['list/sub/c', 'list/sub/d'],
    );
    for (const [Key, uploadIds] of Object.entries(ids))
      for (const UploadId of uploadIds) await s3.send(new AbortMultipartUploadCommand({ Bucket: 'dst', Key, UploadId }));
  });

  test('an S3 request for what a multipart value is not (ListParts by HEAD) is refused, never answered as a GET', async () => {
    const UploadId = await begin('head-parts');
    const answer = await http('HEAD', `${master.s3Url}/dst/head-parts?uploadId=${UploadId}`, undefined, {
      authorization: `Basic ${Buffer.from('admin:admin-secret-key').toString('base64')}`,
    });
    assert.equal(answer.status, 501);
  });

  test('mkv uploads lists no completed upload, and forgets one as old', async () => {
    const UploadId = await begin('forgotten');
    const { ETag } = await s3.send(new UploadPartCommand({ Bucket: 'dst', Key: 'forgotten', UploadId, PartNumber: 1, Body: 'x' }));
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'dst',
        Key: 'forgotten',
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] },
      }),
    );
    assert.deepEqual(readdirSync(join(uploadsDir(master.db), UploadId)).sort(), ['completed.json', 'upload.json'], 'no part kept');
    const listed = await runMkv(['uploads', '--db', master.db]);
    assert.equal(listed.status, 0, listed.stderr);
    assert.doesNotMatch(listed.stdout, new RegExp(UploadId));
    const cleaned = await runMkv(['uploads', '--db', master.db, '--abort-older-than', '1ms']);
    assert.equal(cleaned.status, 0, cleaned.stderr);
    assert.ok(!existsSync(join(uploadsDir(master.db), UploadId)));
  });

  const awsMissing = spawnSync('aws', ['--version'], { stdio: 'ignore' }).status === 0 ? false : 'the aws cli is not installed';
  test('aws s3 cp s3://src/big s3://dst/…: a copy over 8 MiB goes by UploadPartCopy, byte for byte', { skip: awsMissing }, async () => {
    const env = clientEnv('admin', 'admin-secret-key');
    await run('aws', ['--endpoint-url', master.url, 's3', 'cp', 's3://src/big', 's3://dst/by-cli'], { env, timeout: 120_000 });
    const record = master.store.index.get('/dst/by-cli');
    assert.ok(record && record.parts.length >= 2, 'copied in parts');
    const copied = await bodyOf(await s3.send(new GetObjectCommand({ Bucket: 'dst', Key: 'by-cli' })));
    assert.ok(copied.equals(source));
  });
});
