// What someone without a secret can reach on a master with --credentials over volumes that hold
// theirs (stock nginx where installed): every request is hostile until its signature is checked.
// Access-key names are not secret (every presigned URL carries one), so each attack here knows
// them. After each, nothing may have changed: the value, the log's last seq, the files on the
// volumes. The findings' numbers are the security issue's (F1…F14).
import assert from 'node:assert/strict';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parseCredentials, type Credentials } from '../../src/auth/credentials.js';
import { createAdminServer } from '../../src/master/admin.js';
import { uploadsDir } from '../../src/db/paths.js';
import type { Logger } from '../../src/logger.js';
import { blobsIn } from '../helpers/blobs.js';
import { http, rawExchange, type Reply } from '../helpers/http.js';
import {
  hasNginx,
  removeDir,
  spawnMaster,
  startMaster,
  startVolumes,
  tempDir,
  type TestMaster,
  type VolumeSet,
} from '../helpers/cluster.js';
import { presignedUrl, signedHeaders, streamingPut, v2Headers, v2PresignedUrl, type Signer } from '../helpers/sign.js';

const SECRET = '0123456789abcdef0123456789abcdef';
const CREDENTIALS = [
  'ops:ops-secret-key-0123',
  'backup:backup-secret-key read,write,list /backup/',
  'reader:reader-secret-key read,list /pub/',
  'anonymous read /open/',
].join('\n');
const OPS: Signer = { accessKey: 'ops', secret: 'ops-secret-key-0123' };
const BACKUP: Signer = { accessKey: 'backup', secret: 'backup-secret-key' };
const basic = (user: string) => ({ authorization: `Basic ${Buffer.from(user).toString('base64')}` });
const AS_OPS = basic('ops:ops-secret-key-0123');
const md5Base64 = (text: string | Buffer) => createHash('md5').update(text).digest('base64');

/** A SigV4 Authorization header anyone can write: a real access key's name and a signature of zeros. */
function forged(signedHeaders: string, extra: Record<string, string> = {}): Record<string, string> {
  const date = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  return {
    authorization: `AWS4-HMAC-SHA256 Credential=ops/${date.slice(0, 8)}/us-east-1/s3/aws4_request, SignedHeaders=${signedHeaders}, Signature=${'0'.repeat(64)}`,
    'x-amz-date': date,
    ...extra,
  };
}

/** An aws-chunked body of one chunk, with or without a (made-up) chunk signature. */
function framed(text: string, signature?: string): Buffer {
  const header = signature === undefined ? `${text.length.toString(16)}` : `${text.length.toString(16)};chunk-signature=${signature}`;
  return Buffer.from(`${header}\r\n${text}\r\n0${signature === undefined ? '' : `;chunk-signature=${signature}`}\r\n\r\n`);
}

interface LogLine {
  level: string;
  message: string;
  fields: Record<string, unknown> | undefined;
}

function recordingLogger(lines: LogLine[]): Logger {
  const record = (level: string) => (message: string, fields?: Record<string, unknown>) => void lines.push({ level, message, fields });
  return { debug() {}, info() {}, warn: record('warn'), error: record('error') };
}

describe(`attacks on a secured master (${hasNginx() ? 'nginx' : 'embedded'} volumes)`, () => {
  let set: VolumeSet;
  let master: TestMaster;
  let credentials: Credentials;
  const lines: LogLine[] = [];

  /** What an attack must leave as it was: the log's last seq and the blobs on every volume. */
  const footprint = () => ({
    lastSeq: master.store.log.lastSeq,
    blobs: set.dirs.flatMap((dir) => blobsIn(dir).map((blob) => blob.file)).sort(),
  });
  const valueOf = async (key: string): Promise<string | number> => {
    const first = await http('GET', master.url + key, undefined, AS_OPS);
    return first.status === 302 ? (await http('GET', first.headers.location!)).text : first.status;
  };
  /** Runs an attack and checks it changed nothing; returns its answer. */
  const leavesNoTrace = async (what: string, attack: () => Promise<Reply>): Promise<Reply> => {
    const before = footprint();
    const reply = await attack();
    assert.deepEqual(footprint(), before, `${what}: nothing written (${reply.status} ${reply.text.slice(0, 200)})`);
    return reply;
  };

  before(async () => {
    set = await startVolumes(hasNginx() ? 'nginx' : 'embedded', 3, tempDir('mkv-attacks-'), SECRET);
    credentials = parseCredentials(CREDENTIALS, 'credentials');
    master = await startMaster(
      set.volumes,
      { volumeSecret: SECRET, linkTtlMs: 60_000, bodyTimeoutMs: 60_000 },
      { credentials, logger: recordingLogger(lines) },
    );
    for (const [key, value] of [
      ['/private/secret.txt', 'the secret'],
      ['/backup/kept.txt', 'kept'],
      ['/pub/a.txt', 'public'],
    ])
      assert.equal((await http('PUT', master.url + key, value, AS_OPS)).status, 201);
  });
  after(async () => {
    await master?.close();
    await set?.close();
    if (master) removeDir(master.db);
  });

  test('F1: a forged SigV4 header writes nothing, whatever the body, its framing, its payload hash or the port', async () => {
    const payloads = [undefined, 'UNSIGNED-PAYLOAD', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER'];
    const targets = [
      [master.url, '/private/secret.txt'],
      [master.s3Url, '/private/secret.txt'],
      [master.url, '/private/new.txt'],
      [master.koaUrl, '/backup/kept.txt'],
    ] as const;
    for (const [base, key] of targets) {
      for (const payload of payloads) {
        for (const signed of ['host', 'host;x-amz-date', 'host;x-amz-content-sha256;x-amz-date']) {
          for (const body of [framed('PWNED!'), framed('PWNED!', 'f'.repeat(64)), Buffer.from('PWNED!')]) {
            const headers = forged(signed, {
              ...(payload ? { 'x-amz-content-sha256': payload } : {}),
              ...(body.length > 6 ? { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': '6' } : {}),
            });
            const reply = await leavesNoTrace(`${base} ${key} ${payload} ${signed}`, () => http('PUT', base + key, body, headers));
            assert.ok(reply.status === 403 || reply.status === 400, `${key} ${payload} ${signed}: ${reply.status}`);
          }
        }
      }
    }
    assert.equal(await valueOf('/private/secret.txt'), 'the secret');
    assert.equal(await valueOf('/backup/kept.txt'), 'kept');
    assert.equal(await valueOf('/private/new.txt'), 404);
  });

  test("F1: an upload's part cannot be written with a forged header", async () => {
    const url = `${master.s3Url}/private/multi.bin`;
    const created = await http('POST', `${url}?uploads`, undefined, await signedHeaders(OPS, 'POST', `${url}?uploads`));
    const uploadId = /<UploadId>([^<]+)</.exec(created.text)![1]!;
    const partUrl = `${url}?partNumber=1&uploadId=${uploadId}`;
    for (const base of [master.url, master.s3Url]) {
      const reply = await http(
        'PUT',
        base + partUrl.slice(master.s3Url.length),
        framed('PWNED!'),
        forged('host', { 'content-encoding': 'aws-chunked' }),
      );
      assert.equal(reply.status, 403);
    }
    assert.deepEqual(readdirSync(join(uploadsDir(master.db), uploadId)), ['upload.json'], 'no part was kept');
  });

  test('F1: a genuinely signed PUT replayed with another body (framed or not) is refused, and the value stays', async () => {
    const url = `${master.url}/private/replayed.txt`;
    const headers = await signedHeaders(OPS, 'PUT', url, {}, 'the original');
    assert.equal((await http('PUT', url, 'the original', headers)).status, 200);
    const plain = await leavesNoTrace('replay', () => http('PUT', url, 'PWNED!', headers));
    assert.equal(plain.status, 400, plain.text);
    assert.match(plain.text, /<Code>XAmzContentSHA256Mismatch<\/Code>/);
    // Content-Encoding is no x-amz-* header, so a replay may add it: the body's sha256 is still
    // checked, over the bytes as sent. (Of unknown length, the value streams: the overwrite it
    // began is aborted, and leaves no blob.)
    const blobs = footprint().blobs;
    const reframed = await http('PUT', url, framed('PWNED!'), { ...headers, 'content-encoding': 'aws-chunked' });
    assert.equal(reframed.status, 400, reframed.text);
    assert.match(reframed.text, /<Code>XAmzContentSHA256Mismatch<\/Code>/);
    assert.deepEqual(footprint().blobs, blobs);
    assert.equal(await valueOf('/private/replayed.txt'), 'the original');
  });

  test('F1: a body-hash mismatch on a large streamed value aborts the write: the old value stays, no blob is left', async () => {
    const url = `${master.url}/private/large.bin`;
    const original = Buffer.alloc(200_000, 'a');
    assert.equal((await http('PUT', url, original, await signedHeaders(OPS, 'PUT', url, {}, original))).status, 200);
    const other = Buffer.alloc(200_000, 'b');
    const headers = await signedHeaders(OPS, 'PUT', url, {}, original);
    const blobs = footprint().blobs;
    const reply = await http('PUT', url, other, headers);
    assert.equal(reply.status, 400);
    assert.equal(await valueOf('/private/large.bin'), original.toString());
    assert.deepEqual(footprint().blobs, blobs, 'the overwrite left no blob');
  });

  test('F2: a presigned URL takes no unsigned x-amz-* header: no copy of another key, no metadata', async () => {
    const url = `${master.url}/backup/dropbox.txt`;
    const presigned = await presignedUrl(BACKUP, 'PUT', url, 300);
    const unsigned: Array<Record<string, string>> = [
      { 'x-amz-copy-source': '/private/secret.txt' },
      { 'x-amz-copy-source': '/backup/kept.txt', 'x-amz-metadata-directive': 'REPLACE' },
      { 'x-amz-meta-owner': 'mallory' },
      { 'x-amz-server-side-encryption': 'AES256' },
    ];
    for (const extra of unsigned) {
      const reply = await leavesNoTrace(JSON.stringify(extra), () => http('PUT', presigned, 'dropped', extra));
      assert.equal(reply.status, 403, JSON.stringify(extra));
      assert.match(
        reply.text,
        /<Code>AccessDenied<\/Code><Message>There were headers present in the request which were not signed: x-amz-/,
      );
    }
    assert.equal(await valueOf('/backup/dropbox.txt'), 404);
    // What the URL was made for still works, and headers it signed are honoured.
    const signedMeta = await presignedUrl(BACKUP, 'PUT', url, 300, { 'x-amz-meta-owner': 'backup' });
    assert.equal((await http('PUT', signedMeta, 'dropped', { 'x-amz-meta-owner': 'backup' })).status, 200);
    const head = await http('HEAD', url, undefined, await signedHeaders(OPS, 'HEAD', url));
    assert.equal(head.headers['x-amz-meta-owner'], 'backup');
    // The AWS SDK for JavaScript puts such headers in the query instead: signed there, and read as S3 reads them.
    const hoistedKey = `${master.url}/backup/hoisted.txt`;
    const hoisted = await presignedUrl(BACKUP, 'PUT', hoistedKey, 300, { 'x-amz-meta-owner': 'hoisted' }, { hoist: true });
    assert.match(hoisted, /x-amz-meta-owner=hoisted/);
    assert.equal((await http('PUT', hoisted, 'dropped again')).status, 200);
    const hoistedHead = await http('HEAD', hoistedKey, undefined, await signedHeaders(OPS, 'HEAD', hoistedKey));
    assert.equal(hoistedHead.headers['x-amz-meta-owner'], 'hoisted');
    const altered = hoisted.replace('x-amz-meta-owner=hoisted', 'x-amz-meta-owner=mallory');
    assert.equal((await http('PUT', altered, 'dropped again')).status, 403, 'and cannot be changed');
  });

  test('F2: a header-signed request with an unsigned x-amz-* header is refused', async () => {
    const url = `${master.url}/backup/copy.txt`;
    const headers = await signedHeaders(BACKUP, 'PUT', url, {}, 'x');
    const reply = await leavesNoTrace('unsigned copy source', () =>
      http('PUT', url, 'x', { ...headers, 'x-amz-copy-source': '/backup/kept.txt' }),
    );
    assert.equal(reply.status, 403);
    assert.equal(await valueOf('/backup/copy.txt'), 404);
  });

  test('F4: a forged PUT holds no lock while its body trickles, and a forged 60 MB PUT reaches no volume', async () => {
    const variants = [
      ['without a payload hash', forged('host;x-amz-date')],
      ['UNSIGNED-PAYLOAD', forged('host;x-amz-content-sha256;x-amz-date', { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' })],
    ] as const;
    const refusedOrCut = (reply: Reply | Error) => {
      if (reply instanceof Error) assert.match(reply.message, /closed|reset|aborted|socket/i);
      else assert.ok(reply.status === 400 || reply.status === 403, `${reply.status} ${reply.text}`);
    };
    for (const [what, headers] of variants) {
      const key = `/private/trickle-${what.length}.txt`;
      // Chunked, 1.1 KB and then nothing: the body is never whole.
      const trickle = new Readable({ read() {} });
      trickle.push(Buffer.alloc(1100, 'x'));
      refusedOrCut(await http('PUT', master.url + key, trickle, headers, 20_000).catch((error: Error) => error));
      // The owner writes the key at once: nothing holds it.
      assert.equal((await http('PUT', master.url + key, 'mine', AS_OPS)).status, 201, what);
      trickle.destroy();
      const big = Readable.from(
        (function* () {
          for (let i = 0; i < 60; i++) yield Buffer.alloc(1024 * 1024, 'z');
        })(),
      );
      const before = footprint();
      const reply = await http('PUT', `${master.url}/private/big.bin`, big, {
        ...headers,
        'content-length': String(60 * 1024 * 1024),
      }).catch((error: Error) => error);
      refusedOrCut(reply);
      assert.deepEqual(footprint(), before, `${what}: no event, no blob`);
    }
    assert.equal(await valueOf('/private/big.bin'), 404);
  });

  test('F5: a forged header lists no bucket and reads no metrics', async () => {
    for (const body of ['x', undefined]) {
      const listing = await http('GET', `${master.url}/`, body, forged('host;x-amz-date'));
      assert.equal(listing.status, body ? 400 : 403, 'a body needs its declared sha256; without one, the signature is wrong');
      assert.doesNotMatch(listing.text, /<Bucket>/);
    }
    const listing = await http(
      'GET',
      `${master.url}/`,
      undefined,
      forged('host;x-amz-content-sha256;x-amz-date', { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' }),
    );
    assert.equal(listing.status, 403);
    assert.doesNotMatch(listing.text, /<Bucket>/);
    const admin: Server = createAdminServer({
      metrics: master.metrics,
      store: master.store,
      volumes: undefined as never,
      volumeNames: [],
      credentials,
    });
    await new Promise<void>((resolve) => admin.listen(0, '127.0.0.1', resolve));
    const adminUrl = `http://127.0.0.1:${(admin.address() as AddressInfo).port}`;
    try {
      const metrics = await http('GET', `${adminUrl}/metrics`, undefined, forged('host;x-amz-date'));
      assert.equal(metrics.status, 403);
      assert.doesNotMatch(metrics.text, /mkv_/);
      // F14: a real key without the admin right is refused with 403 (not 401), and counted as access_denied.
      const denied = async () =>
        Number(/^mkv_auth_failures_total\{reason="access_denied"\} (\d+)$/m.exec(await master.metrics.registry.metrics())?.[1] ?? 0);
      const before = await denied();
      const backup = await http('GET', `${adminUrl}/metrics`, undefined, basic('backup:backup-secret-key'));
      assert.equal(backup.status, 403);
      assert.equal(await denied(), before + 1);
      assert.equal((await http('GET', `${adminUrl}/metrics`)).status, 401, 'no credentials: 401');
      assert.equal((await http('GET', `${adminUrl}/metrics`, undefined, AS_OPS)).status, 200);
    } finally {
      admin.close();
    }
  });

  test('F6: DeleteObjects without the delete right is refused whole, before its body is read, with one log line', async () => {
    const document = `<Delete>${Array.from({ length: 1000 }, (_, i) => `<Object><Key>k${i}</Key></Object>`).join('')}</Delete>`;
    for (const headers of [{}, await signedHeaders(BACKUP, 'POST', `${master.url}/private?delete`, {}, document)]) {
      const logged = lines.length;
      const reply = await leavesNoTrace('DeleteObjects', () => http('POST', `${master.url}/private?delete`, document, headers));
      assert.equal(reply.status, 403);
      assert.match(reply.text, /<Code>AccessDenied<\/Code>/);
      assert.doesNotMatch(reply.text, /<DeleteResult/);
      // One line for this refusal (not one per key). The earlier tests' refusals, past the 20 a second
      // logged one by one, may be summed up in a line written just before it: that one is not this request's.
      const ours = lines.slice(logged).filter((line) => !line.message.startsWith('more requests were refused'));
      assert.ok(ours.length <= 1, `${ours.length} log lines: ${ours.map((line) => line.message).join('; ')}`);
    }
    assert.equal(await valueOf('/private/secret.txt'), 'the secret');
  });

  test('F7: Content-MD5 is checked on every PUT and part: BadDigest, InvalidDigest, and nothing stored', async () => {
    const md5OfGood = md5Base64('good');
    const native = await leavesNoTrace('native', () =>
      http('PUT', `${master.url}/backup/md5.txt`, 'EVIL', { ...basic('backup:backup-secret-key'), 'content-md5': md5OfGood }),
    );
    assert.equal(native.status, 400);
    assert.match(native.text, /^MKV_BAD_DIGEST/);
    const invalid = await http('PUT', `${master.url}/backup/md5.txt`, 'good', {
      ...basic('backup:backup-secret-key'),
      'content-md5': 'xx',
    });
    assert.equal(invalid.status, 400);
    assert.match(invalid.text, /^MKV_INVALID_DIGEST/);
    const s3Url = `${master.url}/backup/md5-s3.txt`;
    const s3 = await leavesNoTrace('s3', async () =>
      http('PUT', s3Url, 'EVIL', await signedHeaders(BACKUP, 'PUT', s3Url, { 'content-md5': md5OfGood }, 'EVIL')),
    );
    assert.match(s3.text, /<Code>BadDigest<\/Code>/);
    const large = Buffer.alloc(300_000, 'L');
    const streamed = await http('PUT', s3Url, large, await signedHeaders(BACKUP, 'PUT', s3Url, { 'content-md5': md5OfGood }, large));
    assert.match(streamed.text, /<Code>BadDigest<\/Code>/);
    assert.equal(await valueOf('/backup/md5-s3.txt'), 404);
    const good = await http('PUT', s3Url, 'good', await signedHeaders(BACKUP, 'PUT', s3Url, { 'content-md5': md5OfGood }, 'good'));
    assert.equal(good.status, 200);
    // A part, and a replayed V2-signed PUT whose signed Content-MD5 does not fit its new body.
    const upload = `${master.url}/backup/parts.bin`;
    const created = await http('POST', `${upload}?uploads`, undefined, await signedHeaders(BACKUP, 'POST', `${upload}?uploads`));
    const partUrl = `${upload}?partNumber=1&uploadId=${/<UploadId>([^<]+)</.exec(created.text)![1]}`;
    const part = await http('PUT', partUrl, 'EVIL', await signedHeaders(BACKUP, 'PUT', partUrl, { 'content-md5': md5OfGood }, 'EVIL'));
    assert.match(part.text, /<Code>BadDigest<\/Code>/);
    const v2 = v2Headers(BACKUP, 'PUT', '/backup/v2.txt', { 'content-md5': md5Base64('signed'), 'content-type': 'text/plain' });
    assert.equal((await http('PUT', `${master.url}/backup/v2.txt`, 'signed', v2)).status, 200);
    const replay = await http('PUT', `${master.url}/backup/v2.txt`, 'EVIL!!', v2);
    assert.match(replay.text, /<Code>BadDigest<\/Code>/);
    assert.equal(await valueOf('/backup/v2.txt'), 'signed');
  });

  test('F8: a V2 presigned URL lives 7 days at most', async () => {
    const now = Math.floor(Date.now() / 1000);
    assert.equal((await http('GET', v2PresignedUrl(OPS, 'GET', master.url, '/pub/a.txt', now + 3600))).status, 200);
    const forever = await http('GET', v2PresignedUrl(OPS, 'GET', master.url, '/pub/a.txt', 999_999_999_999));
    assert.equal(forever.status, 403);
    assert.match(forever.text, /7 days/);
  });

  test("F9: the credential's scope must be S3's, in the configured region when there is one", async () => {
    const url = `${master.url}/pub/a.txt`;
    const notS3 = await http('GET', url, undefined, await signedHeaders({ ...OPS, region: 'mars-north-9', service: 'notS3' }, 'GET', url));
    assert.equal(notS3.status, 400);
    assert.match(notS3.text, /<Code>AuthorizationHeaderMalformed<\/Code>/);
    // No --region: any region, as MinIO takes them.
    const anyRegion = await http('GET', url, undefined, await signedHeaders({ ...OPS, region: 'eu-west-1' }, 'GET', url));
    assert.equal(anyRegion.status, 200, anyRegion.text);
    const scoped = await startMaster(set.volumes, { volumeSecret: SECRET }, { credentials: { ...credentials, region: 'eu-west-1' } });
    try {
      const there = `${scoped.url}/pub/a.txt`;
      assert.equal((await http('PUT', there, 'scoped', AS_OPS)).status, 201);
      assert.equal((await http('GET', there, undefined, await signedHeaders({ ...OPS, region: 'eu-west-1' }, 'GET', there))).status, 200);
      const elsewhere = await http('GET', there, undefined, await signedHeaders(OPS, 'GET', there));
      assert.equal(elsewhere.status, 400);
      assert.match(elsewhere.text, /region &apos;us-east-1&apos; is wrong; expecting &apos;eu-west-1&apos;/);
      const presigned = await presignedUrl(OPS, 'GET', there, 60);
      assert.equal((await http('GET', presigned)).status, 400, 'a presigned URL too');
    } finally {
      await scoped.close();
      removeDir(scoped.db);
    }
  });

  test('F10: a tampered chunk of a signed streaming upload is 403 SignatureDoesNotMatch, logged; chunks without signatures too', async () => {
    for (const size of [1000, 200_000]) {
      const url = `${master.url}/private/streamed-${size}.bin`;
      const chunks = [Buffer.alloc(size / 2, 'a'), Buffer.alloc(size / 2, 'b')];
      const good = await streamingPut(OPS, url, chunks);
      assert.equal((await http('PUT', url, good.body, good.headers)).status, 200, 'signed chunks are taken');
      assert.equal(await valueOf(`/private/streamed-${size}.bin`), chunks.join(''));
      const again = await streamingPut(OPS, url, [Buffer.alloc(size / 2, 'c'), Buffer.alloc(size / 2, 'd')]);
      const tampered = Buffer.from(again.body);
      tampered[tampered.indexOf('c') + 10] = 'X'.charCodeAt(0);
      // Refusals are logged one by one up to a number a second (the rest counted): start a second of its own.
      const second = Math.floor(Date.now() / 1000);
      while (Math.floor(Date.now() / 1000) === second) await new Promise((resolve) => setTimeout(resolve, 10));
      const logged = lines.length;
      const reply = await http('PUT', url, tampered, again.headers);
      assert.equal(reply.status, 403, reply.text);
      assert.match(reply.text, /<Code>SignatureDoesNotMatch<\/Code>/);
      assert.ok(
        lines.slice(logged).some((line) => line.fields?.code === 'MKV_SIGNATURE'),
        'the refusal is logged',
      );
      assert.ok(!lines.slice(logged).some((line) => line.level === 'error'), 'and no internal error');
      const unsigned = Buffer.from(again.body.toString('latin1').replace(/;chunk-signature=[0-9a-f]{64}/g, ''), 'latin1');
      const bare = await http('PUT', url, unsigned, again.headers);
      assert.equal(bare.status, 403);
      assert.match(bare.text, /<Code>SignatureDoesNotMatch<\/Code>/);
      assert.equal(await valueOf(`/private/streamed-${size}.bin`), chunks.join(''), 'the value is the signed one');
    }
  });

  test('F11: Min-Log-Seq is not waited for before the request is allowed', async () => {
    const reply = await http('GET', `${master.url}/private/secret.txt`, undefined, { 'min-log-seq': '99999999' }, 5000);
    assert.equal(reply.status, 401);
  });

  test('F12: Basic answers a wrong secret and an unknown access key alike', async () => {
    const known = await http('GET', `${master.url}/k`, undefined, basic('ops:wrong'));
    const unknown = await http('GET', `${master.url}/k`, undefined, basic('nosuch:wrong'));
    assert.equal(known.status, 401);
    assert.deepEqual([unknown.status, unknown.text], [known.status, known.text]);
    assert.doesNotMatch(known.text, /ops/);
  });

  // Found by an attacker's review of the above (the findings' letters are that review's).
  test('A1: a "#" in the request target is refused: a presigned URL cannot be aimed at the key before it', async () => {
    assert.equal((await http('PUT', `${master.url}/backup/victim`, 'precious', AS_OPS)).status, 201);
    const created = await http(
      'POST',
      `${master.url}/backup/victim%23part?uploads`,
      undefined,
      await signedHeaders(OPS, 'POST', `${master.url}/backup/victim%23part?uploads`),
    );
    const uploadId = /<UploadId>([^<]+)</.exec(created.text)![1]!;
    const presigned = new URL(
      await presignedUrl(BACKUP, 'PUT', `${master.url}/backup/victim%23part?partNumber=1&uploadId=${uploadId}`, 300),
    );
    const read = new URL(await presignedUrl(OPS, 'GET', `${master.url}/backup/victim%23part`, 300));
    for (const [port, target, method] of [
      [master.port, `/backup/victim#part${presigned.search}`, 'PUT'],
      [Number(new URL(master.s3Url).port), `/backup/victim#part${presigned.search}`, 'PUT'],
      [master.port, `/backup/victim#part${read.search}`, 'GET'],
    ] as const) {
      const answer = await rawExchange(
        port,
        `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\namz-sdk-invocation-id: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\n`,
        method === 'PUT' ? 'EVIL' : undefined,
      );
      assert.match(answer, /^HTTP\/1\.1 400 /, `${method} ${target}: ${answer.slice(0, 200)}`);
      assert.doesNotMatch(answer, /precious/);
    }
    assert.equal(await valueOf('/backup/victim'), 'precious');
  });

  test('A2: Min-Log-Seq is waited for only once the exact right is checked (and never by a method the API has not)', async () => {
    for (const [method, path] of [
      ['GET', '/?list'],
      ['GET', '/open/x?history'],
      ['GET', '/'],
      ['PATCH', '/open/x'],
    ] as const) {
      const reply = await http(
        method,
        master.url + path,
        undefined,
        { 'min-log-seq': '999999999', ...(path === '/' ? { 'amz-sdk-invocation-id': 'x' } : {}) },
        5000,
      );
      assert.ok(reply.status !== 503 && reply.status < 500, `${method} ${path}: ${reply.status} ${reply.text}`);
      assert.doesNotMatch(reply.text, /seq/, "no word of the log's position");
    }
  });

  test('A3: refusals cost a line each up to a number a second, clipped; the rest are counted in one', async () => {
    const logged = lines.length;
    const path = `/private/${'x'.repeat(8000)}`;
    await Promise.all(Array.from({ length: 100 }, () => http('GET', master.url + path)));
    // The count of the rest comes with the next refusal after that second.
    const second = Math.floor(Date.now() / 1000);
    while (Math.floor(Date.now() / 1000) === second) await new Promise((resolve) => setTimeout(resolve, 10));
    await http('GET', `${master.url}/private/y`);
    const burst = lines.slice(logged);
    assert.ok(burst.length <= 2 * 20 + 2, `${burst.length} lines for 101 refusals`);
    for (const line of burst) assert.ok(JSON.stringify(line.fields).length < 1200, 'a line holds no 8 KB path');
    assert.ok(
      burst.some((line) => /more requests were refused/.test(line.message)),
      'the rest are counted',
    );
  });

  test('A4: Expect: 100-continue is answered only once the request is admitted: a refused one gets no 100, and sends no body', async () => {
    const answer = await rawExchange(
      master.port,
      'PUT /private/evil HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n',
    );
    assert.match(answer, /^HTTP\/1\.1 401 /, answer.slice(0, 100));
    assert.doesNotMatch(answer, /100 Continue/);
    const allowed = await rawExchange(
      master.port,
      `PUT /private/expected HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${AS_OPS.authorization}\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
      'ok',
    );
    assert.match(allowed, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 201 /);
  });

  test('A5, A6: no secret in a log line or an answer when a client swaps its key and secret; unsigned headers refused alike for any name', async () => {
    const logged = lines.length;
    await http('GET', `${master.url}/private/x`, undefined, basic('ops-secret-key-0123'));
    await http('GET', `${master.url}/private/x`, undefined, basic('ops-secret-key-0123:ops'));
    const swapped = await http(
      'GET',
      `${master.url}/pub/a.txt`,
      undefined,
      await signedHeaders({ accessKey: 'ops-secret-key-0123', secret: 'ops' }, 'GET', `${master.url}/pub/a.txt`),
    );
    assert.equal(swapped.status, 403);
    assert.doesNotMatch(swapped.text, /ops-secret-key/);
    assert.doesNotMatch(JSON.stringify(lines.slice(logged)), /ops-secret-key/);
    for (const name of ['ops', 'nosuch']) {
      const url = `${master.url}/pub/a.txt`;
      const headers = { ...(await signedHeaders({ accessKey: name, secret: 'whatever-secret' }, 'GET', url)), 'x-amz-meta-x': 'y' };
      const reply = await http('GET', url, undefined, headers);
      assert.match(reply.text, /<Code>AccessDenied<\/Code>/, name);
    }
  });

  test('A7: a checksum a body comes with is checked, as a header or as an aws-chunked trailer, by every algorithm', async () => {
    const url = `${master.url}/private/checked.txt`;
    const wrong = await http('PUT', url, 'good', {
      ...(await signedHeaders(OPS, 'PUT', url, { 'x-amz-checksum-crc32': Buffer.alloc(4).toString('base64') }, 'good')),
    });
    assert.equal(wrong.status, 400);
    assert.match(wrong.text, /<Code>BadDigest<\/Code>/);
    const crc = (text: string) => {
      const out = Buffer.alloc(4);
      out.writeUInt32BE(crc32(Buffer.from(text)));
      return out.toString('base64');
    };
    const trailed = (text: string, checksum: string) =>
      Buffer.from(`${text.length.toString(16)}\r\n${text}\r\n0\r\nx-amz-checksum-crc32:${checksum}\r\n\r\n`);
    const trailerHeaders = async () =>
      signedHeaders(OPS, 'PUT', url, {
        'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
        'content-encoding': 'aws-chunked',
        'x-amz-trailer': 'x-amz-checksum-crc32',
        'x-amz-decoded-content-length': '4',
      });
    const badTrailer = await http('PUT', url, trailed('EVIL', crc('good')), await trailerHeaders());
    assert.equal(badTrailer.status, 400, badTrailer.text);
    assert.match(badTrailer.text, /<Code>BadDigest<\/Code>/);
    assert.equal(await valueOf('/private/checked.txt'), 404);
    assert.equal((await http('PUT', url, trailed('good', crc('good')), await trailerHeaders())).status, 200);
    // A real client's checksums, every algorithm, both ways (a buffer: a header; a stream: a trailer).
    const client = new S3Client({
      endpoint: master.url,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: OPS.accessKey, secretAccessKey: OPS.secret },
      maxAttempts: 1,
    });
    try {
      for (const algorithm of ['CRC32', 'CRC32C', 'SHA1', 'SHA256'] as const) {
        for (const body of [Buffer.from(`by ${algorithm}`), Readable.from([Buffer.from(`streamed by ${algorithm}`)])]) {
          const key = `private/sdk-${algorithm}-${Buffer.isBuffer(body) ? 'buffer' : 'stream'}`;
          await client.send(
            new PutObjectCommand({
              Bucket: 'private',
              Key: key.slice('private/'.length),
              Body: body,
              ChecksumAlgorithm: algorithm,
              ...(Buffer.isBuffer(body) ? {} : { ContentLength: `streamed by ${algorithm}`.length }),
            }),
          );
          assert.match(String(await valueOf(`/${key}`)), new RegExp(`by ${algorithm}$`));
        }
      }
    } finally {
      client.destroy();
    }
  });

  test('A8: a V2 presigned bucket URL does what it was signed for, whatever is added to its query', async () => {
    const now = Math.floor(Date.now() / 1000);
    const signed = v2PresignedUrl(
      { accessKey: 'reader', secret: 'reader-secret-key' },
      'GET',
      master.url,
      '/pub?location',
      now + 300,
    ).replace('?location?', '?location&');
    const reply = await http('GET', `${signed}&list-type=2`);
    assert.equal(reply.status, 200, reply.text);
    assert.match(reply.text, /<LocationConstraint/);
    assert.doesNotMatch(reply.text, /<ListBucketResult/);
  });

  test('A9: a key that may write but not delete destroys no value: no overwrite, no copy over one, no DeleteObjects', async () => {
    const url = `${master.url}/backup/kept.txt`;
    const overwrite = await http('PUT', url, 'gone', await signedHeaders(BACKUP, 'PUT', url, {}, 'gone'));
    assert.equal(overwrite.status, 403, overwrite.text);
    const copy = await http(
      'PUT',
      url,
      undefined,
      await signedHeaders(BACKUP, 'PUT', url, { 'x-amz-copy-source': '/backup/replayed-none' }),
    );
    assert.ok(copy.status === 403 || copy.status === 404, `${copy.status}`);
    const copyOver = await http(
      'PUT',
      url,
      undefined,
      await signedHeaders(BACKUP, 'PUT', url, { 'x-amz-copy-source': '/backup/md5-s3.txt' }),
    );
    assert.equal(copyOver.status, 403, copyOver.text);
    assert.equal(await valueOf('/backup/kept.txt'), 'kept');
    const fresh = `${master.url}/backup/fresh.txt`;
    assert.equal(
      (await http('PUT', fresh, 'new', await signedHeaders(BACKUP, 'PUT', fresh, {}, 'new'))).status,
      200,
      'a new key it writes',
    );
    const metadata = await http(
      'PUT',
      url,
      undefined,
      await signedHeaders(BACKUP, 'PUT', url, {
        'x-amz-copy-source': '/backup/kept.txt',
        'x-amz-metadata-directive': 'REPLACE',
        'content-type': 'text/html',
        'x-amz-meta-evil': '1',
      }),
    );
    assert.equal(metadata.status, 403, 'nor the metadata it holds');
    const head = await http('HEAD', url, undefined, await signedHeaders(OPS, 'HEAD', url));
    assert.notEqual(head.headers['content-type'], 'text/html');
    // An upload's parts are others' data too: aborting it needs delete.
    const multi = `${master.url}/backup/multi.bin`;
    const created = await http('POST', `${multi}?uploads`, undefined, await signedHeaders(OPS, 'POST', `${multi}?uploads`));
    const abort = `${multi}?uploadId=${/<UploadId>([^<]+)</.exec(created.text)![1]}`;
    assert.equal((await http('DELETE', abort, undefined, await signedHeaders(BACKUP, 'DELETE', abort))).status, 403);
    const document = '<Delete><Object><Key>kept.txt</Key></Object></Delete>';
    const deleted = await http(
      'POST',
      `${master.url}/backup?delete`,
      document,
      await signedHeaders(BACKUP, 'POST', `${master.url}/backup?delete`, { 'content-md5': md5Base64(document) }, document),
    );
    assert.equal(deleted.status, 403);
    assert.equal(await valueOf('/backup/kept.txt'), 'kept');
  });

  test('A10: a DeleteObjects needs a digest of its body, not a header that only names one; a document the parser cannot take is 400', async () => {
    const url = `${master.url}/backup?delete`;
    const document = '<Delete><Object><Key>kept.txt</Key></Object></Delete>';
    const namedOnly: Array<Record<string, string>> = [{ 'x-amz-checksum-type': 'FULL_OBJECT' }, { 'x-amz-checksum-algorithm': 'CRC32' }];
    for (const named of namedOnly) {
      const headers = await signedHeaders(OPS, 'POST', url, { ...named, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' });
      const reply = await http('POST', url, document, headers);
      assert.equal(reply.status, 400, JSON.stringify(named));
    }
    assert.equal(await valueOf('/backup/kept.txt'), 'kept');
    const nested = `<Delete>${'<a>'.repeat(24000)}${'</a>'.repeat(24000)}</Delete>`;
    const logged = lines.length;
    const deep = await http('POST', url, nested, await signedHeaders(OPS, 'POST', url, { 'content-md5': md5Base64(nested) }, nested));
    assert.equal(deep.status, 400, deep.text.slice(0, 200));
    assert.match(deep.text, /<Code>MalformedXML<\/Code>/);
    assert.ok(!lines.slice(logged).some((line) => line.level === 'error'), 'no error logged');
  });

  test('no answer can be sniffed into HTML: X-Content-Type-Options nosniff, native and S3', async () => {
    for (const [url, headers] of [
      [`${master.url}/%3Cscript%3E`, AS_OPS],
      [`${master.url}/pub/%3Cscript%3E`, await signedHeaders(OPS, 'GET', `${master.url}/pub/%3Cscript%3E`)],
      [`${master.url}/x?bogus`, AS_OPS],
    ] as const) {
      const reply = await http('GET', url, undefined, headers);
      assert.equal(reply.headers['x-content-type-options'], 'nosniff', url);
    }
  });
});

describe('a master started with --credentials', () => {
  test('keeps its new db to itself, and warns of a key prefix without a trailing slash', async () => {
    const dir = tempDir('mkv-creds-start-');
    try {
      const file = join(dir, 'credentials');
      writeFileSync(file, 'ops:ops-secret-key-0123\nreader:reader-secret-key read /pub\n');
      const db = join(dir, 'db');
      const master = await spawnMaster(['--db', db, '--volumes', '127.0.0.1:1', '--replicas', '1', '--credentials', file]);
      try {
        assert.equal(statSync(db).mode & 0o777, 0o700);
        assert.match(master.output(), /"grant":"reader \/pub".*a key prefix without a trailing/);
        assert.doesNotMatch(master.output(), /reader-secret-key|ops-secret-key/);
      } finally {
        master.child.kill('SIGTERM');
        await master.exited;
      }
    } finally {
      removeDir(dir);
    }
  });
});
