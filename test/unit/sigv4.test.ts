// SigV4 against the examples AWS publishes for S3 (the S3 API reference, "Signature
// Calculations for the Authorization Header", "Authenticating Requests: Using Query Parameters"
// and "Signature Calculation: Transfer Payload in Multiple Chunks"): an independent vector for
// the header, the presigned URL and the chained chunk signatures.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { parseCredentials } from '../../src/auth/credentials.js';
import { authenticate } from '../../src/auth/authenticate.js';
import { isMkvError } from '../../src/errors.js';
import { AwsChunkedDecoder } from '../../src/master/aws-chunked.js';

const credentials = parseCredentials('AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n', 'test');
const when = Date.UTC(2013, 4, 24, 0, 0, 0);
const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

test('GET Object, signed in the Authorization header', () => {
  const headers = {
    host: 'examplebucket.s3.amazonaws.com',
    range: 'bytes=0-9',
    'x-amz-content-sha256': EMPTY,
    'x-amz-date': '20130524T000000Z',
    authorization:
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
  };
  const identity = authenticate(credentials, { method: 'GET', rawPath: '/test.txt', query: '', headers }, when);
  assert.equal(identity.name, 'AKIAIOSFODNN7EXAMPLE');
  assert.throws(
    () => authenticate(credentials, { method: 'GET', rawPath: '/test.txt', query: '', headers: { ...headers, range: 'bytes=0-99' } }, when),
    (error) => isMkvError(error, 'MKV_SIGNATURE'),
  );
  assert.throws(
    () => authenticate(credentials, { method: 'GET', rawPath: '/test.txt', query: '', headers }, when + 16 * 60_000),
    (error) => isMkvError(error, 'MKV_TIME_SKEWED'),
  );
});

test('a presigned URL, valid for its X-Amz-Expires', () => {
  const query =
    'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z' +
    '&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404';
  const request = { method: 'GET', rawPath: '/test.txt', query, headers: { host: 'examplebucket.s3.amazonaws.com' } };
  assert.equal(authenticate(credentials, request, when + 3600_000).name, 'AKIAIOSFODNN7EXAMPLE');
  assert.throws(
    () => authenticate(credentials, request, when + 86_401_000),
    (error) => isMkvError(error, 'MKV_ACCESS_DENIED') && /expired/.test((error as Error).message),
  );
  assert.throws(
    () => authenticate(credentials, { ...request, rawPath: '/other.txt' }, when),
    (error) => isMkvError(error, 'MKV_SIGNATURE'),
  );
});

test('PUT Object in signed chunks: the seed signature, then each chunk chained from it', async () => {
  const headers = {
    host: 's3.amazonaws.com',
    'x-amz-date': '20130524T000000Z',
    'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': '66560',
    'content-length': '66824',
    authorization:
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
  };
  const identity = authenticate(credentials, { method: 'PUT', rawPath: '/examplebucket/chunkObject.txt', query: '', headers }, when);
  assert.equal(identity.body.kind, 'chunks');
  const signing = identity.body.kind === 'chunks' ? identity.body.signing : undefined;
  const body = (signatures: string[]) =>
    Buffer.concat([
      Buffer.from(`10000;chunk-signature=${signatures[0]}\r\n`),
      Buffer.alloc(65536, 'a'),
      Buffer.from(`\r\n400;chunk-signature=${signatures[1]}\r\n`),
      Buffer.alloc(1024, 'a'),
      Buffer.from(`\r\n0;chunk-signature=${signatures[2]}\r\n\r\n`),
    ]);
  const good = [
    'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
    '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
    'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
  ];
  assert.equal(body(good).length, 66824, 'the framing is as long as the example says');
  const decoded = Buffer.concat(
    await Readable.from([body(good)])
      .pipe(new AwsChunkedDecoder({ expected: 66560, signing }))
      .toArray(),
  );
  assert.equal(createHash('sha256').update(decoded).digest('hex'), createHash('sha256').update(Buffer.alloc(66560, 'a')).digest('hex'));
  // One byte changed in the second chunk: its signature no longer holds.
  const tampered = body(good);
  tampered[65536 + 200] = 0x62;
  await assert.rejects(
    Readable.from([tampered])
      .pipe(new AwsChunkedDecoder({ expected: 66560, signing }))
      .toArray(),
    (error) => isMkvError(error, 'MKV_SIGNATURE'),
  );
  // A signature out of its chain: the chunks' order matters.
  await assert.rejects(
    Readable.from([body([good[1]!, good[0]!, good[2]!])])
      .pipe(new AwsChunkedDecoder({ expected: 66560, signing }))
      .toArray(),
    (error) => isMkvError(error, 'MKV_SIGNATURE'),
  );
});

test('Basic, and the rights and prefixes a key holds', () => {
  const parsed = parseCredentials(
    'admin:topsecret1 # everything\nreader:readsecret read,list /pub/ /logs/\nanonymous read /open/\n',
    'creds',
  );
  const basic = (user: string) => ({
    method: 'GET',
    rawPath: '/x',
    query: '',
    headers: { authorization: `Basic ${Buffer.from(user).toString('base64')}` },
  });
  assert.equal(authenticate(parsed, basic('admin:topsecret1')).name, 'admin');
  assert.throws(
    () => authenticate(parsed, basic('admin:topsecret2')),
    (error) => isMkvError(error, 'MKV_UNAUTHENTICATED'),
  );
  assert.throws(
    () => authenticate(parsed, basic('nobody:topsecret1')),
    (error) => isMkvError(error, 'MKV_UNAUTHENTICATED'),
  );
  const reader = parsed.keys.get('reader')!;
  assert.deepEqual([...reader.rights].sort(), ['list', 'read']);
  assert.deepEqual(reader.prefixes, ['/pub/', '/logs/']);
  assert.deepEqual([...parsed.anonymous!.rights], ['read']);
  assert.equal(authenticate(parsed, { method: 'GET', rawPath: '/x', query: '', headers: {} }).name, 'anonymous');
  assert.throws(() => parseCredentials('x:short\n', 'creds'), /shorter than 8/);
  assert.throws(() => parseCredentials('x:longenough frobnicate\n', 'creds'), /not a right/);
  assert.throws(() => parseCredentials('x:longenough read pub/\n', 'creds'), /starts with \//);
});

test("Signature Version 2 in the Authorization header (the S3 developer guide's GET example)", () => {
  const headers = {
    host: 'johnsmith.s3.amazonaws.com',
    date: 'Tue, 27 Mar 2007 19:36:42 +0000',
    authorization: 'AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=',
  };
  const request = { method: 'GET', rawPath: '/johnsmith/photos/puppy.jpg', query: '', headers };
  const at = Date.parse('Tue, 27 Mar 2007 19:36:42 +0000');
  assert.equal(authenticate(credentials, request, at).name, 'AKIAIOSFODNN7EXAMPLE');
  assert.throws(
    () => authenticate(credentials, { ...request, method: 'DELETE' }, at),
    (error) => isMkvError(error, 'MKV_SIGNATURE'),
  );
});
