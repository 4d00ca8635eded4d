// What the benchmarks share: volume servers in their own processes (stock nginx, or the embedded
// one), and blobs laid out on disk exactly where placement puts them, as the original writes them.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyToPath, keyToVolumes } from '../../src/placement.js';
import { freePort, listening } from '../../test/helpers/host.js';

export const repo = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * The ext4 file system a directory lives on, when it has no journal. There, every new inode
 * (each PUT's spooled body) is found by scanning past the inodes freed in the last 30 s and
 * reading each one's deletion time (ext4's recently_deleted(), checked only without a journal).
 * A workload that deletes as fast as it writes then spends most of the volumes' CPU in that scan,
 * and whichever master runs second pays for the first one's deletes. Disks in production have a
 * journal; measured here, that scan was 42% of the box during the thrasher.
 */
export function ext4WithoutJournal(dir: string): string | undefined {
  let best: { point: string; source: string; type: string } | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    const point = fields[4];
    const dash = fields.indexOf('-');
    if (point === undefined || dash === -1) continue;
    const inside = dir === point || dir.startsWith(point.endsWith('/') ? point : `${point}/`);
    if (inside && (!best || point.length >= best.point.length)) best = { point, type: fields[dash + 1]!, source: fields[dash + 2]! };
  }
  if (best?.type !== 'ext4') return undefined;
  const device = basename(best.source);
  const journals = existsSync('/proc/fs/jbd2') ? readdirSync('/proc/fs/jbd2') : [];
  return journals.some((name) => name.startsWith(`${device}-`)) ? undefined : best.source;
}

let warnedAboutJournal = false;

function warnWithoutJournal(dir: string): void {
  if (warnedAboutJournal) return;
  const device = ext4WithoutJournal(dir);
  if (device === undefined) return;
  warnedAboutJournal = true;
  console.error(
    `warning: ${dir} is on ext4 without a journal (${device}): the volumes' file creation slows with every recent delete, ` +
      "and the master that runs second pays for the first one's. Set TMPDIR to a journaled file system (tools/bench/README.md).",
  );
}

export interface BenchVolumes {
  root: string;
  /** Where a master's db goes: under root, or under MKV_BENCH_DB_DIR (a disk of its own, as in production). */
  db: string;
  volumes: string[];
  dirs: string[];
  /** The volume servers' process ids (once started). */
  pids(): number[];
  /** Starts the servers (after the files are laid out). */
  start(): Promise<void>;
  /** Stops the servers and removes every file. */
  close(): Promise<void>;
}

export async function benchVolumes(count: number, embedded: boolean): Promise<BenchVolumes> {
  const root = mkdtempSync(join(tmpdir(), 'mkv-bench-'));
  warnWithoutJournal(root);
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  const dirs = ports.map((_, i) => join(root, `volume${i + 1}`));
  const children: ChildProcess[] = [];
  const dbRoot = process.env.MKV_BENCH_DB_DIR ? mkdtempSync(join(process.env.MKV_BENCH_DB_DIR, 'mkv-bench-db-')) : root;
  if (dbRoot !== root) warnWithoutJournal(dbRoot);
  return {
    root,
    db: join(dbRoot, 'db'),
    volumes: ports.map((port) => `127.0.0.1:${port}`),
    dirs,
    pids: () => children.map((child) => child.pid!),
    async start() {
      for (const [i, port] of ports.entries()) {
        mkdirSync(dirs[i]!, { recursive: true });
        const child = embedded
          ? spawn(
              process.execPath,
              [join(repo, 'dist/src/cli/main.js'), 'volume', '--port', String(port), '--host', '127.0.0.1', '--dir', dirs[i]!],
              { stdio: 'ignore' },
            )
          : spawn(join(repo, 'nginx/volume'), [dirs[i]!], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
        children.push(child);
        await listening(port, child, `volume ${i}`);
      }
    },
    async close() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve(undefined);
              child.once('exit', resolve);
              child.kill('SIGTERM');
            }),
        ),
      );
      rmSync(root, { recursive: true, force: true });
      if (dbRoot !== root) rmSync(dbRoot, { recursive: true, force: true });
    },
  };
}

/** Writes `value` for every key to each of its replicas' files, where placement says. */
export function layOut(set: BenchVolumes, keys: Iterable<string>, value: Buffer | string, replicas: number, subvolumes: number): void {
  for (const key of keys) {
    for (const volume of keyToVolumes(key, set.volumes, replicas, subvolumes)) {
      const [host, subvolume] = volume.split('/');
      const file = join(set.dirs[set.volumes.indexOf(host!)]!, subvolume ?? '', keyToPath(key));
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, value);
    }
  }
}
