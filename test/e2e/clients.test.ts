// The S3 tools teams already use, end to end against a real cluster: a real mkv server process
// over three volumes (stock nginx when installed), driven by the aws cli, rclone, restic and
// pyarrow, each as its documentation says to point it at an S3-compatible store. Signed clients
// use the master's port; clients that sign nothing (aws --no-sign-request, pyarrow anonymous)
// use its S3 port (--s3-port), where every request is an S3 one, or the master's port, where the
// header every AWS SDK sends says what they are.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { http } from '../helpers/http.js';
import { clientEnv as envOf, missingTool } from '../helpers/s3-clients.js';
import {
  freePort,
  hasNginx,
  removeDir,
  repoRoot,
  spawnMaster,
  startVolumes,
  tempDir,
  type MkvProcess,
  type VolumeSet,
} from '../helpers/cluster.js';

const run = promisify(execFile);
const md5 = (data: Buffer | string) => createHash('md5').update(data).digest('hex');
const MB = 1024 * 1024;

const missing = missingTool;

/** The environment of a client: its own credentials and nothing of the caller's AWS setup. */
function clientEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return envOf('client', 'client-secret', extra);
}

function tree(dir: string): Record<string, string> {
  const found: Record<string, string> = {};
  const walk = (at: string, prefix: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(at, entry.name), `${prefix}${entry.name}/`);
      else found[prefix + entry.name] = md5(readFileSync(join(at, entry.name)));
    }
  };
  walk(dir, '');
  return found;
}

describe(`real S3 clients against an mkv cluster (${hasNginx() ? 'nginx' : 'embedded'} volumes)`, () => {
  let set: VolumeSet;
  let master: MkvProcess;
  let db: string;
  let work: string;
  let endpoint: string;
  let s3Endpoint: string;
  before(async () => {
    set = await startVolumes(hasNginx() ? 'nginx' : 'embedded', 3);
    db = tempDir('mkv-clients-db-');
    work = tempDir('mkv-clients-');
    const s3Port = await freePort();
    master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db, '--s3-port', String(s3Port)]);
    endpoint = master.url;
    s3Endpoint = `http://127.0.0.1:${s3Port}`;
  });
  after(async () => {
    master?.child.kill('SIGTERM');
    await master?.exited;
    await set?.close();
    removeDir(db);
    removeDir(work);
  });

  test(
    "the README's client lines, word for word (its port changed for the test's)",
    {
      skip:
        missing('aws', ['--version'], 'apt-get install awscli') ||
        missing('rclone', ['version'], 'apt-get install rclone') ||
        missing('restic', ['version'], 'apt-get install restic'),
    },
    async () => {
      const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
      const block = /With `npm start` running[^\n]*\n\n```sh\n([\s\S]*?)```/.exec(readme)?.[1];
      assert.ok(block, 'the README has its block of client lines');
      const port = new URL(endpoint).port;
      const dir = join(work, 'readme');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'video.mp4'), randomBytes(MB));
      const script = `set -e\n${block.replaceAll('localhost:3000', `127.0.0.1:${port}`)}`;
      const { stdout } = await run('bash', ['-c', script], { cwd: dir, env: clientEnv({ HOME: dir }), timeout: 120_000 });
      assert.match(stdout, /\svideo\.mp4$/m, 'aws s3 ls, unsigned, lists what aws s3 cp wrote');
      assert.match(stdout, /^2026\/$/m, 'rclone lsf lists the bucket');
      assert.match(stdout, /created restic repository/);
    },
  );

  describe('aws s3', { skip: missing('aws', ['--version'], 'apt-get install awscli') }, () => {
    const aws = async (args: string[], options: { s3Port?: boolean } = {}) =>
      (
        await run('aws', ['--endpoint-url', options.s3Port ? s3Endpoint : endpoint, ...args], {
          env: clientEnv(),
          timeout: 120_000,
          maxBuffer: 64 * MB,
        })
      ).stdout;

    test('mb, cp small and multipart (ETag of parts), ls, s3api head-object, cp back', async () => {
      const small = join(work, 'small.txt');
      const big = join(work, 'big.bin');
      writeFileSync(small, 'hello from the aws cli\n');
      writeFileSync(big, randomBytes(20 * MB));
      await aws(['s3', 'mb', 's3://awsb']);
      await aws(['s3', 'cp', small, 's3://awsb/dir/small.txt']);
      assert.match(await aws(['s3', 'ls']), /\sawsb$/m, 'ListBuckets names the bucket (the first segment of a key)');
      await aws(['s3', 'cp', big, 's3://awsb/dir/big.bin']);
      const listing = await aws(['s3', 'ls', 's3://awsb/dir/']);
      assert.match(listing, /\s23 small\.txt$/m);
      assert.match(listing, new RegExp(`\\s${20 * MB} big\\.bin$`, 'm'));
      const head = JSON.parse(await aws(['s3api', 'head-object', '--bucket', 'awsb', '--key', 'dir/big.bin'])) as Record<string, unknown>;
      assert.equal(head.ContentLength, 20 * MB);
      assert.match(String(head.ETag), /^"[0-9a-f]{32}-3"$/, 'a multipart ETag, as S3 forms it (8 MB parts)');
      assert.ok(!Number.isNaN(Date.parse(String(head.LastModified))));
      await aws(['s3', 'cp', 's3://awsb/dir/big.bin', join(work, 'big.back')]);
      assert.equal(md5(readFileSync(join(work, 'big.back'))), md5(readFileSync(big)));
    });

    test('overwrite with cp, and sync twice: the second uploads nothing, a changed file goes again', async () => {
      writeFileSync(join(work, 'small2.txt'), 'a second, longer value for the same key\n');
      await aws(['s3', 'cp', join(work, 'small2.txt'), 's3://awsb/dir/small.txt']);
      assert.equal(await aws(['s3', 'cp', 's3://awsb/dir/small.txt', '-']), 'a second, longer value for the same key\n');

      const local = join(work, 'sync');
      mkdirSync(join(local, 'sub'), { recursive: true });
      for (const name of ['a.txt', 'b.txt', 'sub/c.txt']) writeFileSync(join(local, name), `${name} v1\n`);
      assert.equal((await aws(['s3', 'sync', local, 's3://awsb/synced/'])).match(/^upload:/gm)?.length, 3);
      assert.equal((await aws(['s3', 'sync', local, 's3://awsb/synced/'])).trim(), '', 'nothing changed, nothing uploaded');
      writeFileSync(join(local, 'sub/c.txt'), 'sub/c.txt, changed to v2\n');
      assert.match(await aws(['s3', 'sync', local, 's3://awsb/synced/']), /^upload: .*sub\/c\.txt/m);
      assert.equal(await aws(['s3', 'cp', 's3://awsb/synced/sub/c.txt', '-']), 'sub/c.txt, changed to v2\n');
    });

    test("--no-sign-request: bytes and listings, not redirects, on the S3 port and the master's", async () => {
      assert.equal(await aws(['--no-sign-request', 's3', 'cp', 's3://awsb/synced/a.txt', '-'], { s3Port: true }), 'a.txt v1\n');
      assert.match(await aws(['--no-sign-request', 's3', 'ls', 's3://awsb/synced/'], { s3Port: true }), /\sa\.txt$/m);
      const head = JSON.parse(
        await aws(['--no-sign-request', 's3api', 'head-object', '--bucket', 'awsb', '--key', 'synced/a.txt'], { s3Port: true }),
      ) as Record<string, unknown>;
      assert.equal(head.ContentLength, 'a.txt v1\n'.length);
      // On the master's own port, the header every AWS SDK sends tells an unsigned S3 client from
      // a plain one (curl -L), which keeps the original's redirect.
      assert.equal(await aws(['--no-sign-request', 's3', 'cp', 's3://awsb/synced/b.txt', '-']), 'b.txt v1\n');
      assert.equal((await http('GET', `${endpoint}/awsb/synced/a.txt`)).status, 302);
    });

    test('rm and rm --recursive; head-object of a removed key is a 404', async () => {
      await aws(['s3', 'rm', 's3://awsb/dir/small.txt']);
      await assert.rejects(aws(['s3api', 'head-object', '--bucket', 'awsb', '--key', 'dir/small.txt']), /404|Not Found/);
      await aws(['s3', 'rm', '--recursive', 's3://awsb/']);
      assert.equal((await aws(['s3', 'ls', '--recursive', 's3://awsb/'])).trim(), '');
    });
  });

  describe('rclone', { skip: missing('rclone', ['version'], 'apt-get install rclone') }, () => {
    // rclone's S3 backend with provider Other lists with ListObjects v1.
    const rclone = async (args: string[]) => {
      const config = join(work, 'rclone.conf');
      writeFileSync(
        config,
        `[mkv]\ntype = s3\nprovider = Other\naccess_key_id = client\nsecret_access_key = client-secret\nendpoint = ${endpoint}\nforce_path_style = true\n`,
      );
      return (
        await run('rclone', ['--config', config, '--retries', '1', '--low-level-retries', '1', ...args], {
          env: clientEnv(),
          timeout: 120_000,
          maxBuffer: 64 * MB,
        })
      ).stdout;
    };
    let local: string;
    before(() => {
      local = join(work, 'rclone-src');
      mkdirSync(join(local, 'nested/deeper'), { recursive: true });
      writeFileSync(join(local, 'one.txt'), 'one\n');
      writeFileSync(join(local, 'nested/two.bin'), randomBytes(3 * MB));
      writeFileSync(join(local, 'nested/deeper/three.txt'), 'three\n');
      writeFileSync(join(local, 'empty'), '');
    });

    test('copy, ls, cat, check', async () => {
      await rclone(['copy', local, 'mkv:rcb/tree']);
      const listing = await rclone(['ls', 'mkv:rcb/tree']);
      for (const [size, name] of [
        [4, 'one.txt'],
        [3 * MB, 'nested/two.bin'],
        [6, 'nested/deeper/three.txt'],
        [0, 'empty'],
      ] as const) {
        assert.match(listing, new RegExp(`^\\s*${size} ${name}$`, 'm'));
      }
      assert.equal(await rclone(['cat', 'mkv:rcb/tree/nested/deeper/three.txt']), 'three\n');
      await rclone(['check', local, 'mkv:rcb/tree']); // exits non-zero on any difference
    });

    test('sync after a change, copy back, delete, purge', async () => {
      writeFileSync(join(local, 'one.txt'), 'one, changed\n');
      writeFileSync(join(local, 'four.txt'), 'four\n');
      await rclone(['sync', local, 'mkv:rcb/tree']);
      assert.equal(await rclone(['cat', 'mkv:rcb/tree/one.txt']), 'one, changed\n');
      await rclone(['check', local, 'mkv:rcb/tree']);
      const back = join(work, 'rclone-back');
      await rclone(['copy', 'mkv:rcb/tree', back]);
      assert.deepEqual(tree(back), tree(local));
      await rclone(['delete', 'mkv:rcb/tree/nested']);
      assert.doesNotMatch(await rclone(['ls', 'mkv:rcb/tree']), /nested/);
      await rclone(['purge', 'mkv:rcb/tree']);
      assert.equal((await rclone(['ls', 'mkv:rcb'])).trim(), '');
    });
  });

  describe('restic', { skip: missing('restic', ['version'], 'apt-get install restic') }, () => {
    const restic = async (args: string[]) =>
      (
        await run('restic', ['--no-cache', '-r', `s3:${endpoint}/resticb`, ...args], {
          env: clientEnv({ RESTIC_PASSWORD: 'a restic password' }),
          timeout: 180_000,
          maxBuffer: 64 * MB,
        })
      ).stdout;

    test('init, backup twice, check --read-data, restore, forget --prune', async () => {
      const source = join(work, 'restic-src');
      mkdirSync(join(source, 'docs'), { recursive: true });
      writeFileSync(join(source, 'docs/readme.txt'), 'backed up by restic\n');
      writeFileSync(join(source, 'data.bin'), randomBytes(6 * MB));
      await restic(['init']);
      await restic(['backup', source]);
      writeFileSync(join(source, 'docs/later.txt'), 'added before the second backup\n');
      await restic(['backup', source]);
      assert.match(await restic(['check', '--read-data']), /no errors were found/);
      const target = join(work, 'restic-restore');
      await restic(['restore', 'latest', '--target', target]);
      assert.deepEqual(tree(join(target, source)), tree(source));
      await restic(['forget', '--keep-last', '1', '--prune']);
      assert.equal(JSON.parse(await restic(['snapshots', '--json'])).length, 1);
      assert.match(await restic(['check', '--read-data']), /no errors were found/);
    });
  });

  const pyarrowMissing = (): string | false => {
    if (spawnSync('python3', ['-c', 'import pyarrow.fs'], { stdio: 'ignore' }).status === 0) return false;
    return 'pyarrow is not installed (pip install pyarrow)';
  };

  describe('pyarrow S3FileSystem', { skip: pyarrowMissing() }, () => {
    const script = join(repoRoot, 'test/e2e/pyarrow_client.py');
    for (const mode of ['signed', 'anonymous'] as const) {
      test(`${mode}: write_table/read_table of a multi-MB parquet file, overwrite, get_file_info, recursive listing, delete_file, delete_dir_contents`, async () => {
        // Anonymous on the S3 port here; the original's own tools/s3test.py uses the master's.
        const target = mode === 'signed' ? endpoint : s3Endpoint;
        const { stdout } = await run('python3', [script, mode, target, 'pab'], { env: clientEnv(), timeout: 180_000 });
        const seen = JSON.parse(stdout) as Record<string, unknown>;
        assert.equal(seen.file_type, 'File');
        assert.ok((seen.size as number) > 4 * MB, `a multi-MB file (${String(seen.size)} bytes)`);
        assert.deepEqual(seen.listed, [`pab/${mode}/data/part-0.parquet`, `pab/${mode}/data/sub`, `pab/${mode}/data/sub/part-1.parquet`]);
        assert.deepEqual(seen.after_delete_file, [`pab/${mode}/data/part-0.parquet`, `pab/${mode}/data/sub`]);
        assert.deepEqual(seen.after_delete_dir_contents, []);
      });
    }
  });
});
