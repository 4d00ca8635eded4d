// The CLI as a user runs it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { getFollowing, http } from '../helpers/http.js';
import { freePort, mkvBin, removeDir, repoRoot, runMkv, tempDir } from '../helpers/cluster.js';

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

test('mkv --help lists the commands; each command has --help', async () => {
  const help = await runMkv(['--help']);
  assert.equal(help.status, 0);
  for (const command of ['server', 'volume', 'up']) {
    assert.match(help.stdout, new RegExp(`\\b${command}\\b`));
    const commandHelp = await runMkv([command, '--help']);
    assert.equal(commandHelp.status, 0);
    assert.match(commandHelp.stdout, /usage: mkv/);
  }
  assert.match((await runMkv(['server', '--help'])).stdout, /--voltimeout/);
});

test('usage errors exit 2 with a message', async () => {
  const noVolumes = await runMkv(['server', '--db', '/tmp/x']);
  assert.equal(noVolumes.status, 2);
  assert.match(noVolumes.stderr, /--volumes is required/);
  const unknown = await runMkv(['frobnicate']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command/);
});

test('package.json runs `mkv up` on npm start and names the bin mkv', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
  assert.equal(pkg.bin.mkv, 'dist/src/cli/main.js');
  assert.match(pkg.scripts.start!, /main\.js up/);
});

test('mkv up: a master and three volumes that curl -L can use; Ctrl-C stops all of it', async () => {
  const data = tempDir('mkv-up-');
  dirs.push(data);
  const port = await freePort();
  const child = spawn(process.execPath, [mkvBin, 'up', '--port', String(port), '--data', data], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', () => output.includes('Ctrl-C') && resolve());
      void exited.then(() => reject(new Error(`mkv up exited:\n${output}`)));
    });
    const url = `http://127.0.0.1:${port}`;
    assert.equal((await http('PUT', `${url}/wehave`, 'bigswag')).status, 201);
    assert.equal((await getFollowing(`${url}/wehave`)).text, 'bigswag');
    const volumes = (await http('GET', `${url}/wehave`)).headers['key-volumes']!.split(',');
    assert.equal(volumes.length, 3);
    assert.ok(volumes.every((volume) => /^127\.0\.0\.1:\d+\/sv[0-9A-F]{2}$/.test(volume)));
  } finally {
    child.kill('SIGINT');
  }
  assert.equal(await exited, 0);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/`), 'the master is gone');
  await assert.rejects(fetch(`http://127.0.0.1:${port + 1}/`), 'the volumes are gone');
});
