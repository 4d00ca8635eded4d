// S3 objects as S3 keeps them, driven by a real S3 client (@aws-sdk/client-s3) on a master with
// --credentials: conditional GET/HEAD/PUT/CopyObject, the object headers stored and served,
// response-* overrides, checksums returned, ACL reads, request ids, and what this store does not
// do (encryption, tagging, storage classes, object lock, versions) refused, never dropped.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteObjectTaggingCommand,
  GetBucketTaggingCommand,
  GetObjectTaggingCommand,
  ListMultipartUploadsCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectAclCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { parseCredentials } from '../../src/auth/credentials.js';
import { removeDir, startMaster, startVolumes, type TestMaster, type VolumeSet } from '../helpers/cluster.js';
import { http } from '../helpers/http.js';
import { signedHeaders } from '../helpers/sign.js';

const CREDENTIALS = 'ops:ops-secret-key\nwriter:writer-secret read,write,list /objects/\nanonymous read /open/\n';

function client(url: string, accessKeyId = 'ops', secretAccessKey = 'ops-secret-key'): S3Client {
  return new S3Client({
    endpoint: url,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
  });
}

async function bodyOf(output: { Body?: unknown }): Promise<string> {
  return Buffer.from(await (output.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).toString();
}

/** The S3 error a call fails with: its status and code (undefined when it succeeded). */
async function failure(call: Promise<unknown>): Promise<{ status: number | undefined; code: string } | undefined> {
  try {
    await call;
    return undefined;
  } catch (error) {
    if (!(error instanceof S3ServiceException)) throw error;
    return { status: error.$metadata.httpStatusCode, code: error.name };
  }
}

describe('S3 objects on a secured master', () => {
  let set: VolumeSet;
  let master: TestMaster;
  let s3: S3Client;
  const put = (input: Omit<PutObjectCommandInput, 'Bucket'> & { Key: string }) =>
    s3.send(new PutObjectCommand({ Bucket: 'objects', ...input }));
  const get = (key: string) => s3.send(new GetObjectCommand({ Bucket: 'objects', Key: key }));

  before(async () => {
    set = await startVolumes('embedded', 3);
    master = await startMaster(set.volumes, {}, { credentials: parseCredentials(CREDENTIALS, 'credentials') });
    s3 = client(master.s3Url);
    for (const Bucket of ['objects', 'open']) await s3.send(new CreateBucketCommand({ Bucket }));
  });
  after(async () => {
    s3?.destroy();
    await master?.close();
    await set?.close();
    if (master) removeDir(master.db);
  });

  test('GET and HEAD answer If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since as S3 does', async () => {
    const { ETag } = await put({ Key: 'cond', Body: 'conditional' });
    const past = new Date(Date.now() - 3_600_000);
    const future = new Date(Date.now() + 3_600_000);
    const conditional = async (input: Record<string, unknown>) => {
      const got = await failure(s3.send(new GetObjectCommand({ Bucket: 'objects', Key: 'cond', ...input })));
      const head = await failure(s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'cond', ...input })));
      assert.equal(head?.status, got?.status, `HEAD answers as GET does for ${JSON.stringify(input)}`);
      return got?.status ?? 200;
    };
    assert.equal(await conditional({ IfMatch: ETag }), 200);
    assert.equal(await conditional({ IfMatch: '"0123456789abcdef0123456789abcdef"' }), 412);
    assert.equal(await conditional({ IfNoneMatch: ETag }), 304);
    assert.equal(await conditional({ IfNoneMatch: '"0123456789abcdef0123456789abcdef"' }), 200);
    assert.equal(await conditional({ IfModifiedSince: past }), 200);
    assert.equal(await conditional({ IfModifiedSince: new Date() }), 304);
    assert.equal(await conditional({ IfModifiedSince: future }), 200, 'a date in the future is no condition (RFC 9110)');
    assert.equal(await conditional({ IfUnmodifiedSince: past }), 412);
    assert.equal(await conditional({ IfUnmodifiedSince: future }), 200);
    // S3's order: If-Match that holds wins over If-Unmodified-Since that does not; If-None-Match over If-Modified-Since.
    assert.equal(await conditional({ IfMatch: ETag, IfUnmodifiedSince: past }), 200);
    assert.equal(await conditional({ IfNoneMatch: '"other"', IfModifiedSince: new Date() }), 200);
  });

  test("PutObject's If-None-Match: * and If-Match decide the write, and a refused one changes nothing", async () => {
    const { ETag } = await put({ Key: 'lock-file', Body: 'first', IfNoneMatch: '*' });
    assert.deepEqual(await failure(put({ Key: 'lock-file', Body: 'second', IfNoneMatch: '*' })), {
      status: 412,
      code: 'PreconditionFailed',
    });
    assert.equal(await bodyOf(await get('lock-file')), 'first');
    assert.deepEqual(await failure(put({ Key: 'lock-file', Body: 'third', IfMatch: '"0123456789abcdef0123456789abcdef"' })), {
      status: 412,
      code: 'PreconditionFailed',
    });
    assert.equal(await bodyOf(await get('lock-file')), 'first');
    await put({ Key: 'lock-file', Body: 'fourth', IfMatch: ETag });
    assert.equal(await bodyOf(await get('lock-file')), 'fourth');
    // If-None-Match with ETags: refused when one names the value, as S3-compatible stores do.
    const { ETag: fourth } = await s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'lock-file' }));
    assert.equal((await failure(put({ Key: 'lock-file', Body: 'fifth', IfNoneMatch: fourth })))?.status, 412);
    assert.equal(await bodyOf(await get('lock-file')), 'fourth');
    await put({ Key: 'lock-file', Body: 'sixth', IfNoneMatch: ETag });
    assert.equal(await bodyOf(await get('lock-file')), 'sixth');
    // If-Match of a key that does not exist: nothing to match.
    assert.equal((await failure(put({ Key: 'never-written', Body: 'x', IfMatch: ETag })))?.status, 404);
  });

  test('CopyObject checks x-amz-copy-source-if-* against the source', async () => {
    const { ETag } = await put({ Key: 'copy-source', Body: 'source' });
    const copy = (input: Record<string, unknown>) =>
      s3.send(new CopyObjectCommand({ Bucket: 'objects', Key: 'copy-target', CopySource: 'objects/copy-source', ...input }));
    assert.equal((await failure(copy({ CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"' })))?.status, 412);
    assert.equal((await failure(copy({ CopySourceIfNoneMatch: ETag })))?.status, 412);
    assert.equal((await failure(copy({ CopySourceIfUnmodifiedSince: new Date(Date.now() - 3_600_000) })))?.status, 412);
    assert.equal((await failure(get('copy-target')))?.status, 404, 'no refused copy wrote anything');
    await copy({ CopySourceIfMatch: ETag });
    assert.equal(await bodyOf(await get('copy-target')), 'source');
  });

  test('the object headers a value was written with are served back, and response-* overrides them for a signed GET', async () => {
    const expires = new Date('2031-01-02T03:04:05Z');
    await put({
      Key: 'headers',
      Body: 'with headers',
      ContentType: 'text/x-test',
      ContentDisposition: 'attachment; filename="a.txt"',
      ContentLanguage: 'fr',
      CacheControl: 'max-age=60',
      ContentEncoding: 'identity',
      Expires: expires,
      Metadata: { owner: 'team-a', 'mixed-case': 'Value' },
    });
    for (const answer of [await get('headers'), await s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'headers' }))]) {
      assert.equal(answer.ContentType, 'text/x-test');
      assert.equal(answer.ContentDisposition, 'attachment; filename="a.txt"');
      assert.equal(answer.ContentLanguage, 'fr');
      assert.equal(answer.CacheControl, 'max-age=60');
      assert.equal(answer.ContentEncoding, 'identity');
      assert.equal(answer.ExpiresString, expires.toUTCString());
      assert.deepEqual(answer.Metadata, { owner: 'team-a', 'mixed-case': 'Value' });
    }
    const overridden = await s3.send(
      new GetObjectCommand({
        Bucket: 'objects',
        Key: 'headers',
        ResponseContentType: 'application/json',
        ResponseContentDisposition: 'inline',
        ResponseCacheControl: 'no-store',
      }),
    );
    assert.equal(overridden.ContentType, 'application/json');
    assert.equal(overridden.ContentDisposition, 'inline');
    assert.equal(overridden.CacheControl, 'no-store');
    assert.equal(overridden.ContentLanguage, 'fr', 'what is not overridden is as stored');
  });

  test('user metadata that is not ASCII comes back as the SDK sent it', async () => {
    // The SDK sends a header's UTF-8 bytes and reads an answer's as latin-1, as botocore does.
    await put({ Key: 'unicode', Body: 'u', Metadata: { note: 'café crème' } });
    const { Metadata } = await s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'unicode' }));
    assert.equal(Metadata?.note, 'café crème');
  });

  test('response-* overrides are refused to a request that is not signed, as S3 refuses them', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'open', Key: 'x', Body: 'public' }));
    assert.equal((await fetch(`${master.s3Url}/open/x`)).status, 200, 'anonymous may read /open/');
    const refused = await fetch(`${master.s3Url}/open/x?response-content-type=text/html`);
    assert.equal(refused.status, 400);
    assert.match(await refused.text(), /<Code>InvalidRequest<\/Code>/);
  });

  test('a checksum sent with a value is checked, kept and returned when asked', async () => {
    const sha256 = createHash('sha256').update('checked').digest('base64');
    const written = await put({ Key: 'sum', Body: 'checked', ChecksumSHA256: sha256 });
    assert.equal(written.ChecksumSHA256, sha256);
    assert.equal((await s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'sum' }))).ChecksumSHA256, undefined);
    const asked = await s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'sum', ChecksumMode: 'ENABLED' }));
    assert.equal(asked.ChecksumSHA256, sha256);
    // The SDK's own CRC32, sent as an aws-chunked trailer.
    const crc = await put({ Key: 'crc', Body: 'trailer', ChecksumAlgorithm: 'CRC32' });
    assert.ok(crc.ChecksumCRC32, 'the CRC32 the SDK sent is returned');
    const gotCrc = await s3.send(new GetObjectCommand({ Bucket: 'objects', Key: 'crc', ChecksumMode: 'ENABLED' }));
    assert.equal(gotCrc.ChecksumCRC32, crc.ChecksumCRC32);
    assert.equal(await bodyOf(gotCrc), 'trailer');
    // A wrong one: BadDigest, and the value is not stored.
    const wrong = createHash('sha256').update('something else').digest('base64');
    assert.deepEqual(await failure(put({ Key: 'sum2', Body: 'checked', ChecksumSHA256: wrong })), { status: 400, code: 'BadDigest' });
    assert.equal((await failure(get('sum2')))?.status, 404);
  });

  test('an object ACL is read as the owner holding every right; only a private one may be set', async () => {
    await put({ Key: 'acl', Body: 'a' });
    const acl = await s3.send(new GetObjectAclCommand({ Bucket: 'objects', Key: 'acl' }));
    assert.equal(acl.Grants?.length, 1);
    assert.equal(acl.Grants?.[0]?.Permission, 'FULL_CONTROL');
    await s3.send(new PutObjectAclCommand({ Bucket: 'objects', Key: 'acl', ACL: 'private' }));
    assert.deepEqual(await failure(s3.send(new PutObjectAclCommand({ Bucket: 'objects', Key: 'acl', ACL: 'public-read' }))), {
      status: 501,
      code: 'NotImplemented',
    });
  });

  test('what this store does not do is refused with 501 NotImplemented and nothing is stored', async () => {
    const refusals: Array<[string, Record<string, unknown>]> = [
      ['sse-s3', { ServerSideEncryption: 'AES256' }],
      ['sse-kms', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'key' }],
      ['sse-c', { SSECustomerAlgorithm: 'AES256', SSECustomerKey: Buffer.alloc(32, 1).toString('base64') }],
      ['tagging', { Tagging: 'a=b' }],
      ['storage-class', { StorageClass: 'GLACIER' }],
      ['object-lock', { ObjectLockLegalHoldStatus: 'ON' }],
      ['public-acl', { ACL: 'public-read' }],
    ];
    for (const [name, input] of refusals) {
      assert.deepEqual(await failure(put({ Key: `refused-${name}`, Body: 'x', ...input })), { status: 501, code: 'NotImplemented' }, name);
      assert.equal((await failure(get(`refused-${name}`)))?.status, 404, `${name}: nothing stored`);
    }
    // STANDARD is what every value here is: asking for it is no more than this store does.
    await put({ Key: 'standard', Body: 'x', StorageClass: 'STANDARD' });
    // A version that is not the one version an object has here.
    assert.equal((await failure(s3.send(new GetObjectCommand({ Bucket: 'objects', Key: 'standard', VersionId: 'v1' }))))?.status, 400);
  });

  test('no value has tags: reading them says so (the aws cli does before it copies), setting them is refused', async () => {
    await put({ Key: 'tagged', Body: 'x' });
    const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: 'objects', Key: 'tagged' }));
    assert.deepEqual(tags.TagSet, []);
    assert.equal((await failure(s3.send(new GetObjectTaggingCommand({ Bucket: 'objects', Key: 'untagged-missing' }))))?.status, 404);
    assert.deepEqual(await failure(s3.send(new GetBucketTaggingCommand({ Bucket: 'objects' }))), { status: 404, code: 'NoSuchTagSet' });
    const setting = s3.send(
      new PutObjectTaggingCommand({ Bucket: 'objects', Key: 'tagged', Tagging: { TagSet: [{ Key: 'a', Value: 'b' }] } }),
    );
    assert.deepEqual(await failure(setting), { status: 501, code: 'NotImplemented' });
    await s3.send(new DeleteObjectTaggingCommand({ Bucket: 'objects', Key: 'tagged' }));
    assert.deepEqual((await s3.send(new GetObjectTaggingCommand({ Bucket: 'objects', Key: 'tagged' }))).TagSet, []);
  });

  test('an append, an object-lock bucket, a checksum algorithm S3 has not: refused, nothing made', async () => {
    await put({ Key: 'appended', Body: 'start' });
    assert.deepEqual(await failure(put({ Key: 'appended', Body: 'more', WriteOffsetBytes: 5 })), { status: 501, code: 'NotImplemented' });
    assert.equal(await bodyOf(await get('appended')), 'start', 'the value is not replaced by what was to be appended');
    const locked = s3.send(new CreateBucketCommand({ Bucket: 'locked-bucket', ObjectLockEnabledForBucket: true }));
    assert.deepEqual(await failure(locked), { status: 501, code: 'NotImplemented' });
    assert.deepEqual(await failure(s3.send(new HeadObjectCommand({ Bucket: 'locked-bucket', Key: 'x' }))), {
      status: 404,
      code: 'NotFound',
    });
    const foo = await fetch(`${master.s3Url}/open/x`, { headers: { 'x-amz-sdk-checksum-algorithm': 'FOO' } });
    assert.equal(foo.status, 400);
    assert.deepEqual(await failure(put({ Key: 'meta', Body: 'x', Metadata: { big: 'm'.repeat(2100) } })), {
      status: 400,
      code: 'MetadataTooLarge',
    });
  });

  test('CopyObject with a checksum algorithm gives the copy that checksum, computed as it copies', async () => {
    const body = 'copied with a checksum';
    await put({ Key: 'copy-source', Body: body });
    const copied = await s3.send(
      new CopyObjectCommand({ Bucket: 'objects', Key: 'copy-sum', CopySource: 'objects/copy-source', ChecksumAlgorithm: 'SHA256' }),
    );
    const sha256 = createHash('sha256').update(body).digest('base64');
    assert.equal(copied.CopyObjectResult?.ChecksumSHA256, sha256);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'copy-sum', ChecksumMode: 'ENABLED' }));
    assert.equal(head.ChecksumSHA256, sha256);
    // Onto itself, as S3 documents adding a checksum to a value that has none: copied whole.
    await s3.send(
      new CopyObjectCommand({ Bucket: 'objects', Key: 'copy-source', CopySource: 'objects/copy-source', ChecksumAlgorithm: 'SHA256' }),
    );
    const itself = await s3.send(new GetObjectCommand({ Bucket: 'objects', Key: 'copy-source', ChecksumMode: 'ENABLED' }));
    assert.equal(itself.ChecksumSHA256, sha256);
    assert.equal(await bodyOf(itself), body);
  });

  test('CopyObject refuses what it cannot honour: an unknown directive, a range, a body, a checksum of a body it has not', async () => {
    await put({ Key: 'copy-checked', Body: 'the source' });
    const ops = { accessKey: 'ops', secret: 'ops-secret-key' };
    const url = `${master.s3Url}/objects/copy-checked-to`;
    const copy = async (headers: Record<string, string>, body = '') =>
      http('PUT', url, body, await signedHeaders(ops, 'PUT', url, { 'x-amz-copy-source': '/objects/copy-checked', ...headers }, body));
    const refusals: [Record<string, string>, string, number, string][] = [
      [{ 'x-amz-metadata-directive': 'FOO' }, '', 400, 'InvalidArgument'],
      [{ 'x-amz-copy-source-range': 'bytes=0-1' }, '', 400, 'InvalidArgument'],
      [{}, 'a body', 400, 'InvalidRequest'],
      [{ 'content-md5': createHash('md5').update('x').digest('base64') }, '', 400, 'BadDigest'],
      [{ 'x-amz-checksum-crc32': 'AQIDBA==' }, '', 400, 'BadDigest'],
    ];
    for (const [headers, body, status, code] of refusals) {
      const reply = await copy(headers, body);
      assert.equal(reply.status, status, `${JSON.stringify(headers)}: ${reply.text}`);
      assert.match(reply.text, new RegExp(`<Code>${code}</Code>`));
    }
    assert.equal((await failure(get('copy-checked-to')))?.status, 404, 'no refused copy stored anything');
    // What holds for an empty body passes: the request's own Content-MD5 and CRC32 of nothing.
    const empty = await copy({
      'content-md5': createHash('md5').update('').digest('base64'),
      'x-amz-checksum-crc32': 'AAAAAA==', // the CRC32 of no bytes is 0
    });
    assert.equal(empty.status, 200, empty.text);
    assert.equal(await bodyOf(await get('copy-checked-to')), 'the source');
  });

  test('CopyObject of a key onto itself with new metadata meets If-Match and If-None-Match', async () => {
    const written = await put({ Key: 'self-copy', Body: 'mine', Metadata: { round: '1' } });
    const replace = (conditions: { IfMatch?: string; IfNoneMatch?: string }) =>
      s3.send(
        new CopyObjectCommand({
          Bucket: 'objects',
          Key: 'self-copy',
          CopySource: 'objects/self-copy',
          MetadataDirective: 'REPLACE',
          Metadata: { round: '2' },
          ...conditions,
        }),
      );
    assert.equal((await failure(replace({ IfMatch: '"not-its-etag"' })))?.status, 412);
    assert.equal((await failure(replace({ IfNoneMatch: '*' })))?.status, 412);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'self-copy' }));
    assert.deepEqual(head.Metadata, { round: '1' }, 'a refused replace changes nothing');
    await replace({ IfMatch: written.ETag! });
    assert.deepEqual((await s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'self-copy' }))).Metadata, { round: '2' });
  });

  test('a bucket no key could name: creating it is InvalidBucketName, reading it NoSuchBucket', async () => {
    const long = 'b'.repeat(200);
    assert.deepEqual(await failure(s3.send(new CreateBucketCommand({ Bucket: long }))), { status: 400, code: 'InvalidBucketName' });
    assert.deepEqual(await failure(s3.send(new ListObjectsV2Command({ Bucket: long }))), { status: 404, code: 'NoSuchBucket' });
  });

  test('CompleteMultipartUpload of an upload that does not exist is NoSuchUpload, whatever its document', async () => {
    const ops = { accessKey: 'ops', secret: 'ops-secret-key' };
    const url = `${master.s3Url}/objects/never-uploaded?uploadId=doesnotexist`;
    for (const body of ['garbage', '']) {
      const reply = await http('POST', url, body, await signedHeaders(ops, 'POST', url, {}, body));
      assert.equal(reply.status, 404, reply.text);
      assert.match(reply.text, /<Code>NoSuchUpload<\/Code>/);
    }
  });

  test('a part sent again replaces the first, so a key without the delete right may not send it again', async () => {
    const writer = client(master.s3Url, 'writer', 'writer-secret');
    try {
      const { UploadId } = await writer.send(new CreateMultipartUploadCommand({ Bucket: 'objects', Key: 'parts' }));
      const part = { Bucket: 'objects', Key: 'parts', UploadId, PartNumber: 1 };
      await writer.send(new UploadPartCommand({ ...part, Body: 'first' }));
      assert.deepEqual(await failure(writer.send(new UploadPartCommand({ ...part, Body: 'second' }))), {
        status: 403,
        code: 'AccessDenied',
      });
      await s3.send(new UploadPartCommand({ ...part, Body: 'second' }));
      await s3.send(new AbortMultipartUploadCommand({ Bucket: 'objects', Key: 'parts', UploadId }));
    } finally {
      writer.destroy();
    }
  });

  test('DeleteBucket aborts its uploads in progress: none comes back in a bucket of the same name', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'short-lived' }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'short-lived', Key: 'big' }));
    await s3.send(new UploadPartCommand({ Bucket: 'short-lived', Key: 'big', UploadId, PartNumber: 1, Body: 'part' }));
    await s3.send(new DeleteBucketCommand({ Bucket: 'short-lived' }));
    await s3.send(new CreateBucketCommand({ Bucket: 'short-lived' }));
    assert.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'short-lived' }))).Uploads, undefined);
    const part = s3.send(new UploadPartCommand({ Bucket: 'short-lived', Key: 'big', UploadId, PartNumber: 2, Body: 'late' }));
    assert.deepEqual(await failure(part), { status: 404, code: 'NoSuchUpload' });
  });

  test('DeleteObject and DeleteObjects with If-Match / ETag delete only the value named', async () => {
    const { ETag } = await put({ Key: 'conditional-delete', Body: 'x' });
    const other = '"0123456789abcdef0123456789abcdef"';
    const wrong = s3.send(new DeleteObjectCommand({ Bucket: 'objects', Key: 'conditional-delete', IfMatch: other }));
    assert.deepEqual(await failure(wrong), { status: 412, code: 'PreconditionFailed' });
    const many = await s3.send(
      new DeleteObjectsCommand({ Bucket: 'objects', Delete: { Objects: [{ Key: 'conditional-delete', ETag: other }] } }),
    );
    assert.equal(many.Errors?.[0]?.Code, 'PreconditionFailed');
    assert.equal(await bodyOf(await get('conditional-delete')), 'x', 'still there');
    await s3.send(new DeleteObjectCommand({ Bucket: 'objects', Key: 'conditional-delete', IfMatch: ETag }));
    assert.equal((await failure(get('conditional-delete')))?.status, 404);
    const gone = s3.send(new DeleteObjectCommand({ Bucket: 'objects', Key: 'conditional-delete', IfMatch: ETag }));
    assert.deepEqual(await failure(gone), { status: 404, code: 'NoSuchKey' });
    const noneMatch = await fetch(`${master.s3Url}/open/x`, { method: 'DELETE', headers: { 'if-none-match': '*' } });
    assert.ok(noneMatch.status >= 400, 'If-None-Match on a DELETE is not dropped');
  });

  test('DeleteObject and DeleteObjects with a size or a last-modified time delete only a value that has it', async () => {
    await put({ Key: 'sized', Body: 'four' });
    const modified = (await s3.send(new HeadObjectCommand({ Bucket: 'objects', Key: 'sized' }))).LastModified!;
    const wrongSize = s3.send(new DeleteObjectCommand({ Bucket: 'objects', Key: 'sized', IfMatchSize: 5 }));
    assert.deepEqual(await failure(wrongSize), { status: 412, code: 'PreconditionFailed' });
    const wrongTime = s3.send(
      new DeleteObjectCommand({ Bucket: 'objects', Key: 'sized', IfMatchLastModifiedTime: new Date(modified.getTime() - 5000) }),
    );
    assert.deepEqual(await failure(wrongTime), { status: 412, code: 'PreconditionFailed' });
    const many = await s3.send(
      new DeleteObjectsCommand({
        Bucket: 'objects',
        Delete: {
          Objects: [
            { Key: 'sized', Size: 3 },
            { Key: 'sized', LastModifiedTime: new Date(2015, 0, 1) },
          ],
        },
      }),
    );
    assert.deepEqual(
      many.Errors?.map((error) => error.Code),
      ['PreconditionFailed', 'PreconditionFailed'],
    );
    assert.equal(await bodyOf(await get('sized')), 'four', 'still there');
    const ops = { accessKey: 'ops', secret: 'ops-secret-key' };
    const url = `${master.s3Url}/objects/sized`;
    const malformed: Array<Record<string, string>> = [
      { 'x-amz-if-match-size': 'big' },
      { 'x-amz-if-match-last-modified-time': 'yesterday' },
    ];
    for (const headers of malformed) {
      const bad = await http('DELETE', url, undefined, await signedHeaders(ops, 'DELETE', url, headers));
      assert.equal(bad.status, 400, bad.text);
    }
    const onPut = await http('PUT', url, 'x', await signedHeaders(ops, 'PUT', url, { 'x-amz-if-match-size': '4' }, 'x'));
    assert.equal(onPut.status, 501, 'a condition on size is not dropped from a write');
    await s3.send(new DeleteObjectCommand({ Bucket: 'objects', Key: 'sized', IfMatchSize: 4, IfMatchLastModifiedTime: modified }));
    assert.equal((await failure(get('sized')))?.status, 404);
  });

  test('ListObjectsV2: max-keys=0 is an empty page that is not truncated; fetch-owner names the owner', async () => {
    await put({ Key: 'list/a', Body: 'a' });
    const none = await s3.send(new ListObjectsV2Command({ Bucket: 'objects', Prefix: 'list/', MaxKeys: 0 }));
    assert.equal(none.KeyCount, 0);
    assert.equal(none.IsTruncated, false);
    const owned = await s3.send(new ListObjectsV2Command({ Bucket: 'objects', Prefix: 'list/', FetchOwner: true }));
    assert.ok(owned.Contents?.[0]?.Owner?.ID, 'fetch-owner: an Owner');
    const plain = await s3.send(new ListObjectsV2Command({ Bucket: 'objects', Prefix: 'list/' }));
    assert.equal(plain.Contents?.[0]?.Owner, undefined, 'no Owner unless asked');
  });

  test('every S3 answer carries x-amz-request-id, and an error document names it', async () => {
    const found = await fetch(`${master.s3Url}/open/x`);
    assert.match(found.headers.get('x-amz-request-id') ?? '', /^[0-9A-F]{16}$/);
    const missing = await fetch(`${master.s3Url}/open/missing`);
    const id = missing.headers.get('x-amz-request-id');
    assert.match(id ?? '', /^[0-9A-F]{16}$/);
    assert.ok((await missing.text()).includes(`<RequestId>${id}</RequestId>`));
  });

  test('a key whose bytes are not UTF-8 is 400, not 404', async () => {
    const answer = await fetch(`${master.s3Url}/open/%ff%fe`);
    assert.equal(answer.status, 400);
  });
});
