// S3 versioning on --retain, through real clients: aws s3api (get-bucket-versioning,
// list-object-versions, get-object --version-id, delete-object with and without --version-id)
// and rclone --s3-versions.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { DeleteObjectCommand, GetObjectCommand, ListObjectVersionsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { clientEnv, missingTool } from '../helpers/s3-clients.js';
import { freePort, removeDir, spawnMaster, startVolumes, tempDir, type MkvProcess, type VolumeSet } from '../helpers/cluster.js';

const run = promisify(execFile);

const env = clientEnv('client', 'client-secret');

describe(
  'S3 versioning on --retain, with aws s3api and rclone',
  { skip: missingTool('aws', ['--version'], 'apt-get install awscli') },
  () => {
    let set: VolumeSet;
    let master: MkvProcess;
    let db: string;
    let work: string;
    let endpoint: string;
    before(async () => {
      set = await startVolumes('embedded', 2);
      db = tempDir('mkv-s3-versions-db-');
      work = tempDir('mkv-s3-versions-');
      const s3Port = await freePort();
      master = await spawnMaster([
        '--volumes',
        set.volumes.join(','),
        '--replicas',
        '2',
        '--db',
        db,
        '--s3-port',
        String(s3Port),
        '--retain',
        '1d',
      ]);
      endpoint = `http://127.0.0.1:${s3Port}`;
    });
    after(async () => {
      master?.child.kill('SIGTERM');
      await master?.exited;
      await set?.close();
      removeDir(db);
      removeDir(work);
    });

    async function s3api(...args: string[]): Promise<Record<string, unknown>> {
      const { stdout } = await run('aws', ['--endpoint-url', endpoint, 's3api', ...args], { env, cwd: work });
      return stdout.trim() === '' ? {} : (JSON.parse(stdout) as Record<string, unknown>);
    }

    async function refused(...args: string[]): Promise<string> {
      const result = await run('aws', ['--endpoint-url', endpoint, 's3api', ...args], { env, cwd: work }).then(
        () => assert.fail(`aws s3api ${args.join(' ')} succeeded`),
        (error: { stderr: string }) => error.stderr,
      );
      return result;
    }

    test('versions written, listed, read by id; a delete marker, and undone by its id', async () => {
      await s3api('create-bucket', '--bucket', 'history');
      assert.deepEqual(await s3api('get-bucket-versioning', '--bucket', 'history'), { Status: 'Enabled' });
      await s3api('put-bucket-versioning', '--bucket', 'history', '--versioning-configuration', 'Status=Enabled');
      assert.match(
        await refused('put-bucket-versioning', '--bucket', 'history', '--versioning-configuration', 'Status=Suspended'),
        /NotImplemented/,
      );
      const ids: string[] = [];
      for (const text of ['one', 'two']) {
        writeFileSync(join(work, text), text);
        ids.push((await s3api('put-object', '--bucket', 'history', '--key', 'k', '--body', text)).VersionId as string);
      }
      assert.ok(ids.every((id) => /^\d+$/.test(id)) && ids[0] !== ids[1], ids.join(' '));
      const marker = await s3api('delete-object', '--bucket', 'history', '--key', 'k');
      assert.equal(marker.DeleteMarker, true);
      const listed = await s3api('list-object-versions', '--bucket', 'history');
      const versions = listed.Versions as Array<{ VersionId: string; IsLatest: boolean; Size: number }>;
      const markers = listed.DeleteMarkers as Array<{ VersionId: string; IsLatest: boolean }>;
      assert.deepEqual(
        versions.map((version) => [version.VersionId, version.IsLatest, version.Size]),
        [
          [ids[1], false, 3],
          [ids[0], false, 3],
        ],
      );
      assert.deepEqual(
        markers.map((entry) => [entry.VersionId, entry.IsLatest]),
        [[marker.VersionId, true]],
      );
      // Paged one at a time, the same three.
      const paged = await s3api('list-object-versions', '--bucket', 'history', '--max-items', '5', '--page-size', '1');
      assert.equal((paged.Versions as unknown[]).length + (paged.DeleteMarkers as unknown[]).length, 3);

      await s3api('get-object', '--bucket', 'history', '--key', 'k', '--version-id', ids[0]!, 'got');
      assert.equal(readFileSync(join(work, 'got'), 'utf8'), 'one');
      assert.match(await refused('get-object', '--bucket', 'history', '--key', 'k', 'got'), /NoSuchKey/);
      assert.match(await refused('get-object', '--bucket', 'history', '--key', 'k', '--version-id', '999999', 'got'), /NoSuchVersion/);

      // Removing the latest delete marker brings the version before it back.
      await s3api('delete-object', '--bucket', 'history', '--key', 'k', '--version-id', marker.VersionId as string);
      const back = await s3api('get-object', '--bucket', 'history', '--key', 'k', 'got');
      assert.equal(back.VersionId, ids[1]);
      assert.equal(readFileSync(join(work, 'got'), 'utf8'), 'two');
      // An older version copied back (the usual restore), onto another key and onto its own.
      const copied = await s3api(
        'copy-object',
        '--bucket',
        'history',
        '--key',
        'restored',
        '--copy-source',
        `history/k?versionId=${ids[0]}`,
      );
      assert.equal(copied.CopySourceVersionId, ids[0]);
      assert.match(String(copied.VersionId), /^\d+$/, 'the copy is a version of its own');
      await s3api('get-object', '--bucket', 'history', '--key', 'restored', 'got');
      assert.equal(readFileSync(join(work, 'got'), 'utf8'), 'one');
      // An older version goes by its id.
      await s3api('delete-object', '--bucket', 'history', '--key', 'k', '--version-id', ids[0]!);
      assert.match(await refused('get-object', '--bucket', 'history', '--key', 'k', '--version-id', ids[0]!, 'got'), /NoSuchVersion/);

      // The rest through the JavaScript SDK, in this process: what the aws cli does above, faster.
      const sdk = new S3Client({
        endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'client', secretAccessKey: 'client-secret' },
        forcePathStyle: true,
      });
      const Bucket = 'history';
      const Key = 'k';
      const put = async (text: string) => {
        ids.push((await sdk.send(new PutObjectCommand({ Bucket, Key, Body: text }))).VersionId!);
      };
      const remove = async (versionId?: string) =>
        (await sdk.send(new DeleteObjectCommand({ Bucket, Key, ...(versionId ? { VersionId: versionId } : {}) }))).VersionId!;
      const listing = async () => {
        const listed = await sdk.send(new ListObjectVersionsCommand({ Bucket, Prefix: Key }));
        const entries = (list: Array<{ VersionId?: string; IsLatest?: boolean }> | undefined) =>
          (list ?? []).map((entry) => [entry.VersionId, entry.IsLatest]);
        return { versions: entries(listed.Versions), markers: entries(listed.DeleteMarkers) };
      };
      const current = async () => {
        try {
          const got = await sdk.send(new GetObjectCommand({ Bucket, Key }));
          return [got.VersionId, await got.Body!.transformToString()];
        } catch (error) {
          return [(error as Error).name];
        }
      };
      // A delete marker between two values, then removed by its id: nothing the key serves changes.
      await put('three');
      const between = await remove();
      await put('four');
      assert.deepEqual(await listing(), {
        versions: [
          [ids[3], true],
          [ids[2], false],
          [ids[1], false],
        ],
        markers: [[between, false]],
      });
      await remove(between);
      assert.deepEqual((await listing()).markers, []);
      assert.deepEqual(await current(), [ids[3], 'four']);

      // The value the key serves removed by its id, a delete marker before it: the key is deleted.
      const latest = await remove();
      await put('five');
      await remove(ids[4]);
      assert.deepEqual(await current(), ['NoSuchKey']);
      assert.deepEqual(await listing(), {
        versions: [
          [ids[3], false],
          [ids[2], false],
          [ids[1], false],
        ],
        markers: [[latest, true]],
      });
      // The marker removed: the value before it is back. Then each value the key serves, by its
      // id, gives way to the one before it, and the last takes the key with it.
      await remove(latest);
      assert.deepEqual(await current(), [ids[3], 'four']);
      await remove(ids[3]);
      assert.deepEqual(await current(), [ids[2], 'three']);
      await remove(ids[2]);
      assert.deepEqual(await current(), [ids[1], 'two']);
      await remove(ids[1]);
      assert.deepEqual(await current(), ['NoSuchKey']);
      assert.deepEqual(await listing(), { versions: [], markers: [] });
    });

    test(
      'rclone --s3-versions lists the old versions beside the current one',
      { skip: missingTool('rclone', ['version'], 'apt-get install rclone') },
      async () => {
        const config = join(work, 'rclone.conf');
        writeFileSync(
          config,
          `[mkv]\ntype = s3\nprovider = Other\nendpoint = ${endpoint}\naccess_key_id = client\nsecret_access_key = client-secret\n`,
        );
        const rclone = (...args: string[]) => run('rclone', ['--config', config, ...args], { env, cwd: work });
        await rclone('mkdir', 'mkv:models');
        for (const text of ['weights v0.0', 'weights v0.1', 'weights v0.2', 'weights v1', 'weights v2 longer']) {
          writeFileSync(join(work, 'weights'), text);
          await rclone('copyto', join(work, 'weights'), 'mkv:models/weights.bin');
        }
        const { stdout } = await rclone('--s3-versions', 'ls', 'mkv:models');
        const lines = stdout
          .trim()
          .split('\n')
          .map((line) => line.trim())
          .sort();
        assert.equal(lines.length, 5, stdout);
        assert.match(
          lines.find((line) => line.endsWith(' weights.bin'))!,
          /^17 weights\.bin$/,
        );
        const old = lines.find((line) => line.startsWith('10 ') && !line.endsWith(' weights.bin'))!;
        assert.match(old, /^10 weights-v\d{4}-\d\d-\d\d-\d{6}-\d{3}\.bin$/);
        await rclone('--s3-versions', 'copyto', `mkv:models/${old.split(' ')[1]}`, join(work, 'old'));
        assert.equal(readFileSync(join(work, 'old'), 'utf8'), 'weights v1');
        // rclone removes the old versions several at once: each is removed, none refused.
        await rclone('backend', 'cleanup-hidden', 'mkv:models');
        const left = await rclone('--s3-versions', 'ls', 'mkv:models');
        assert.equal(left.stdout.trim(), '17 weights.bin');
      },
    );
  },
);
