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
import { parseCredentials, type Credentials } from '../../src/auth/credentials.js';
import { createAdminServer } from '../../src/master/admin.js';
import { uploadsDir } from '../../src/db/paths.js';
import type { Logger } from '../../src/logger.js';
import { blobsIn } from '../helpers/blobs.js';
import { http, type Reply } from '../helpers/http.js';
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
    const hoisted = await presignedUrl(BACKUP, 'PUT', url, 300, { 'x-amz-meta-owner': 'hoisted' }, { hoist: true });
    assert.match(hoisted, /x-amz-meta-owner=hoisted/);
    assert.equal((await http('PUT', hoisted, 'dropped again')).status, 200);
    assert.equal((await http('HEAD', url, undefined, await signedHeaders(OPS, 'HEAD', url))).headers['x-amz-meta-owner'], 'hoisted');
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
      assert.ok(lines.length - logged <= 1, `${lines.length - logged} log lines`);
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
