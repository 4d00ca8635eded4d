// mkv server: the master.
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import type { IndexStore } from '../index/index-store.js';
import { defaultConfig, type MasterConfig } from '../keys/config.js';
import { answerClientErrors, createMasterHandler } from '../master/handler.js';
import { createLogger, type Logger } from '../logger.js';
import { VolumeClient } from '../volumes/client.js';
import { UploadStore } from '../master/s3/uploads.js';
import { openStore, type Store } from '../db/store.js';
import { indexDir, uploadsDir } from '../db/paths.js';
import type { Writer } from '../writer/writer.js';
import { gatherMetrics, startWorkers, type WorkerPool } from './workers.js';
import { createAdminServer } from '../master/admin.js';
import { Metrics } from '../metrics.js';
import { originalFlags, UsageError, type FlagSpecs, type FlagValues } from './args.js';
import { readCredentials } from '../auth/credentials.js';
import { volumeSecret } from '../volumes/signing.js';

export const serverFlags: FlagSpecs = {
  port: originalFlags.port!,
  host: { type: 'string', default: '', help: 'address to listen on (default: every interface)' },
  volumes: originalFlags.volumes!,
  db: originalFlags.db!,
  replicas: originalFlags.replicas!,
  subvolumes: originalFlags.subvolumes!,
  protect: originalFlags.protect!,
  fallback: originalFlags.fallback!,
  md5sum: originalFlags.md5sum!,
  voltimeout: originalFlags.voltimeout!,
  'volume-timeout': { type: 'duration', default: '30s', help: 'how long a volume may stall a PUT, or take to answer a PUT or DELETE' },
  'body-timeout': { type: 'duration', default: '10s', help: 'refuse a PUT whose body stalls this long' },
  log: { type: 'string', default: '', help: 'the event log on NATS JetStream, nats://host:port[,host:port...][/STREAM], shared by several masters (default: DB/log on this disk)' },
  'pending-grace': { type: 'duration', default: '1h', help: 'with --log nats://: how long a pending key counts as another master\'s write in flight (PUT and DELETE of it answer 409 until then)' },
  'log-replicas': { type: 'integer', default: 1, help: 'copies of each event a new JetStream stream keeps (1, 3 or 5)' },
  sync: { type: 'string', default: 'fsync', help: 'fsync: acknowledge writes once on disk; none: do not fsync (benchmarks only)' },
  'segment-size': { type: 'integer', default: 64 * 1024 * 1024, help: 'start a new log segment at this many bytes' },
  'skip-log-check': { type: 'boolean', default: false, help: 'start without checking the sealed log segments (CRC of every block)' },
  'read-only': { type: 'boolean', default: false, help: 'serve reads only (a point-in-time db from mkv rebuild --into); writes answer 403' },
  workers: {
    type: 'integer',
    default: defaultWorkers(),
    help: 'HTTP worker processes on the one port, sharing one writer process; 0: serve HTTP in the writer process (the default on 1 or 2 cores, where it costs least per request; one worker per core above that)',
  },
  'admin-port': { type: 'integer', help: 'serve /metrics, /healthz and /readyz on this port (off when not given)' },
  's3-port': { type: 'integer', help: 'serve S3 on this port too: every request there is an S3 one, for S3 clients that sign nothing and are not AWS SDKs (those are told by their amz-sdk-invocation-id header on the main port too) (off when not given)' },
  'volume-secret-file': { type: 'string', help: 'a file with the secret the volumes hold too (or MKV_VOLUME_SECRET): every request to a volume, and every redirect to one, is signed with it, and they serve nothing else' },
  'link-ttl': { type: 'duration', default: '10m', help: "with --volume-secret-file: how long the link a GET redirects to reads its blob" },
  'stale-grace': { type: 'duration', default: '1m', help: 'how long the blob of a value an S3 overwrite replaced stays, for readers sent to it just before' },
  credentials: { type: 'string', help: 'a file of access keys and what each may do (README: "Running it for real"); without it, anyone who reaches the master may do anything' },
  v: { ...originalFlags.v!, help: 'debug logs (one line per request)' },
};

/**
 * --workers when not given. On 2 cores, HTTP in the writer process measured fastest: a write
 * from a worker costs two IPC round trips, and a second process shares the cores with nginx and
 * the clients (thrasher: 326-360 rounds/s and 1.9-2.1 ms of master CPU a round with 0 workers,
 * 285 and 3.3 ms with 2). With more cores, reads spread over one worker per core.
 */
export function defaultWorkers(cores = availableParallelism()): number {
  return cores <= 2 ? 0 : cores;
}

export interface RunningServer {
  /** The HTTP server, when this process serves HTTP itself (--workers 0). */
  server: Server | undefined;
  store: Store;
  port: number;
  /** The S3 port (--s3-port). */
  s3Port: number | undefined;
  adminPort: number | undefined;
  /** HTTP worker processes (0: this process serves HTTP). */
  workers: number;
  close(): Promise<void>;
}

export function masterConfigFrom(flags: FlagValues): MasterConfig {
  const volumes = flags.volumes as string[] | undefined;
  if (!volumes || volumes.length === 0) throw new UsageError('--volumes is required (host:port,host:port,...)');
  const replicas = flags.replicas as number;
  const subvolumes = flags.subvolumes as number;
  if (replicas < 1) throw new UsageError('--replicas must be at least 1');
  if (subvolumes < 1) throw new UsageError('--subvolumes must be at least 1');
  if (replicas > volumes.length) throw new UsageError(`--replicas ${replicas} needs at least that many volumes (got ${volumes.length})`);
  return {
    volumes,
    replicas,
    subvolumes,
    protect: flags.protect as boolean,
    fallback: flags.fallback as string,
    md5sum: flags.md5sum as boolean,
    voltimeoutMs: flags.voltimeout as number,
    volumeRequestTimeoutMs: flags['volume-timeout'] as number,
    bodyTimeoutMs: flags['body-timeout'] as number,
    readOnly: flags['read-only'] as boolean,
    pendingGraceMs: flags['pending-grace'] as number,
    ...volumeSecretFrom(flags),
    linkTtlMs: (flags['link-ttl'] as number | undefined) ?? defaultConfig.linkTtlMs,
    staleGraceMs: (flags['stale-grace'] as number | undefined) ?? defaultConfig.staleGraceMs,
  };
}

/** The volume secret a command was given (--volume-secret-file), for the VolumeClient it builds. */
export function volumeSecretFrom(flags: FlagValues): { volumeSecret?: string } {
  const secret = volumeSecret(flags['volume-secret-file'] as string | undefined);
  return secret ? { volumeSecret: secret } : {};
}

/** The secret option of a VolumeClient for a command's flags. */
export function secretOption(flags: FlagValues): { secret?: string } {
  const secret = volumeSecret(flags['volume-secret-file'] as string | undefined);
  return secret ? { secret } : {};
}

/** The master's client for its volumes: its deadlines from the config, every failure counted in the metrics. */
export function createVolumeClient(config: MasterConfig, metrics: Metrics, logger: Logger): VolumeClient {
  return new VolumeClient({
    headTimeoutMs: config.voltimeoutMs,
    requestTimeoutMs: config.volumeRequestTimeoutMs,
    ...(config.volumeSecret ? { secret: config.volumeSecret, linkTtlMs: config.linkTtlMs } : {}),
    onFailure(volume, operation, timedOut) {
      (timedOut ? metrics.volumeTimeouts : metrics.volumeErrors).inc({ volume, operation });
      logger.debug('volume request failed', { volume, operation, timedOut });
    },
  });
}

/** The HTTP side of a master: its server (and the S3 port's, with --s3-port) and the volume client they use, over an index and a writer. */
export interface HttpMaster {
  server: Server;
  s3Server: Server | undefined;
  volumes: VolumeClient;
  /** Listens on --port and --s3-port (ports given, or 0 for any); resolves with the ports. */
  listen(port: number, s3Port: number | undefined): Promise<{ port: number; s3Port: number | undefined }>;
  close(): Promise<void>;
}

export function createHttpMaster(flags: FlagValues, index: IndexStore, writer: Writer, logger: Logger, metrics: Metrics): HttpMaster {
  const config = masterConfigFrom(flags);
  const volumes = createVolumeClient(config, metrics, logger);
  const uploads = new UploadStore(uploadsDir(flags.db as string));
  const credentials = flags.credentials ? readCredentials(flags.credentials as string) : undefined;
  const deps = { config, index, writer, volumes, uploads, logger, metrics, ...(credentials ? { credentials } : {}) };
  const serve = (s3: boolean) => {
    const server = createServer(createMasterHandler(deps, { s3 }));
    // A gigabyte on a slow link takes longer than Node's default 5 minutes per request.
    server.requestTimeout = 0;
    answerClientErrors(server, logger);
    return server;
  };
  const server = serve(false);
  const s3Server = flags['s3-port'] !== undefined ? serve(true) : undefined;
  const host = flags.host as string;
  return {
    server,
    s3Server,
    volumes,
    async listen(port, s3Port) {
      const ports = { port: await listen(server, port, host), s3Port: s3Server ? await listen(s3Server, s3Port ?? 0, host) : undefined };
      return ports;
    },
    async close() {
      await Promise.all([closeGracefully(server), ...(s3Server ? [closeGracefully(s3Server)] : [])]);
    },
  };
}

/** Whether --host keeps the master to this machine. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Listens on --port (and --host when given); resolves with the port. */
export async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (host) server.listen(port, host, resolve);
    else server.listen(port, resolve);
  });
  return (server.address() as AddressInfo).port;
}

/** Stops taking connections and waits for the requests in flight (idle keep-alive connections are closed). */
export async function closeGracefully(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // A connection that finishes its request goes idle: close those as they appear.
  const idle = setInterval(() => server.closeIdleConnections(), 100);
  server.closeIdleConnections();
  try {
    await closed;
  } finally {
    clearInterval(idle);
  }
}

export async function startServer(flags: FlagValues, logger: Logger = createLogger({ verbose: flags.v as boolean })): Promise<RunningServer> {
  const config = masterConfigFrom(flags);
  // Read now, so a bad file refuses the start before anything is opened.
  const credentials = flags.credentials ? readCredentials(flags.credentials as string) : undefined;
  if (!credentials && !isLoopback(flags.host as string)) {
    logger.warn('no --credentials: anyone who reaches this master may read, list and delete every key (listen on 127.0.0.1 with --host, or give --credentials)', { host: (flags.host as string) || 'every interface' });
  }
  const db = flags.db as string | undefined;
  if (!db) throw new UsageError('--db is required (a directory for the log and the index)');
  const sync = flags.sync as string;
  if (sync !== 'fsync' && sync !== 'none') throw new UsageError('--sync is fsync or none');
  const workerCount = (flags.workers as number | undefined) ?? 0;
  if (workerCount < 0) throw new UsageError('--workers is 0 (serve HTTP in this process) or more');
  if (sync === 'none') logger.warn('--sync none: acknowledged writes can be lost on power failure');
  const metrics = new Metrics();
  const store = await openStore(db, {
    sync,
    segmentBytes: flags['segment-size'] as number,
    logger,
    readOnly: config.readOnly,
    skipLogCheck: flags['skip-log-check'] as boolean,
    ...(flags.log ? { logUrl: flags.log as string, logReplicas: flags['log-replicas'] as number } : {}),
    onAppend(events, seconds) {
      metrics.logAppends.inc();
      metrics.logEvents.inc(events);
      metrics.groupCommitEvents.observe(events);
      metrics.logAppendSeconds.observe(seconds);
    },
  });
  metrics.watchStore({
    lastSeq: () => store.log.lastSeq,
    checkpoint: () => store.index.checkpoint,
    indexDir: indexDir(db),
    lockedKeys: () => store.writer.lockedKeys ?? 0,
  });
  let http: HttpMaster | undefined;
  let volumes: VolumeClient;
  let pool: WorkerPool | undefined;
  let port: number;
  let s3Port: number | undefined;
  try {
    if (workerCount === 0) {
      http = createHttpMaster(flags, store.index, store.writer, logger, metrics);
      volumes = http.volumes;
      ({ port, s3Port } = await http.listen(flags.port as number, flags['s3-port'] as number | undefined));
    } else {
      // The admin port's /readyz checks the volumes from here; the workers have their own clients.
      volumes = createVolumeClient(config, metrics, logger);
      pool = await startWorkers({ count: workerCount, flags, writer: store.writer, logger });
      ({ port, s3Port } = pool);
    }
  } catch (error) {
    await pool?.close();
    await store.close();
    throw error;
  }
  let admin: Server | undefined;
  if (flags['admin-port'] !== undefined) {
    const workers = pool;
    const gather = workers ? () => gatherMetrics(metrics, workers) : () => metrics.registry.metrics();
    admin = createAdminServer({ metrics, gather, store, volumes, volumeNames: config.volumes, ...(credentials ? { credentials } : {}) });
    await listen(admin, flags['admin-port'] as number, flags.host as string);
  }
  const adminPort = admin ? (admin.address() as AddressInfo).port : undefined;
  let closing: Promise<void> | undefined;
  return {
    server: http?.server,
    store,
    port,
    s3Port,
    adminPort,
    workers: workerCount,
    close() {
      closing ??= (async () => {
        admin?.close();
        await http?.close();
        await pool?.close();
        await store.close();
        await volumes.close();
      })();
      return closing;
    },
  };
}

export async function serverCommand(flags: FlagValues): Promise<void> {
  const running = await startServer(flags);
  const host = (flags.host as string) || '0.0.0.0';
  const workers = running.workers === 0 ? '' : `, ${running.workers} HTTP workers`;
  const mode = running.store.readOnly ? `read-only, as of seq ${running.store.index.checkpoint}` : `log ${running.store.log.location} at seq ${running.store.log.lastSeq}`;
  const admin = running.adminPort === undefined ? '' : `, admin (/metrics, /healthz, /readyz) on port ${running.adminPort}`;
  const s3 = running.s3Port === undefined ? '' : `, S3 on port ${running.s3Port}`;
  process.stdout.write(`mkv master listening on http://${host}:${running.port} (db ${flags.db}, ${mode}${workers}${s3}${admin})\n`);
  stopOnSignal(() => running.close());
}

export function stopOnSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = () => {
    if (stopping) process.exit(1);
    stopping = true;
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`error while stopping: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
