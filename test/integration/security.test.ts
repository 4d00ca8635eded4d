// Who may do what, on a master with --credentials over volumes that hold its secret (stock
// nginx when installed): nobody without credentials, a read-only key limited to a prefix, a full
// key, and someone who reaches a volume's port directly. Real clients where users meet them:
// curl (-u, -L, --aws-sigv4), the aws cli (presigned URLs), the AWS SDK.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parseCredentials } from '../../src/auth/credentials.js';
import { keyToPath, keyToVolumes, volumeHost, volumePrefix } from '../../src/placement.js';
import { VolumeClient } from '../../src/volumes/client.js';
import { http, type Reply } from '../helpers/http.js';
import { until } from '../helpers/wait.js';
import {
  hasNginx,
  nginxSkipReason,
  removeDir,
  repoRoot,
  runMkv,
  startMaster,
  startVolumes,
  tempDir,
  type TestMaster,
  type VolumeSet,
} from '../helpers/cluster.js';

const SECRET = '0123456789abcdef0123456789abcdef';
const CREDENTIALS = 'admin:admin-secret-key\nreader:reader-secret-key read,list /pub/\nanonymous read /open/\n';
const basic = (user: string) => ({ authorization: `Basic ${Buffer.from(user).toString('base64')}` });
const ADMIN = basic('admin:admin-secret-key');
const READER = basic('reader:reader-secret-key');

// Asynchronous: the master under test runs in this process, and must answer meanwhile.
const run = promisify(execFile);

async function curl(args: string[]): Promise<{ status: number; body: string }> {
  const { stdout } = await run('curl', ['-s', '-o', '-', '-w', '\n%{http_code}', '--max-time', '20', ...args]);
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

async function awsCli(args: string[], configFile?: string): Promise<string> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: 'admin',
    AWS_SECRET_ACCESS_KEY: 'admin-secret-key',
    AWS_DEFAULT_REGION: 'us-east-1',
  };
  if (configFile) env.AWS_CONFIG_FILE = configFile;
  delete env.AWS_CA_BUNDLE;
  return (await run('aws', args, { env, timeout: 60_000 })).stdout;
}

function awsCliSkipReason(): string | false {
  if (spawnSync('aws', ['--version'], { stdio: 'ignore' }).status === 0) return false;
  if (process.env.CI) throw new Error('CI must install awscli (see .ci/run)');
  return 'the aws cli is not installed (apt-get install awscli)';
}

describe(`a secured cluster (${hasNginx() ? 'nginx' : 'embedded'} volumes)`, () => {
  let set: VolumeSet;
  let master: TestMaster;
  let url: string;
  before(async () => {
    set = await startVolumes(hasNginx() ? 'nginx' : 'embedded', 3, tempDir('mkv-secure-'), SECRET);
    master = await startMaster(
      set.volumes,
      { volumeSecret: SECRET, linkTtlMs: 60_000 },
      { credentials: parseCredentials(CREDENTIALS, 'credentials') },
    );
    url = master.url;
    assert.equal((await http('PUT', `${url}/pub/a`, 'public value', ADMIN)).status, 201);
    assert.equal((await http('PUT', `${url}/private/b`, 'private value', ADMIN)).status, 201);
    assert.equal((await http('PUT', `${url}/open/c`, 'open value', ADMIN)).status, 201);
  });
  after(async () => {
    await master?.close();
    await set?.close();
    if (master) removeDir(master.db);
  });

  test('no credentials: 401 with WWW-Authenticate for all but what anonymous may do', async () => {
    for (const [method, path] of [
      ['GET', '/pub/a'],
      ['PUT', '/pub/new'],
      ['DELETE', '/pub/a'],
      ['UNLINK', '/pub/a'],
      ['GET', '/pub/?list'],
      ['GET', '/pub/a?history'],
    ] as const) {
      const reply = await http(method, url + path, method === 'PUT' ? 'x' : undefined);
      assert.equal(reply.status, 401, `${method} ${path}`);
      assert.match(reply.headers['www-authenticate'] ?? '', /^Basic realm="mkv"/);
    }
    const open = await http('GET', `${url}/open/c`);
    assert.equal(open.status, 302, 'anonymous may read /open/');
    assert.equal((await http('GET', open.headers.location!)).text, 'open value');
    assert.equal((await http('PUT', `${url}/open/c2`, 'x')).status, 401, 'but not write there');
    const s3 = await http('GET', `${url}/pub?list-type=2`);
    assert.equal(s3.status, 403);
    assert.match(s3.text, /<Code>AccessDenied<\/Code>/);
  });

  test('a read-only key limited to /pub/: reads and lists there, nothing else; curl -L -u follows the redirect', async () => {
    const reply = await http('GET', `${url}/pub/a`, undefined, READER);
    assert.equal(reply.status, 302);
    assert.match(reply.headers.location!, /\?md5=[A-Za-z0-9_-]{22}&expires=\d+$/, 'the redirect is a signed link');
    assert.equal((await curl(['-L', '-u', 'reader:reader-secret-key', `${url}/pub/a`])).body, 'public value');
    assert.deepEqual(JSON.parse((await http('GET', `${url}/pub/?list`, undefined, READER)).text).keys, ['/pub/a']);
    for (const [method, path, status] of [
      ['GET', '/private/b', 403],
      ['GET', '/?list', 403],
      ['PUT', '/pub/new', 403],
      ['DELETE', '/pub/a', 403],
      ['UNLINK', '/pub/a', 403],
      ['GET', '/pub/a?history', 403],
    ] as const) {
      const refused = await http(method, url + path, method === 'PUT' ? 'x' : undefined, READER);
      assert.equal(refused.status, status, `${method} ${path}: ${refused.text}`);
      assert.match(refused.text, /^MKV_ACCESS_DENIED: reader may not/);
    }
    assert.equal((await http('GET', `${url}/pub/a`, undefined, basic('reader:wrong-secret'))).status, 401);
  });

  test('a full key does everything; curl --aws-sigv4 signs native requests', async () => {
    assert.equal((await http('PUT', `${url}/private/new`, 'v', ADMIN)).status, 201);
    assert.equal((await http('UNLINK', `${url}/private/new`, undefined, ADMIN)).status, 204);
    assert.equal((await http('LINK', `${url}/private/new`, undefined, ADMIN)).status, 204);
    assert.equal((await http('DELETE', `${url}/private/new`, undefined, ADMIN)).status, 204);
    assert.equal((await http('GET', `${url}/private/b?history`, undefined, ADMIN)).status, 200);
    const sigv4 = ['--aws-sigv4', 'aws:amz:us-east-1:s3', '-u', 'admin:admin-secret-key'];
    // A body's sha256 is declared (curl before 8.x sends none), so the signature is checked before the body is read.
    const undeclared = await curl([...sigv4, '-X', 'PUT', '--data-binary', 'signed by curl', `${url}/private/curl`]);
    assert.equal(undeclared.status, 400);
    assert.match(undeclared.body, /Missing required header for this request: x-amz-content-sha256/);
    const declared = ['-H', `x-amz-content-sha256: ${createHash('sha256').update('signed by curl').digest('hex')}`];
    assert.equal((await curl([...sigv4, ...declared, '-X', 'PUT', '--data-binary', 'signed by curl', `${url}/private/curl`])).status, 200);
    assert.equal((await curl([...sigv4, `${url}/private/curl`])).body, 'signed by curl');
    assert.equal((await curl(['--aws-sigv4', 'aws:amz:us-east-1:s3', '-u', 'admin:not-the-secret', `${url}/private/curl`])).status, 403);
  });

  test("someone on a volume's port: nothing without a link from the master, and a link only reads its blob", async () => {
    const volume = keyToVolumes('/private/b', set.volumes, 3, 10)[0]!;
    const blob = `http://${volume}${keyToPath('/private/b')}`;
    for (const method of ['GET', 'HEAD', 'DELETE'] as const) assert.equal((await http(method, blob)).status, 403, method);
    assert.equal((await http('PUT', blob, 'overwritten')).status, 403);
    assert.equal((await http('PUT', `http://${volume.split('/')[0]}/sv00/00/00/bmV3`, 'planted')).status, 403, 'nor a new file');
    assert.equal((await http('GET', `http://${volume.split('/')[0]}/`)).status, 403, 'nor a listing');
    const link = (await http('GET', `${url}/private/b`, undefined, ADMIN)).headers.location!;
    assert.equal((await http('GET', link)).text, 'private value');
    assert.equal((await http('PUT', link, 'overwritten')).status, 403, "a redirect's link does not write");
    assert.equal((await http('DELETE', link)).status, 403, 'nor delete');
    assert.equal((await http('GET', `${url}/private/b`, undefined, ADMIN)).status, 302, 'the blob is still there');
  });

  test('S3 with SigV4 (the AWS SDK): the right key works, a wrong secret, an unknown key and a skewed clock are refused', async () => {
    const client = (accessKeyId: string, secretAccessKey: string, systemClockOffset = 0) =>
      new S3Client({
        endpoint: url,
        forcePathStyle: true,
        region: 'us-east-1',
        credentials: { accessKeyId, secretAccessKey },
        systemClockOffset,
        maxAttempts: 1,
      });
    const admin = client('admin', 'admin-secret-key');
    await admin.send(new PutObjectCommand({ Bucket: 'pub', Key: 'sdk.txt', Body: 'from the sdk' }));
    assert.equal(
      await (await admin.send(new GetObjectCommand({ Bucket: 'pub', Key: 'sdk.txt' }))).Body!.transformToString(),
      'from the sdk',
    );
    const reader = client('reader', 'reader-secret-key');
    assert.ok((await reader.send(new ListObjectsV2Command({ Bucket: 'pub' }))).Contents!.some((object) => object.Key === 'sdk.txt'));
    await assert.rejects(
      reader.send(new PutObjectCommand({ Bucket: 'pub', Key: 'no.txt', Body: 'x' })),
      (error: Error) => error.name === 'AccessDenied',
    );
    await assert.rejects(
      client('admin', 'wrong-secret-key').send(new GetObjectCommand({ Bucket: 'pub', Key: 'sdk.txt' })),
      (error: Error) => error.name === 'SignatureDoesNotMatch',
    );
    await assert.rejects(
      client('nobody', 'whatever-secret').send(new GetObjectCommand({ Bucket: 'pub', Key: 'sdk.txt' })),
      (error: Error) => error.name === 'InvalidAccessKeyId',
    );
    await assert.rejects(
      client('admin', 'admin-secret-key', -20 * 60_000).send(new GetObjectCommand({ Bucket: 'pub', Key: 'sdk.txt' })),
      (error: Error) => error.name === 'RequestTimeTooSkewed',
    );
    for (const client of [admin, reader]) client.destroy();
  });

  test(
    'presigned URLs from the aws cli (Signature Version 2 by default, 4 when configured) read until they expire',
    { skip: awsCliSkipReason() },
    async () => {
      const dir = tempDir('mkv-awsconfig-');
      const v4 = join(dir, 'config');
      writeFileSync(v4, '[default]\ns3 =\n  signature_version = s3v4\n');
      try {
        for (const [version, config] of [
          ['2', undefined],
          ['4', v4],
        ] as const) {
          const presign = async (seconds: number) =>
            (await awsCli(['--endpoint-url', url, 's3', 'presign', 's3://pub/a', '--expires-in', String(seconds)], config)).trim();
          const good = await presign(300);
          assert.match(good, version === '4' ? /X-Amz-Signature=/ : /AWSAccessKeyId=admin&Signature=/);
          assert.equal((await http('GET', good)).text, 'public value', `V${version}`);
          assert.equal((await http('GET', good.replace('/pub/a', '/pub/b'))).status, 403, `V${version}: for that key only`);
          // Valid for a second: it reads until the server's clock passes its expiry, and is refused from then on.
          const short = await presign(1);
          let expired: Reply | undefined;
          await until(
            `the V${version} URL to expire`,
            async () => {
              expired = await http('GET', short);
              if (expired.status !== 200) return true;
              assert.equal(expired.text, 'public value', `V${version}`);
              return false;
            },
            30_000,
          );
          assert.equal(expired!.status, 403, `V${version}`);
          assert.match(expired!.text, /<Code>AccessDenied<\/Code><Message>Request has expired<\/Message>/);
        }
      } finally {
        removeDir(dir);
      }
    },
  );

  test('the tools reach secured volumes with the secret: verify checks every replica, rebuild --scan finds every key', async () => {
    const dir = tempDir('mkv-secure-tools-');
    try {
      const secretFile = join(dir, 'volume-secret');
      writeFileSync(secretFile, SECRET);
      const verify = await runMkv(['verify', '--db', master.db, '--volume-secret-file', secretFile]);
      assert.equal(verify.status, 0, verify.stdout + verify.stderr);
      const blind = await runMkv(['verify', '--db', master.db]);
      assert.equal(blind.status, 1, 'without the secret, every replica is out of reach');
      const scan = await runMkv([
        'rebuild',
        '--db',
        join(dir, 'scanned'),
        '--scan',
        '--volumes',
        set.volumes.join(','),
        '--volume-secret-file',
        secretFile,
      ]);
      assert.equal(scan.status, 0, scan.stdout + scan.stderr);
      const found = await runMkv(['history', '--db', join(dir, 'scanned'), '/private/b']);
      assert.match(found.stdout, /KeyDiscovered/);
    } finally {
      removeDir(dir);
    }
  });

  test('every refusal is counted in mkv_auth_failures_total, by reason', async () => {
    const text = await master.metrics.registry.metrics();
    for (const reason of ['unauthenticated', 'access_denied', 'signature', 'unknown_access_key', 'time_skewed']) {
      const count = Number(new RegExp(`^mkv_auth_failures_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
      assert.ok(count > 0, `${reason}: ${count}`);
    }
  });
});

describe("the volumes' logs (nginx)", { skip: nginxSkipReason() }, () => {
  let set: VolumeSet;
  let master: TestMaster;
  before(async () => {
    set = await startVolumes('nginx', 3, tempDir('mkv-volume-logs-'), SECRET);
    master = await startMaster(set.volumes, { volumeSecret: SECRET, linkTtlMs: 60_000 });
  });
  after(async () => {
    await master?.close();
    await set?.close();
    if (master) removeDir(master.db);
  });

  /** Where each replica of `key` keeps its blob: the volume's index in the set and the file. */
  const replicas = (key: string) =>
    keyToVolumes(key, set.volumes, master.config.replicas, master.config.subvolumes).map((volume) => {
      const at = set.volumes.indexOf(volumeHost(volume));
      return { at, file: join(set.dirs[at]!, volumePrefix(volume), keyToPath(key)) };
    });

  test('after what makes nginx log a request (a DELETE of a missing blob, a failed PUT, 404s), no link in its log does anything', async () => {
    // A DELETE of a blob that is already gone from its volumes: nginx logs it as an error.
    assert.equal((await http('PUT', `${master.url}/logs/gone`, 'soon gone')).status, 201);
    for (const { file } of replicas('/logs/gone')) rmSync(file);
    assert.equal((await http('DELETE', `${master.url}/logs/gone`)).status, 204);
    // A GET whose HEADs find no replica, and a redirect's link followed after its blob went.
    assert.equal((await http('PUT', `${master.url}/logs/vanished`, 'soon vanished')).status, 201);
    const link = (await http('GET', `${master.url}/logs/vanished`)).headers.location!;
    for (const { file } of replicas('/logs/vanished')) rmSync(file);
    assert.equal((await http('GET', `${master.url}/logs/vanished`)).status, 404);
    assert.equal((await http('GET', link)).status, 404);
    // A PUT that a volume fails: a file stands where the blob's directory must go.
    const blocked = replicas('/logs/blocked')[0]!;
    mkdirSync(dirname(dirname(blocked.file)), { recursive: true });
    writeFileSync(dirname(blocked.file), 'in the way');
    assert.equal((await http('PUT', `${master.url}/logs/blocked`, 'never stored')).status, 500);
    // A large PUT (nginx spools its body to a file), and the listing of a missing directory,
    // as rebuild --scan sends with the master's client.
    assert.equal((await http('PUT', `${master.url}/logs/large`, Buffer.alloc(3 * 1024 * 1024, 1))).status, 201);
    const client = new VolumeClient({ secret: SECRET });
    try {
      assert.deepEqual(await client.list(`${set.volumes[0]}/sv00`, '/zz/'), []);
    } finally {
      await client.close();
    }

    const logs = set.volumes.map((_, at) => set.log(at));
    assert.match(
      logs.join(''),
      /"DELETE \/sv[0-9A-F]{2}\/[^"]* HTTP\/1\.1"/,
      'nginx logged the DELETE of the missing blob, with its request line',
    );
    // What someone who reads those logs would try: every signature found there, in the URL
    // and in the master's headers, on the URI it was logged with, to write, delete or list.
    const found: string[] = [];
    for (const [at, log] of logs.entries()) {
      for (const [line, method, path, query] of log.matchAll(/request: "([A-Z]+) ([^?" ]+)\?([^" ]*) HTTP\/1\.[01]"/g)) {
        const args = new URLSearchParams(query);
        const md5 = args.get('md5');
        const expires = args.get('expires');
        if (!md5 || !expires) continue;
        found.push(line);
        const base = `http://${set.volumes[at]}`;
        const attempts: Array<[string, string]> = path!.endsWith('/')
          ? [['GET', path!]]
          : [
              ['PUT', path!],
              ['DELETE', path!],
              ['GET', `${dirname(path!)}/`],
            ];
        for (const [verb, target] of attempts) {
          const tries: Array<[how: string, url: string, headers: Record<string, string>]> = [
            ['in the URL', `${base}${target}?md5=${md5}&expires=${expires}`, {}],
            ['in headers', `${base}${target}`, { 'x-mkv-signature': md5, 'x-mkv-expires': expires }],
          ];
          for (const [how, url, headers] of tries) {
            const reply = await http(verb, url, verb === 'PUT' ? 'planted' : undefined, headers);
            assert.equal(reply.status, 403, `the link nginx logged for ${method} ${path}, ${how}, lets ${verb} ${target}: ${reply.status}`);
          }
        }
      }
    }
    assert.deepEqual(found, [], 'no signature at all in the logs');
    assert.doesNotMatch(logs.join(''), /md5=|x-mkv-signature/i, 'not even elsewhere in a line');
  });
});

function composeSkipReason(): string | false {
  const skip = nginxSkipReason();
  if (skip) return skip;
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return false;
  if (process.env.CI) throw new Error('CI must install docker-compose (see .ci/run)');
  return 'docker-compose is not installed (apt-get install docker-compose)';
}

/** Each service's healthcheck command in docker-compose.yml, as `docker-compose config` resolves it. */
function composeHealthchecks(environment: NodeJS.ProcessEnv): Map<string, string[]> {
  const result = spawnSync('docker-compose', ['-f', join(repoRoot, 'docker-compose.yml'), 'config'], {
    encoding: 'utf8',
    cwd: repoRoot,
    env: { ...process.env, ...environment },
  });
  assert.equal(result.status, 0, result.stderr);
  const checks = new Map<string, string[]>();
  let service = '';
  let command: string[] | undefined;
  for (const line of result.stdout.split('\n')) {
    const name = /^ {2}(\S+):$/.exec(line);
    const item = /^ {6}- (.*)$/.exec(line);
    if (name) service = name[1]!;
    if (command && item) command.push(item[1]!.replace(/^'(.*)'$/, '$1'));
    else command = undefined;
    if (line === '      test:') checks.set(service, (command = []));
  }
  return checks;
}

describe("docker-compose.yml's volumes with a secret", { skip: composeSkipReason() }, () => {
  test('pass their healthcheck, so the master (depends_on: service_healthy) starts; the check also writes the disk figures /.disk serves', async () => {
    const set = await startVolumes('nginx', 1, tempDir('mkv-compose-health-'), SECRET);
    const scratch = tempDir('mkv-compose-disk-');
    try {
      const checks = composeHealthchecks({ MKV_VOLUME_SECRET: SECRET });
      for (const service of ['volume1', 'volume2', 'volume3']) {
        const command = checks.get(service);
        assert.equal(command?.[0], 'CMD-SHELL', `${service} has a healthcheck run by a shell`);
        const line = command[1]!;
        assert.ok(line.includes('http://127.0.0.1/health'), `${service}'s healthcheck asks the volume itself: ${line}`);
        // In the container the volume listens on 127.0.0.1:80, the script is mounted at /mkv and
        // the disk at /data; here, the test's port, the repository's script and the volume's directory.
        const disk = join(scratch, `${service}.disk`);
        const here = line
          .replace('http://127.0.0.1/', `http://${set.volumes[0]}/`)
          .replace('/mkv/disk-report', join(repoRoot, 'nginx/disk-report'))
          .replace(' /data ', ` ${set.dirs[0]} `)
          .replace('/tmp/disk', disk);
        const check = spawnSync('sh', ['-c', here], { encoding: 'utf8', timeout: 10_000 });
        assert.equal(check.status, 0, `${service}: ${line}: ${check.stderr}`);
        assert.match(readFileSync(disk, 'utf8'), /^\s*\d+\s+\d+\s*$/, 'free and total bytes, as /.disk serves them');
      }
      // The volume itself serves its figures to the master (signed), not to anyone.
      const client = new VolumeClient({ secret: SECRET });
      try {
        const figures = await client.disk(set.volumes[0]!);
        assert.ok(figures && figures.free > 0 && figures.free <= figures.size, JSON.stringify(figures));
      } finally {
        await client.close();
      }
      assert.equal((await http('GET', `http://${set.volumes[0]}/.disk`)).status, 403);
    } finally {
      await set.close();
      removeDir(scratch);
    }
  });
});

describe('a master with --credentials, started as users start it', () => {
  test('refuses a credentials file it cannot use, saying which line', () => {
    const dir = tempDir('mkv-creds-');
    try {
      const file = join(dir, 'credentials');
      spawnSync('sh', ['-c', `printf 'good:long-enough-secret\\nbad-line-without-secret\\n' > ${file}`]);
      const result = spawnSync(
        process.execPath,
        [
          join(import.meta.dirname, '../../src/cli/main.js'),
          'server',
          '--db',
          join(dir, 'db'),
          '--volumes',
          'a:1',
          '--replicas',
          '1',
          '--credentials',
          file,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(result.status, 2);
      assert.match(result.stderr, /credentials line 2: expected ACCESS_KEY:SECRET_KEY/);
      assert.doesNotMatch(result.stderr, /long-enough-secret/, 'never a secret in a message');
    } finally {
      removeDir(dir);
    }
  });
});
