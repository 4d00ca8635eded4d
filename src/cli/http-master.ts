// The HTTP side of a master: the server on --port (and on --s3-port) over an index and a writer,
// with its client for the volumes. The process that owns the db builds it (--workers 0), and so
// does each HTTP worker (worker.ts), from the same HttpSettings.
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Credentials } from '../auth/credentials.js';
import type { MasterConfig } from '../config.js';
import { uploadsDir } from '../db/paths.js';
import type { IndexStore } from '../index/index-store.js';
import type { Logger } from '../logger.js';
import { answerClientErrors, serveMaster } from '../master/handler.js';
import { UploadStore } from '../uploads/upload-store.js';
import type { Metrics } from '../metrics.js';
import { VolumeClient } from '../volumes/client.js';
import type { Writer } from '../writer/writer.js';

/**
 * What the HTTP side of a master is built from: worked out once from the flags by the process
 * that owns the db, and handed as it is (plain data) to each HTTP worker.
 */
export interface HttpSettings {
  config: MasterConfig;
  db: string;
  host: string;
  port: number;
  /** --s3-port: a second server where every request is an S3 one. */
  s3Port: number | undefined;
  /** --credentials: the file, read once by the primary; a worker gets its text over IPC (cli/workers.ts). */
  credentialsFile: string | undefined;
  /** --region: the one region SigV4 credentials may be scoped to; undefined: any. */
  region: string | undefined;
  /** The log is shared with other masters (JetStream). */
  sharedLog: boolean;
  verbose: boolean;
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
  /** Listens on the port and the S3 port (0: any free one); resolves with the ports taken. */
  listen(): Promise<{ port: number; s3Port: number | undefined }>;
  close(): Promise<void>;
}

/**
 * The master's HTTP side over an index and a writer, and what the credentials file grants (none:
 * an open master).
 */
export function createHttpMaster(
  settings: HttpSettings,
  index: IndexStore,
  writer: Writer,
  logger: Logger,
  metrics: Metrics,
  credentials: Credentials | undefined,
): HttpMaster {
  const { config, host } = settings;
  const volumes = createVolumeClient(config, metrics, logger);
  const uploads = new UploadStore(uploadsDir(settings.db));
  const deps = { config, index, writer, volumes, uploads, logger, metrics, ...(credentials ? { credentials } : {}) };
  const serve = (s3: boolean) => {
    const server = createServer();
    serveMaster(server, deps, { s3 });
    // A gigabyte on a slow link takes longer than Node's default 5 minutes per request.
    server.requestTimeout = 0;
    answerClientErrors(server, logger);
    return server;
  };
  const server = serve(false);
  const s3Server = settings.s3Port !== undefined ? serve(true) : undefined;
  return {
    server,
    s3Server,
    volumes,
    async listen() {
      return {
        port: await listen(server, settings.port, host),
        s3Port: s3Server ? await listen(s3Server, settings.s3Port!, host) : undefined,
      };
    },
    async close() {
      await Promise.all([closeGracefully(server), ...(s3Server ? [closeGracefully(s3Server)] : [])]);
    },
  };
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
