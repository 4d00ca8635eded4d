// Real parts for tests: embedded and nginx volume servers, an in-process master on port 0, and
// the `mkv` CLI as a child process. Temp dirs and free ports come from host.ts (exported here too).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:http';
import { answerClientErrors, serveMaster } from '../../src/master/handler.js';
import { defaultConfig, type MasterConfig } from '../../src/config.js';
import { silentLogger, type Logger } from '../../src/logger.js';
import { createVolumeClient } from '../../src/cli/http-master.js';
import { Metrics } from '../../src/metrics.js';
import type { Credentials } from '../../src/auth/credentials.js';
import { createVolumeServer } from '../../src/volumes/volume-server.js';
import { UploadStore } from '../../src/uploads/upload-store.js';
import { openStore, type Store, type StoreOptions } from '../../src/db/store.js';
import { uploadsDir } from '../../src/db/paths.js';
import { freePort, removeDir, tempDir } from './host.js';
import { until } from './wait.js';

export { freePort, removeDir, tempDir };

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const mkvBin = join(repoRoot, 'dist/src/cli/main.js');
export const nginxVolumeScript = join(repoRoot, 'nginx/volume');

export function hasNginx(): boolean {
  const found = spawnSync('sh', ['-c', 'command -v nginx || test -x /usr/sbin/nginx'], { stdio: 'ignore' });
  return found.status === 0;
}

/** Skip nginx tests only where nginx is not installed, never in CI (which installs it). */
export function nginxSkipReason(): string | false {
  if (hasNginx()) return false;
  if (process.env.CI) throw new Error('CI must install nginx (see .ci/run)');
  return 'nginx is not installed (apt-get install -y nginx)';
}

/** A port p such that p, p+1, p+2 and p+3 are all free now (a master and its three volumes, as mkv up and the README lay them out). */
export async function fourFreePorts(): Promise<number> {
  for (;;) {
    const base = await freePort();
    const free = await Promise.all(
      [1, 2, 3].map(
        (offset) =>
          new Promise<boolean>((resolve) => {
            const probe = createNetServer();
            probe.once('error', () => resolve(false));
            probe.listen(base + offset, '127.0.0.1', () => probe.close(() => resolve(true)));
          }),
      ),
    );
    if (free.every(Boolean)) return base;
  }
}

export interface VolumeSet {
  kind: 'embedded' | 'nginx';
  /** host:port of each volume server. */
  volumes: string[];
  dirs: string[];
  /** What volume i's server wrote to its error log (nginx's stderr) so far; '' for the embedded one. */
  log(i: number): string;
  /** Stops volume i (to simulate a dead server); start(i) brings it back on the same port. */
  stop(i: number): Promise<void>;
  start(i: number): Promise<void>;
  close(): Promise<void>;
}

/** Resolves once `url` answers a HEAD (whatever its status); fails if `child` exits first, or at the deadline. */
export async function waitForHttp(url: string, child?: ChildProcess, ms = 30_000): Promise<void> {
  await until(
    `${url} to answer`,
    async () => {
      if (child && child.exitCode !== null) throw new Error(`the server of ${url} exited with ${child.exitCode}`);
      try {
        await (await fetch(url, { method: 'HEAD' })).arrayBuffer();
        return true;
      } catch {
        return false;
      }
    },
    ms,
  );
}

/**
 * Volume servers of one kind. With `secret`, they serve only requests signed with it (the
 * master's --volume-secret-file; nginx reads it from the file MKV_VOLUME_SECRET_FILE names).
 */
export async function startVolumes(
  kind: 'embedded' | 'nginx',
  count: number,
  root = tempDir('mkv-volumes-'),
  secret?: string,
): Promise<VolumeSet> {
  const dirs = Array.from({ length: count }, (_, i) => join(root, `volume${i + 1}`));
  const secretFile = join(root, 'volume-secret');
  if (secret) {
    mkdirSync(root, { recursive: true });
    writeFileSync(secretFile, `${secret}\n`);
  }
  const serverOptions = (i: number) => ({ root: dirs[i]!, ...(secret ? { secret } : {}) });
  const nginxEnv = (port: number) => ({ ...process.env, PORT: String(port), ...(secret ? { MKV_VOLUME_SECRET_FILE: secretFile } : {}) });
  const logFile = (i: number) => join(root, `volume${i + 1}.log`);
  const ports: number[] = [];
  const running: Array<Server | ChildProcess | undefined> = [];
  const start = async (i: number) => {
    const port = ports[i]!;
    if (kind === 'embedded') {
      const server = createVolumeServer(serverOptions(i));
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      running[i] = server;
    } else {
      mkdirSync(root, { recursive: true });
      const stderr = openSync(logFile(i), 'a');
      const child = spawn(nginxVolumeScript, [dirs[i]!], { env: nginxEnv(port), stdio: ['ignore', 'ignore', stderr] });
      closeSync(stderr);
      running[i] = child;
      await waitForHttp(`http://127.0.0.1:${port}/`, child);
    }
  };
  const stop = async (i: number) => {
    const server = running[i];
    running[i] = undefined;
    if (!server) return;
    if ('closeAllConnections' in server) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    } else {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
  };
  for (let i = 0; i < count; i++) {
    if (kind === 'embedded') {
      // Listen on port 0 the first time; keep that port for restarts.
      const server = createVolumeServer(serverOptions(i));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      ports.push((server.address() as AddressInfo).port);
      running.push(server);
    } else {
      // Another process may take a free port before nginx binds it: try a few.
      running.push(undefined);
      for (let attempt = 0; ; attempt++) {
        ports[i] = await freePort();
        try {
          await start(i);
          break;
        } catch (error) {
          if (attempt === 4) throw error;
        }
      }
    }
  }
  return {
    kind,
    volumes: ports.map((port) => `127.0.0.1:${port}`),
    dirs,
    log: (i) => (existsSync(logFile(i)) ? readFileSync(logFile(i), 'utf8') : ''),
    stop,
    start,
    async close() {
      for (let i = 0; i < count; i++) await stop(i);
      removeDir(root);
    },
  };
}

export interface TestMaster {
  url: string;
  /** What the master counts (mkv_auth_failures_total among them). */
  metrics: Metrics;
  port: number;
  /** The same master with every request through Koa (the native path off), on a port of its own. */
  koaUrl: string;
  /** The same master's S3 port (--s3-port): every request an S3 one. */
  s3Url: string;
  db: string;
  store: Store;
  config: MasterConfig;
  close(): Promise<void>;
}

export async function startMaster(
  volumes: string[],
  overrides: Partial<MasterConfig> = {},
  options: {
    db?: string;
    store?: StoreOptions;
    /** false: every request through Koa, none on the native path. */
    nativePath?: boolean;
    /** Who may do what (mkv server --credentials). */
    credentials?: Credentials;
    /** Where the master logs (silent by default). */
    logger?: Logger;
  } = {},
): Promise<TestMaster> {
  const logger = options.logger ?? silentLogger;
  const db = options.db ?? tempDir('mkv-db-');
  const config: MasterConfig = { ...defaultConfig, volumes, ...overrides };
  const store = await openStore(db, { logger, ...options.store });
  // As mkv server builds it: every failure counted (a bug in counting one surfaced only there).
  const metrics = new Metrics();
  const volumeClient = createVolumeClient(config, metrics, logger);
  const uploads = new UploadStore(uploadsDir(db));
  const deps = {
    config,
    index: store.index,
    writer: store.writer,
    volumes: volumeClient,
    uploads,
    logger,
    metrics,
    ...(options.credentials ? { credentials: options.credentials } : {}),
  };
  const serve = async (nativePath: boolean, s3 = false) => {
    const server = createServer();
    serveMaster(server, deps, { nativePath, s3 });
    server.requestTimeout = 0;
    answerClientErrors(server, logger);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return server;
  };
  const server = await serve(options.nativePath ?? true);
  const koaServer = await serve(false);
  const s3Server = await serve(false, true);
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    koaUrl: `http://127.0.0.1:${(koaServer.address() as AddressInfo).port}`,
    s3Url: `http://127.0.0.1:${(s3Server.address() as AddressInfo).port}`,
    metrics,
    db,
    store,
    config,
    async close() {
      for (const each of [server, koaServer, s3Server]) {
        each.closeAllConnections();
        await new Promise((resolve) => each.close(resolve));
      }
      await store.close();
      await volumeClient.close();
    },
  };
}

export interface MkvProcess {
  child: ChildProcess;
  url: string;
  port: number;
  output: () => string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

// Masters a test spawned and did not stop (it failed before it could): killed once the file's
// tests end, or the running child would keep the test file, and the whole suite, from ending.
const spawnedMasters = new Set<ChildProcess>();
after(() => {
  for (const child of spawnedMasters) child.kill('SIGKILL');
});

/** Runs `mkv server ...` and waits until it says where it listens. */
export async function spawnMaster(args: string[]): Promise<MkvProcess> {
  const child = spawn(process.execPath, [mkvBin, 'server', '--port', '0', '--host', '127.0.0.1', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  spawnedMasters.add(child);
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      spawnedMasters.delete(child);
      resolve(code ?? signal ?? -1);
    }),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const check = () => {
      const match = /listening on http:\/\/[^:]+:(\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    };
    child.stdout.on('data', check);
    void exited.then((code) => reject(new Error(`mkv server exited (${code}) before listening:\n${output}`)));
  });
  return { child, url: `http://127.0.0.1:${port}`, port, output: () => output, exited };
}

/** SIGTERM, and resolves once the master has exited (at once if it already has). */
export async function stopMaster(master: MkvProcess): Promise<number | string> {
  if (master.child.exitCode === null && master.child.signalCode === null) master.child.kill('SIGTERM');
  return master.exited;
}

/** The admin port's URL of a master spawned with --admin-port (as it says where it listens). */
export function adminUrlOf(master: MkvProcess): string {
  return `http://127.0.0.1:${/admin .* on port (\d+)/.exec(master.output())![1]}`;
}

/**
 * Runs an mkv command to completion. Asynchronous, so volume servers in this process keep
 * answering while it runs.
 */
export function runMkv(args: string[], env?: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [mkvBin, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(env ? { env: { ...process.env, ...env } } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
