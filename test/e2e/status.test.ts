// The cluster's status: the admin port's page (loaded in headless Chromium, as an operator's
// browser shows it), its /status.json, and `mkv status` in a terminal; behind the admin right on
// a master with --credentials.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ClusterStatus } from '../../src/master/status.js';
import { http } from '../helpers/http.js';
import {
  adminUrlOf,
  freePort,
  removeDir,
  runMkv,
  spawnMaster,
  startVolumes,
  tempDir,
  type MkvProcess,
  type VolumeSet,
} from '../helpers/cluster.js';
import { until } from '../helpers/wait.js';

function chromiumSkipReason(): string | false {
  if (spawnSync('sh', ['-c', 'command -v chromium'], { stdio: 'ignore' }).status === 0) return false;
  if (process.env.CI) throw new Error('CI must install chromium (see .ci/run)');
  return 'chromium is not installed (apt-get install chromium)';
}

/** What headless Chromium makes of a page: its DOM after load, serialized, and a screenshot. */
function chromium(url: string, screenshot: string): Promise<string> {
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', `--user-data-dir=${tempDir('mkv-chromium-')}`];
  return new Promise((resolve, reject) => {
    const dump = spawn('chromium', [...args, '--dump-dom', url], { stdio: ['ignore', 'pipe', 'ignore'] });
    let dom = '';
    dump.stdout.on('data', (chunk: Buffer) => (dom += chunk.toString()));
    dump.on('error', reject);
    dump.on('close', () => {
      const shot = spawn('chromium', [...args, '--window-size=1100,1000', `--screenshot=${screenshot}`, url], { stdio: 'ignore' });
      shot.on('error', reject);
      shot.on('close', () => resolve(dom));
    });
  });
}

const MARKUP_KEY = '/<script>alert(1)</script>';

describe('the status of an open cluster', () => {
  let set: VolumeSet;
  let db: string;
  let master: MkvProcess;
  let admin: string;
  before(async () => {
    set = await startVolumes('embedded', 3);
    db = tempDir('mkv-status-');
    master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db, '--admin-port', '0', '--voltimeout', '300ms']);
    admin = adminUrlOf(master);
    for (const key of ['/a', '/b', '/c', '/gone', MARKUP_KEY]) {
      const put = await http('PUT', `${master.url}${encodeURI(key)}`, `value of ${key}`);
      assert.equal(put.status, 201, key);
    }
    assert.equal((await http('UNLINK', `${master.url}/gone`)).status, 204);
  });
  after(async () => {
    master?.child.kill('SIGKILL');
    await set?.close();
    if (db) removeDir(db);
  });

  test('/status.json counts the keys by state and the blobs on each volume, and names the last events', async () => {
    const status = JSON.parse((await http('GET', `${admin}/status.json`)).text) as ClusterStatus;
    assert.equal(status.keys.live, 4);
    assert.equal(status.keys.unlinked, 1);
    assert.equal(status.keys.pending + status.keys.deleting + status.keys.unbalanced, 0);
    // Three replicas of five keys: each volume holds every blob (the unlinked one's too).
    assert.deepEqual(
      status.volumes.map((volume) => [volume.volume, volume.state, volume.blobs]),
      set.volumes.map((volume) => [volume, 'ok', 5]),
    );
    assert.ok(
      status.volumes.every((volume) => volume.diskSize !== null && volume.diskFree! <= volume.diskSize),
      'the embedded volumes say their disk',
    );
    assert.equal(status.log.lastSeq, 11);
    assert.equal(status.log.lag, 0);
    assert.deepEqual(
      status.recent.slice(0, 3).map((event) => [event.seq, event.type, event.key]),
      [
        [11, 'KeyUnlinked', '/gone'],
        [10, 'WriteCommitted', MARKUP_KEY],
        [9, 'WriteStarted', MARKUP_KEY],
      ],
    );
    await until('a write rate to show', async () => {
      const now = JSON.parse((await http('GET', `${admin}/status.json`)).text) as ClusterStatus;
      return (now.rates.writes ?? 0) > 0;
    });
  });

  test(
    'the page in a browser: volumes, a down one marked with why, the key counts, and a key with markup shown as text',
    { skip: chromiumSkipReason() },
    async () => {
      await set.stop(2);
      try {
        const screenshot = join(tempDir('mkv-status-shot-'), 'status.png');
        const dom = await chromium(`${admin}/`, screenshot);
        assert.match(dom, /<title>mkv status<\/title>/);
        assert.match(dom, /2 of 3 volumes up · 4 live keys/);
        const down = new RegExp(`<tr class="down"><td>${set.volumes[2]!.replace(/\./g, '\\.')}</td><td>down: refused the connection</td>`);
        assert.match(dom, down);
        assert.match(dom, /<table id="keys">[\s\S]*?<td>4<\/td><td>1<\/td><td>0<\/td><td>0<\/td><td>0<\/td>/);
        assert.ok(dom.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'the key is text');
        assert.doesNotMatch(dom, /<script/i, 'no script element: nothing from the index runs');
        assert.ok(existsSync(screenshot), 'Chromium drew it');
        const page = await http('GET', `${admin}/`);
        assert.match(page.headers['content-security-policy'] as string, /default-src 'none'/);
      } finally {
        await set.start(2);
      }
    },
  );

  test('mkv status prints it for a terminal; a wrong --admin is one line', async () => {
    const shown = await runMkv(['status', '--admin', admin]);
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, /^ {2}LIVE +UNLINKED +PENDING +DELETING +UNBALANCED +LIVE BYTES\n {2}4 +1 +0 +0 +0 /m);
    for (const volume of set.volumes) assert.match(shown.stdout, new RegExp(`^  ${volume.replace(/\./g, '\\.')} +up `, 'm'));
    assert.match(shown.stdout, /KeyUnlinked +\/gone/);
    const port = await freePort();
    const nobody = await runMkv(['status', '--admin', `127.0.0.1:${port}`]);
    assert.equal(nobody.status, 2);
    assert.equal(
      nobody.stderr,
      `mkv: no master's admin port answers at http://127.0.0.1:${port} (ECONNREFUSED): give its --admin-port address with --admin\n`,
    );
  });
});

describe('the status of a master with --credentials', () => {
  let set: VolumeSet;
  let db: string;
  let master: MkvProcess;
  let admin: string;
  before(async () => {
    set = await startVolumes('embedded', 3);
    db = tempDir('mkv-status-');
    const credentials = join(db, '..', `credentials-${process.pid}`);
    writeFileSync(credentials, 'ops:ops-secret admin\nwriter:writer-secret read,write,list\npfx:pfx-secret all /pfx/\nanonymous read\n');
    master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db, '--admin-port', '0', '--credentials', credentials]);
    admin = adminUrlOf(master);
  });
  after(async () => {
    master?.child.kill('SIGKILL');
    await set?.close();
    if (db) removeDir(db);
  });

  test('needs the admin right on every key: 401 without a key, 403 with one that lacks it (or has it on a prefix), the page with it', async () => {
    const basic = (user: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}` });
    for (const path of ['/', '/status.json']) {
      const anonymous = await http('GET', `${admin}${path}`);
      assert.equal(anonymous.status, 401, path);
      assert.doesNotMatch(anonymous.text, /volume|seq/i, 'nothing of the cluster');
      assert.equal((await http('GET', `${admin}${path}`, undefined, basic('writer', 'writer-secret'))).status, 403);
      // Admin on some keys only: the page shows every key's events, so no.
      assert.equal((await http('GET', `${admin}${path}`, undefined, basic('pfx', 'pfx-secret'))).status, 403);
      assert.equal((await http('GET', `${admin}${path}`, undefined, basic('ops', 'wrong'))).status, 401);
      assert.equal((await http('GET', `${admin}${path}`, undefined, basic('ops', 'ops-secret'))).status, 200);
    }
    const refused = await runMkv(['status', '--admin', admin]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /refused \(401\).*give --access-key/);
    const shown = await runMkv(['status', '--admin', admin, '--access-key', 'ops'], { MKV_SECRET_KEY: 'ops-secret' });
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, /^volumes$/m);
  });
});
