// The original's command lines, as its README and its users' scripts write them: flags before
// the command, one dash, and every one of its flags given to every command.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { getFollowing, http } from '../helpers/http.js';
import { freePort, mkvBin, removeDir, runMkv, startVolumes, tempDir, type VolumeSet } from '../helpers/cluster.js';

/** Runs mkv with exactly these arguments until it says it listens; returns its URL and a stop. */
async function serve(args: string[]): Promise<{ url: string; stop(): Promise<number | null> }> {
  const child = spawn(process.execPath, [mkvBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', () => {
      const match = /listening on http:\/\/[^:]+:(\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    void exited.then((code) => reject(new Error(`mkv ${args.join(' ')} exited (${code}):\n${output}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

describe("the original's command lines", () => {
  let set: VolumeSet;
  const dbs: string[] = [];
  const db = () => {
    const dir = tempDir('mkv-original-cli-');
    dbs.push(dir);
    return dir;
  };
  let first: string;
  before(async () => {
    set = await startVolumes('embedded', 3);
    first = db();
  });
  after(async () => {
    await set?.close();
    dbs.forEach(removeDir);
  });

  test('mkv -volumes ... -db DIR server (flags before the command, one dash), and flags on both sides', async () => {
    const port = await freePort();
    const master = await serve([
      '-port',
      String(port),
      '-volumes',
      set.volumes.join(','),
      '-db',
      first,
      '-md5sum=true',
      '-voltimeout',
      '1s',
      'server',
      '--host',
      '127.0.0.1',
    ]);
    try {
      assert.equal((await http('PUT', `${master.url}/wehave`, 'bigswag')).status, 201);
      assert.equal((await getFollowing(`${master.url}/wehave`)).text, 'bigswag');
      assert.equal((await http('PUT', `${master.url}/wehave`, 'again')).status, 403, 'write-once, as the original');
    } finally {
      assert.equal(await master.stop(), 0);
    }
  });

  test('mkv -volumes ... -db NEWDIR rebuild: the index rebuilt from the volumes, as the original did', async () => {
    const rebuilt = db();
    const result = await runMkv(['-volumes', set.volumes.join(','), '-db', rebuilt, 'rebuild']);
    assert.equal(result.status, 0, result.stderr);
    const history = await runMkv(['history', '-db', rebuilt, '/wehave']);
    assert.equal(history.status, 0, history.stderr);
    assert.match(history.stdout, /KeyDiscovered/);
    const master = await serve(['-volumes', set.volumes.join(','), '-db', rebuilt, '-port', '0', '-host', '127.0.0.1', 'server']);
    try {
      assert.equal((await getFollowing(`${master.url}/wehave`)).text, 'bigswag');
    } finally {
      await master.stop();
    }
  });

  test("every one of the original's flags is accepted by every command, ignored where it means nothing", async () => {
    const all = [
      '-port',
      '3999',
      '-fallback',
      '',
      '-replicas',
      '3',
      '-subvolumes',
      '10',
      '-protect=false',
      '-v=false',
      '-md5sum=true',
      '-voltimeout',
      '1s',
    ];
    const rebalance = await runMkv(['-volumes', set.volumes.join(','), '-db', first, ...all, 'rebalance']);
    assert.equal(rebalance.status, 0, rebalance.stderr);
    for (const command of [['verify'], ['gc'], ['uploads'], ['history', '/wehave'], ['rebuild', '--from-log'], ['log', 'verify']]) {
      const result = await runMkv([...command, '-db', first, '-volumes', set.volumes.join(','), ...all]);
      assert.equal(result.status, 0, `${command.join(' ')}: ${result.stderr}`);
    }
    assert.match((await runMkv(['rebuild', '--help'])).stdout, /--port[\s\S]*ignored|ignored[\s\S]*--port/);
  });

  test('rebuild with neither --volumes nor --from-log says what it needs', async () => {
    const result = await runMkv(['rebuild', '-db', db()]);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--volumes.*--from-log/);
    const flagsOnly = await runMkv(['-db', db()]);
    assert.equal(flagsOnly.status, 2);
    assert.match(flagsOnly.stderr, /no command/);
  });
});
