// The masters a benchmark compares, each in its own process: this project's (`mkv server`) and,
// when MKV_GO names its binary, the Go original built from its public source (see README.md here).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listening } from '../../test/helpers/host.js';
import { freePort } from '../../test/helpers/host.js';
import { repo } from './harness.js';

export interface RunningMaster {
  name: string;
  url: string;
  pid: number;
  /** Resident memory of the master and its workers, in bytes. */
  rss(): number;
  /**
   * Their proportional set size, in bytes: what they take from the machine. Summed VmRSS counts
   * the pages they share (node's own code, the LMDB map) once per process.
   */
  pss(): number;
  /** CPU seconds the master and its workers have used. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

export interface MasterSpec {
  volumes: string[];
  db: string;
  replicas?: number;
  subvolumes?: number;
  /** mkv only: HTTP worker processes (default: mkv's own default, one per core). */
  workers?: number;
  /** mkv only: extra flags. */
  flags?: string[];
}

/** The Go original's binary, from MKV_GO; undefined when the comparison is not wanted. */
export function goBinary(): string | undefined {
  return process.env.MKV_GO || undefined;
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A process and all its descendants (a master and its HTTP workers; nginx and its workers). */
export function processTree(pid: number): number[] {
  return [pid, ...childrenOf(pid).flatMap(processTree)];
}

/** The sum of one /proc field (in kB) over a process and all its descendants, in bytes. */
function treeSum(pid: number, file: string, field: RegExp): number {
  let total = 0;
  for (const each of processTree(pid)) {
    try {
      total += Number(field.exec(readFileSync(`/proc/${each}/${file}`, 'utf8'))![1]) * 1024;
    } catch {
      // gone
    }
  }
  return total;
}

/** VmRSS of a process and all its descendants. */
export function treeRss(pid: number): number {
  return treeSum(pid, 'status', /^VmRSS:\s+(\d+) kB/m);
}

/** Pss of a process and all its descendants. */
export function treePss(pid: number): number {
  return treeSum(pid, 'smaps_rollup', /^Pss:\s+(\d+) kB/m);
}

/** CPU seconds (user + system) used so far by a process and all its descendants. */
export function treeCpuSeconds(pid: number): number {
  let ticks = 0;
  for (const each of processTree(pid)) {
    try {
      // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
      const stat = readFileSync(`/proc/${each}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks / 100; // USER_HZ
}

async function run(name: string, command: string, args: string[], port: number): Promise<RunningMaster> {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  await listening(port, child, `the ${name} master`);
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    rss: () => treeRss(child.pid!),
    pss: () => treePss(child.pid!),
    cpuSeconds: () => treeCpuSeconds(child.pid!),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function startMkv(spec: MasterSpec): Promise<RunningMaster> {
  const port = await freePort();
  const args = [
    join(repo, 'dist/src/cli/main.js'),
    'server',
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--db',
    spec.db,
    '--volumes',
    spec.volumes.join(','),
    '--replicas',
    String(spec.replicas ?? 3),
    '--subvolumes',
    String(spec.subvolumes ?? 10),
    ...(spec.workers !== undefined ? ['--workers', String(spec.workers)] : []),
    ...(spec.flags ?? []),
    // MKV_FLAGS: more server flags for every run, e.g. "--sync none" to see what fsync costs.
    ...(process.env.MKV_FLAGS ?? '').split(' ').filter(Boolean),
  ];
  // MKV_NODE_FLAGS: node flags for the master, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeFlags = (process.env.MKV_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  return run('mkv', process.execPath, [...nodeFlags, ...args], port);
}

export async function startGo(binary: string, spec: MasterSpec): Promise<RunningMaster> {
  const port = await freePort();
  const args = [
    '-port',
    String(port),
    '-db',
    spec.db,
    '-volumes',
    spec.volumes.join(','),
    '-replicas',
    String(spec.replicas ?? 3),
    '-subvolumes',
    String(spec.subvolumes ?? 10),
    'server',
  ];
  return run('go', binary, args, port);
}
