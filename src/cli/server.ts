// mkv server: the master. Its flags become a MasterConfig and HttpSettings here, once; it opens
// the db (log, index, writer), then serves HTTP itself or through --workers, and the admin port.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { credentialsOf, openEndedPrefixes, readCredentials, type Credentials } from '../auth/credentials.js';
import { defaultConfig, type MasterConfig } from '../config.js';
import { indexDir } from '../db/paths.js';
import { keepRetain, retainOf } from '../db/retain.js';
import { openStore, type Store } from '../db/store.js';
import { DEFAULT_SEGMENT_BYTES, type SyncMode } from '../log/segment-log.js';
import { createLogger, type Logger } from '../logger.js';
import { createAdminServer } from '../master/admin.js';
import { StatusSource } from '../master/status.js';
import type { KeyDeps } from '../keys/deps.js';
import { startRetentionSweeps } from '../keys/stale-sweeper.js';
import { mkvVersion } from './version.js';
import { Metrics } from '../metrics.js';
import type { VolumeClient } from '../volumes/client.js';
import { defineFlags, durationText, originalFlags, UsageError, type Options } from './args.js';
import { dbFlag, logAccessFlags, logStoreOptions, secretOption, sharedFlags } from './common-flags.js';
import { createHttpMaster, createVolumeClient, listen, type HttpMaster, type HttpSettings } from './http-master.js';
import { gatherMetrics, startWorkers, type WorkerPool } from './workers.js';

export const serverFlags = defineFlags({
  port: originalFlags.port,
  host: { type: 'string', default: '', help: 'address to listen on (default: every interface)' },
  volumes: sharedFlags.volumes,
  db: dbFlag('the database directory: the event log (DB/log) and the index (DB/index)'),
  replicas: originalFlags.replicas,
  subvolumes: originalFlags.subvolumes,
  protect: originalFlags.protect,
  fallback: originalFlags.fallback,
  md5sum: originalFlags.md5sum,
  voltimeout: originalFlags.voltimeout,
  'volume-timeout': sharedFlags['volume-timeout'],
  'body-timeout': {
    type: 'duration',
    default: durationText(defaultConfig.bodyTimeoutMs),
    help: 'refuse a PUT whose body stalls this long',
  },
  log: sharedFlags.log,
  ...logAccessFlags,
  'pending-grace': {
    type: 'duration',
    default: durationText(defaultConfig.pendingGraceMs),
    help: "with --log nats://: how long a pending key counts as another master's write in flight (PUT and DELETE of it answer 409 until then)",
  },
  'log-replicas': { type: 'integer', default: 1, help: 'copies of each event a new JetStream stream keeps (1, 3 or 5)' },
  sync: { type: 'string', default: 'fsync', help: 'fsync: acknowledge writes once on disk; none: do not fsync (benchmarks only)' },
  'segment-size': {
    type: 'integer',
    default: DEFAULT_SEGMENT_BYTES,
    help: 'start a new log segment at this many bytes (a plain number: 67108864 is 64 MiB)',
  },
  'skip-log-check': { type: 'boolean', default: false, help: 'start without checking the sealed log segments (CRC of every block)' },
  'read-only': {
    type: 'boolean',
    default: false,
    help: 'serve reads only (a point-in-time db from mkv rebuild --into); writes answer 403',
  },
  workers: {
    type: 'integer',
    default: defaultWorkers(),
    help: 'HTTP worker processes on the one port, sharing one writer process; 0: serve HTTP in the writer process (the default on 1 or 2 cores, where it costs least per request; one worker per core above that)',
  },
  'admin-port': { type: 'integer', help: 'serve /metrics, /healthz and /readyz on this port (off when not given)' },
  's3-port': {
    type: 'integer',
    help: 'serve S3 on this port too: every request there is an S3 one, for S3 clients that sign nothing and are not AWS SDKs (those are told by their amz-sdk-invocation-id header on the main port too) (off when not given)',
  },
  'volume-secret-file': sharedFlags['volume-secret-file'],
  'link-ttl': {
    type: 'duration',
    default: durationText(defaultConfig.linkTtlMs),
    help: 'with --volume-secret-file: how long the link a GET redirects to reads its blob',
  },
  'stale-grace': {
    type: 'duration',
    default: durationText(defaultConfig.staleGraceMs),
    help: 'how long the blob of a value an S3 overwrite replaced stays, for readers sent to it just before',
  },
  retain: {
    type: 'duration',
    help: 'keep every replaced value (overwritten or deleted) this long after it was replaced, readable with ?version and ?at (e.g. 30d); 0: off, a DELETE removes the blobs at once. Kept in DB/RETAIN: a later start without it keeps the same window',
  },
  credentials: {
    type: 'string',
    help: 'a file of access keys and what each may do (README: "Running it for real"); without it, anyone who reaches the master may do anything',
  },
  region: {
    type: 'string',
    default: '',
    help: 'with --credentials: the region S3 SigV4 signatures must be scoped to, as a client is configured (us-east-1, say); any region when not given',
  },
  v: { ...originalFlags.v, help: 'debug logs (one line per request)' },
});

export type ServerOptions = Options<typeof serverFlags>;

/**
 * --workers when not given. On 2 cores, HTTP in the writer process measured fastest: a write
 * from a worker costs two IPC round trips, and a second process shares the cores with nginx and
 * the clients (the figures: docs/design-figures.md). With more cores, reads spread over one worker per core.
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

/** The master's configuration from its flags, checked: the only place the server's flags become it. */
export function masterConfigFrom(flags: ServerOptions): MasterConfig {
  const { volumes, replicas, subvolumes } = flags;
  if (replicas < 1) throw new UsageError('--replicas must be at least 1');
  if (subvolumes < 1) throw new UsageError('--subvolumes must be at least 1');
  if (replicas > volumes.length) throw new UsageError(`--replicas ${replicas} needs at least that many volumes (got ${volumes.length})`);
  const volumeSecret = secretOption(flags).secret;
  return {
    volumes,
    replicas,
    subvolumes,
    protect: flags.protect,
    fallback: flags.fallback,
    md5sum: flags.md5sum,
    voltimeoutMs: flags.voltimeout,
    volumeRequestTimeoutMs: flags['volume-timeout'],
    bodyTimeoutMs: flags['body-timeout'],
    readOnly: flags['read-only'],
    pendingGraceMs: flags['pending-grace'],
    ...(volumeSecret ? { volumeSecret } : {}),
    linkTtlMs: flags['link-ttl'],
    staleGraceMs: flags['stale-grace'],
    retainMs: flags.retain ?? retainOf(flags.db),
  };
}

/** Whether --host keeps the master to this machine. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** The credentials file, read once (its text goes to the HTTP workers), and what it grants. */
interface CheckedFlags {
  text: string | undefined;
  credentials: Credentials | undefined;
  sync: SyncMode;
}

/**
 * The flags a master cannot start with refused, and the risky ones it can said: before anything
 * is opened. Reads the credentials file, so a bad one refuses the start too.
 */
function checkServerFlags(flags: ServerOptions, region: string | undefined, logger: Logger): CheckedFlags {
  const file = flags.credentials;
  const text = file ? readCredentials(file) : undefined;
  const credentials = file && text !== undefined ? credentialsOf(text, file, region) : undefined;
  for (const grant of credentials ? openEndedPrefixes(credentials) : []) {
    logger.warn(
      'a key prefix without a trailing "/" covers every key that starts with it ("/pub" covers "/publicity/" too); end it with "/" for one folder',
      { grant },
    );
  }
  if (region && !credentials) throw new UsageError('--region says which SigV4 signatures to accept: it needs --credentials');
  if (!credentials && !isLoopback(flags.host)) {
    logger.warn(
      'no --credentials: anyone who reaches this master may read, list and delete every key (listen on 127.0.0.1 with --host, or give --credentials)',
      { host: flags.host || 'every interface' },
    );
  }
  const { sync } = flags;
  if (sync !== 'fsync' && sync !== 'none') throw new UsageError('--sync is fsync or none');
  if (flags.workers < 0) throw new UsageError('--workers is 0 (serve HTTP in this process) or more');
  if (sync === 'none') logger.warn('--sync none: acknowledged writes can be lost on power failure');
  return { text, credentials, sync };
}

export async function startServer(flags: ServerOptions, logger: Logger = createLogger({ verbose: flags.v })): Promise<RunningServer> {
  const config = masterConfigFrom(flags);
  const { db, host } = flags;
  const region = flags.region || undefined;
  const { text: credentialsText, credentials, sync } = checkServerFlags(flags, region, logger);
  const workerCount = flags.workers;
  const settings: HttpSettings = {
    config,
    db,
    host,
    port: flags.port,
    s3Port: flags['s3-port'],
    credentialsFile: flags.credentials,
    region,
    sharedLog: flags.log !== '',
    verbose: flags.v,
  };
  const metrics = new Metrics();
  const store = await openStore(db, {
    sync,
    segmentBytes: flags['segment-size'],
    logger,
    readOnly: config.readOnly,
    skipLogCheck: flags['skip-log-check'],
    ...logStoreOptions(flags),
    ...(flags.log ? { logReplicas: flags['log-replicas'] } : {}),
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
      http = createHttpMaster(settings, store.index, store.writer, logger, metrics, credentials);
      volumes = http.volumes;
      ({ port, s3Port } = await http.listen());
    } else {
      // The admin port's /readyz checks the volumes from here; the workers have their own clients.
      volumes = createVolumeClient(config, metrics, logger);
      pool = await startWorkers({
        count: workerCount,
        settings,
        writer: store.writer,
        logger,
        ...(credentialsText !== undefined ? { credentialsText } : {}),
      });
      ({ port, s3Port } = pool);
    }
  } catch (error) {
    await pool?.close();
    await store.close();
    throw error;
  }
  await probeVolumes(volumes, config.volumes, metrics, logger);
  const retention = startRetention(flags, config, { config, index: store.index, writer: store.writer, volumes, logger }, metrics);
  const { admin, statusSource } =
    flags['admin-port'] === undefined
      ? { admin: undefined, statusSource: undefined }
      : await startAdmin({ port: flags['admin-port'], host, config, store, volumes, metrics, pool, credentials });
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
        statusSource?.close();
        await retention?.stop();
        await http?.close();
        await pool?.close();
        await store.close();
        await volumes.close();
      })();
      return closing;
    },
  };
}

/**
 * --retain: kept in DB/RETAIN when given (a later start without it keeps the window), and with a
 * window, the retention sweep: replaced values past it removed, the rest counted in /metrics.
 */
function startRetention(
  flags: ServerOptions,
  config: MasterConfig,
  deps: KeyDeps,
  metrics: Metrics,
): { stop(): Promise<void> } | undefined {
  if (config.readOnly) return undefined;
  if (flags.retain !== undefined) keepRetain(flags.db, config.retainMs);
  if (config.retainMs === 0) return undefined;
  deps.logger.warn(
    `keeping every replaced value for ${durationText(config.retainMs)} (--retain): overwritten and deleted values stay readable with ?version and ?at`,
  );
  return startRetentionSweeps(deps, (figures) => {
    metrics.retainedBlobs.set(figures.blobs);
    metrics.retainedBytes.set(figures.bytes);
  });
}

/** The admin port (/metrics, /healthz, /readyz, the status page), listening. */
async function startAdmin(options: {
  port: number;
  host: string;
  config: MasterConfig;
  store: Store;
  volumes: VolumeClient;
  metrics: Metrics;
  pool: WorkerPool | undefined;
  credentials: Credentials | undefined;
}): Promise<{ admin: Server; statusSource: StatusSource }> {
  const { config, store, volumes, metrics, pool, credentials } = options;
  const gather = pool ? () => gatherMetrics(metrics, pool) : () => metrics.registry.metrics();
  const statusSource = new StatusSource({
    store,
    volumes,
    placement: { volumes: config.volumes, replicas: config.replicas, subvolumes: config.subvolumes },
    gather,
    version: mkvVersion(),
    startedAt: Date.now(),
  });
  const admin = createAdminServer({
    metrics,
    gather,
    store,
    volumes,
    volumeNames: config.volumes,
    status: statusSource,
    ...(credentials ? { credentials } : {}),
  });
  await listen(admin, options.port, options.host);
  return { admin, statusSource };
}

/**
 * The master starts with volumes down, as the original does; it says which, and why (refused,
 * timed out, a signature it lacks), and /readyz and mkv_volume_up go on saying it.
 */
async function probeVolumes(volumes: VolumeClient, names: string[], metrics: Metrics, logger: Logger): Promise<void> {
  const states = await Promise.all(names.map(async (name) => [name, await volumes.probe(name)] as const));
  for (const [volume, state] of states) {
    metrics.volumeUp.set({ volume }, state === 'ok' ? 1 : 0);
    if (state !== 'ok') logger.warn(`volume ${volume}: ${state}; the keys placed on it cannot be written or read there until it answers`);
  }
}

export async function serverCommand(flags: ServerOptions): Promise<void> {
  const running = await startServer(flags);
  const host = flags.host || '0.0.0.0';
  const workers = running.workers === 0 ? '' : `, ${running.workers} HTTP workers`;
  const mode = running.store.readOnly
    ? `read-only, as of seq ${running.store.index.checkpoint}`
    : `log ${running.store.log.location} at seq ${running.store.log.lastSeq}`;
  const admin = running.adminPort === undefined ? '' : `, admin (/metrics, /healthz, /readyz) on port ${running.adminPort}`;
  const s3 = running.s3Port === undefined ? '' : `, S3 on port ${running.s3Port}`;
  process.stdout.write(`mkv master listening on http://${host}:${running.port} (db ${flags.db}, ${mode}${workers}${s3}${admin})\n`);
  stopOnSignal(() => running.close());
}

export function stopOnSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    process.stdout.write(`mkv: ${signal}: stopping once the requests in flight have finished (again: stop now)\n`);
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
