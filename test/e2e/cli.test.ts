// The CLI as a user runs it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { getFollowing, http } from '../helpers/http.js';
import { fourFreePorts, freePort, mkvBin, removeDir, repoRoot, runMkv, tempDir } from '../helpers/cluster.js';

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

test('mkv --version says the version it was built as', async () => {
  const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const answer = await runMkv(['--version']);
  assert.equal(answer.status, 0);
  assert.match(answer.stdout, new RegExp(`^mkv ${version.replace(/\./g, '\\.')} `));
});

test('a --db that is no mkv db: every command that reads or changes one refuses in one line and creates nothing', async () => {
  const db = join(tempDir('mkv-cli-'), 'typo');
  for (const args of [
    ['history', '--db', db, '/k'],
    ['log', 'dump', '--db', db],
    ['log', 'verify', '--db', db],
    ['log', 'compact', '--db', db, '--before', '2026-01-01T00:00:00Z'],
    ['uploads', '--db', db],
    ['gc', '--db', db, '--dry-run', '--volumes', '127.0.0.1:1'],
    ['restore', '--db', db, '--unlinked-since', '2026-01-01T00:00:00Z', '--dry-run'],
    ['rebuild', '--db', db, '--from-log'],
    ['verify', '--db', db, '--volumes', '127.0.0.1:1'],
    ['rebalance', '--db', db, '--volumes', '127.0.0.1:1', '--replicas', '1'],
  ]) {
    const answer = await runMkv(args);
    assert.equal(answer.status, 2, args.join(' '));
    assert.match(
      answer.stderr,
      /^mkv: --db .* is not an mkv db \(it has no log\/ or index\/\); give the directory mkv server --db was given/,
    );
    assert.equal(answer.stderr.split('\n').length, 2, `one line: ${answer.stderr}`);
    assert.equal(existsSync(db), false, `${args.join(' ')} created nothing`);
  }
});

test('a volume address that is not host:port stops the master at once, with one line and nothing created', async () => {
  const db = join(tempDir('mkv-cli-'), 'db');
  const answer = await runMkv(['server', '--db', db, '--volumes', 'http://127.0.0.1:3001,127.0.0.1:3002,127.0.0.1:3003']);
  assert.equal(answer.status, 2);
  assert.equal(answer.stderr, 'mkv: --volumes: "http://127.0.0.1:3001": give host:port, without http://\n');
  assert.equal(existsSync(db), false);
});

test('a port in use or a --db that cannot be made: one line naming it, no stack trace, exit 1', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as { port: number }).port;
  try {
    const volumes = '127.0.0.1:1,127.0.0.1:2,127.0.0.1:3';
    const db = join(tempDir('mkv-cli-'), 'db');
    dirs.push(db);
    const inUse = await runMkv(['server', '--host', '127.0.0.1', '--port', String(port), '--db', db, '--volumes', volumes]);
    assert.equal(inUse.status, 1);
    const lines = inUse.stderr.split('\n').filter((line) => line.startsWith('mkv: '));
    assert.deepEqual(lines, [
      `mkv: cannot listen on 127.0.0.1:${port}: already in use (another mkv, or another program, listens there): choose another port`,
    ]);
    assert.doesNotMatch(inUse.stderr, /\n\s+at /, 'no stack trace');
    const underFile = await runMkv(['server', '--db', '/dev/null/db', '--volumes', volumes]);
    assert.equal(underFile.status, 1);
    assert.match(underFile.stderr, /^mkv: cannot mkdir \/dev\/null\/db: a part of the path is a file, not a directory\n$/m);
    assert.doesNotMatch(underFile.stderr, /\n\s+at /, 'no stack trace');
    const isFile = await runMkv(['server', '--db', '/dev/null', '--volumes', volumes]);
    assert.equal(isFile.status, 1);
    assert.match(isFile.stderr, /^mkv: cannot mkdir \/dev\/null: a file is in the way \(a directory was wanted\)\n$/m);
    assert.doesNotMatch(isFile.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    taken.close();
  }
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
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
    scripts: Record<string, string>;
  };
  assert.equal(pkg.bin.mkv, 'dist/src/cli/main.js');
  assert.match(pkg.scripts.start!, /main\.js up/);
});

test('mkv up: a master and three volumes that curl -L can use, with the original flags that mean something to it; Ctrl-C stops all of it', async () => {
  const data = tempDir('mkv-up-');
  dirs.push(data);
  // mkv up takes PORT and the three after it; another process may hold one of them, so try
  // a few bases (each checked free first) before calling it a failure.
  let port = 0;
  let child: ReturnType<typeof spawn> | undefined;
  let output = '';
  let exited: Promise<number | null> = Promise.resolve(null);
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await fourFreePorts();
    const admin = await freePort();
    const candidate = spawn(
      process.execPath,
      [mkvBin, 'up', '--port', String(port), '--admin-port', String(admin), '--data', data, '-replicas', '2', '-protect'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    output = '';
    candidate.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    candidate.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const candidateExited = new Promise<number | null>((resolve) => candidate.once('exit', (code) => resolve(code)));
    const started = await new Promise<boolean>((resolve) => {
      candidate.stdout.on('data', () => output.includes('Ctrl-C') && resolve(true));
      void candidateExited.then(() => resolve(false));
    });
    if (started) {
      child = candidate;
      exited = candidateExited;
    } else {
      assert.match(output, /EADDRINUSE/, `mkv up exited:\n${output}`);
    }
  }
  assert.ok(child, `mkv up never found its ports free:\n${output}`);
  try {
    const url = `http://127.0.0.1:${port}`;
    assert.equal((await http('PUT', `${url}/wehave`, 'bigswag')).status, 201);
    assert.equal((await getFollowing(`${url}/wehave`)).text, 'bigswag');
    const volumes = (await http('GET', `${url}/wehave`)).headers['key-volumes']!.split(',');
    assert.equal(volumes.length, 2, '-replicas 2');
    assert.ok(volumes.every((volume) => /^127\.0\.0\.1:\d+\/sv[0-9A-F]{2}$/.test(volume)));
    assert.equal((await http('DELETE', `${url}/wehave`)).status, 403, '-protect: a DELETE needs an UNLINK first');
  } finally {
    child.kill('SIGINT');
  }
  assert.equal(await exited, 0);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/`), 'the master is gone');
  await assert.rejects(fetch(`http://127.0.0.1:${port + 1}/`), 'the volumes are gone');
});
