// The README's "Running it for real" blocks, run as a newcomer runs them: stock nginx volumes
// from nginx/volume, `npx mkv server` in the foreground of another shell, then the Try-it curl
// lines against the open cluster, and the secured cluster's files, volumes, master and curl lines
// word for word. Only what must differ on a test machine is changed: the ports (four free ones
// for 3000–3003), the directories (/mnt/diskN, /var/lib/mkv, /etc/mkv under a temp dir) and
// where the sample files (video.mp4, v1.mp4, v2.mp4) are.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fourFreePorts, nginxSkipReason, removeDir, repoRoot, tempDir } from '../helpers/cluster.js';
import { until } from '../helpers/wait.js';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');

/** The ```sh blocks of the README's section `heading`, in order. */
function shellBlocks(heading: string): string[] {
  const start = readme.indexOf(`\n${heading}\n`);
  assert.ok(start !== -1, `the README has a section ${heading}`);
  const end = readme.indexOf('\n## ', start + heading.length + 2);
  const section = readme.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

/** The README's text with this machine's ports and directories. */
function localized(text: string, base: number, dir: string): string {
  return text
    .replace(/300\$i/g, `$((${base}+i))`)
    .replace(/\b300([0-3])\b/g, (_, n: string) => String(base + Number(n)))
    .replace(/\/mnt\/disk/g, `${dir}/disk`)
    .replace(/\/var\/lib\/mkv/g, `${dir}/db`)
    .replace(/\/etc\/mkv/g, `${dir}/etc`)
    .replace(/(@|> |-T |< )(video|v1|v2)\.mp4/g, `$1${dir}/$2.mp4`);
}

/** Shell commands, a line each, continuation lines joined; a heredoc stays with its command. */
function commands(block: string): string[] {
  const lines = block.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    const heredoc = /<<'?(\w+)'?/.exec(line);
    if (heredoc) while (i + 1 < lines.length && lines[i] !== heredoc[1]) line += `\n${lines[++i]!}`;
    if (line.trim() !== '') out.push(line);
  }
  return out;
}

const groups: ChildProcess[] = [];

/** Starts a shell (its own process group, which stopAll kills whole: nginx and all). */
function shell(script: string): { child: ChildProcess; output: () => string } {
  const child = spawn('bash', ['-c', script], { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  groups.push(child);
  return { child, output: () => output };
}

/** Runs one command to its end: its exit status and what it printed on stdout. */
function run(command: string): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout }));
  });
}

async function stopAll(): Promise<void> {
  for (const child of groups.splice(0)) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      continue;
    }
    await exited;
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    await fetch(url);
    return true;
  } catch {
    return false;
  }
}

describe("the README's Running it for real, word for word", { skip: nginxSkipReason() }, () => {
  const dir = tempDir('mkv-readme-');
  after(async () => {
    await stopAll();
    removeDir(dir);
  });

  test('the open cluster: three nginx volumes and npx mkv server, then the Try-it curl lines', async () => {
    const base = await fourFreePorts();
    const [open] = shellBlocks('## Running it for real');
    const lines = commands(localized(open!, base, dir));
    const server = lines.pop()!;
    assert.match(server, /^npx mkv server /, 'the block ends with the master, in the foreground');
    shell(lines.join('\n') + '\nwait');
    for (let i = 1; i <= 3; i++) await until(`the volume on ${base + i}`, () => answers(`http://127.0.0.1:${base + i}/health`), 20_000);
    const master = shell(server);
    await until('the master to listen', () => /listening on/.test(master.output()), 60_000);
    const tryIt = readme.match(/## Try it[\s\S]*?```sh\n[\s\S]*?```[\s\S]*?```sh\n([\s\S]*?)```/)![1]!;
    const [put, get] = commands(localized(tryIt, base, dir));
    assert.match(put!, /^curl -L -X PUT -d bigswag localhost:\d+\/wehave$/);
    assert.equal((await run(put!)).status, 0);
    const got = await run(get!);
    assert.equal(got.stdout, 'bigswag', 'the comment says what it prints');
    await stopAll();
  });

  test('the secured cluster: its files, volumes and master, then each curl line does what its comment says', async () => {
    const base = await fourFreePorts();
    const [, secured] = shellBlocks('## Running it for real');
    const lines = commands(localized(secured!, base, dir));
    const serverAt = lines.findIndex((line) => line.startsWith('npx mkv server'));
    const [setup, server, curls] = [lines.slice(0, serverAt), lines[serverAt]!, lines.slice(serverAt + 1)];
    shell(setup.join('\n') + '\nwait');
    for (let i = 1; i <= 3; i++) await until(`the volume on ${base + i}`, () => answers(`http://127.0.0.1:${base + i}/health`), 20_000);
    const master = shell(server);
    await until('the master to listen', () => /listening on/.test(master.output()), 60_000);
    const video = randomBytes(300_000);
    writeFileSync(join(dir, 'video.mp4'), video);
    writeFileSync(join(dir, 'v2.mp4'), randomBytes(70_000));
    assert.equal(curls.length, 6);
    // Each line's comment says what it does; the test adds what it checks by (-w, -o).
    const [putBasic, getViewer, getSigned, putSigned, anonymous, onVolume] = curls.map((line) => line.replace(/\s+#[^'"]*$/, '')) as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    assert.equal((await run(`${putBasic} -w '%{http_code}'`)).stdout.slice(-3), '201');
    assert.equal((await run(getViewer)).status, 0);
    assert.deepEqual(readFileSync(join(dir, 'v1.mp4')), video, 'the viewer followed its signed link to the bytes');
    writeFileSync(join(dir, 'v1.mp4'), '');
    assert.equal((await run(getSigned)).status, 0);
    // SigV4 is answered as S3 answers: the bytes themselves, not a redirect.
    assert.deepEqual(readFileSync(join(dir, 'v1.mp4')), video);
    assert.equal((await run(`${putSigned} -w '%{http_code}'`)).stdout.slice(-3), '200');
    assert.equal((await run(`${anonymous} -o /dev/null -w '%{http_code}'`)).stdout, '401');
    assert.equal((await run(`${onVolume} -o /dev/null -w '%{http_code}'`)).stdout, '403');
    await stopAll();
  });
});
