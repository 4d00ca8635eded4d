// The primary's side of `mkv server --workers N`: it owns the writer (log, projector, locks) and
// forks N HTTP workers (node:cluster) that share the listening port.
//
//   primary: LocalWriter ◀─ IPC (writer/ipc.ts) ─▶ worker 1: Koa app, LMDB read-only, undici pools
//                        ◀─ IPC ──────────────────▶ worker 2: ...
//
// A worker that dies is replaced (its locks are released first); a primary that dies takes its
// workers with it (they exit when the IPC channel closes), so a port never answers without a writer.
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { serveWriter } from '../writer/ipc.js';
import type { Writer } from '../writer/writer.js';
import type { HttpSettings } from './http-master.js';

const workerEntry = fileURLToPath(new URL('./worker.js', import.meta.url));

/** How long a stopping worker may take to finish its requests before it is killed. */
const STOP_GRACE_MS = 30_000;
/** A worker that dies sooner than this after it started is restarted only after a pause. */
const RESTART_PAUSE_MS = 1000;

export type WorkerMessage =
  | { mkv: 'listening'; port: number; s3Port?: number }
  | { mkv: 'failed'; message: string }
  /**
   * A worker asks for what it serves with: the settings (they hold the volume secret, so they go
   * over IPC, never in a worker's environment, which any process of its user can read) and the
   * credentials file's text, which the primary read once.
   */
  | { mkv: 'settings?' }
  | { mkv: 'metrics'; id: number; metrics: MetricObjectWithValues<MetricValue<string>>[] };

export interface WorkerPool {
  port: number;
  s3Port: number | undefined;
  workers(): Worker[];
  /** Stops every worker (each finishes its requests in flight), then resolves. */
  close(): Promise<void>;
}

function message(value: unknown): WorkerMessage | undefined {
  return typeof value === 'object' && value !== null && typeof (value as { mkv?: unknown }).mkv === 'string'
    ? (value as WorkerMessage)
    : undefined;
}

export async function startWorkers(options: {
  count: number;
  settings: HttpSettings;
  writer: Writer;
  logger: Logger;
  /** The credentials file's text, as the primary read it: sent to each worker that asks. */
  credentialsText?: string;
}): Promise<WorkerPool> {
  const { count, settings, writer, logger, credentialsText } = options;
  // JSON: events are plain data (numbers, strings, arrays), and JSON costs less than 'advanced'
  // (structured clone) per message, on the hot path of every write (docs/design-figures.md).
  cluster.setupPrimary({ exec: workerEntry, args: [], serialization: 'json' });
  let workerSettings = settings;
  const running = new Set<Worker>();
  let stopping = false;

  const fork = (): Promise<{ port: number; s3Port: number | undefined }> => {
    const worker = cluster.fork();
    const service = serveWriter(worker, writer);
    const started = Date.now();
    running.add(worker);
    return new Promise((resolve, reject) => {
      let listening = false;
      worker.on('message', (value: unknown) => {
        const said = message(value);
        if (said?.mkv === 'settings?') {
          worker.send({ mkv: 'settings', settings: workerSettings, credentialsText: credentialsText ?? '' });
        } else if (said?.mkv === 'listening') {
          listening = true;
          resolve({ port: said.port, s3Port: said.s3Port });
        } else if (said?.mkv === 'failed') {
          reject(new Error(said.message));
        }
      });
      worker.on('exit', (code, signal) => {
        running.delete(worker);
        void service.release();
        if (!listening) {
          reject(new Error(`HTTP worker ${worker.process.pid} exited before it listened (${signal ?? `code ${code}`})`));
          return;
        }
        if (stopping) return;
        logger.error('an HTTP worker died; starting another', {
          pid: worker.process.pid,
          code,
          signal,
          locksReleased: service.locked.size,
        });
        const pause = Date.now() - started < RESTART_PAUSE_MS ? RESTART_PAUSE_MS : 0;
        setTimeout(() => {
          if (!stopping)
            fork().catch((error: Error) => logger.error('a replacement HTTP worker failed to start', { error: error.message }));
        }, pause);
      });
    });
  };

  const stopAll = async () => {
    stopping = true;
    await Promise.all(
      [...running].map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            const killer = setTimeout(() => worker.process.kill('SIGKILL'), STOP_GRACE_MS);
            worker.once('exit', () => {
              clearTimeout(killer);
              resolve();
            });
            worker.send({ mkv: 'stop' });
          }),
      ),
    );
  };

  let port: number;
  let s3Port: number | undefined;
  try {
    const ports = await Promise.all(Array.from({ length: count }, fork));
    ({ port, s3Port } = ports[0]!);
    // A replacement listens on the ports the first workers got (--port 0 means "any", once).
    workerSettings = { ...settings, port, s3Port };
  } catch (error) {
    await stopAll();
    throw error;
  }
  return {
    port,
    s3Port,
    workers: () => [...running],
    close: stopAll,
  };
}

let nextMetricsId = 1;

/** Prometheus text for the whole server: the primary's metrics and every worker's, summed. */
export async function gatherMetrics(metrics: Metrics, pool: WorkerPool): Promise<string> {
  const fromWorkers = await Promise.all(
    pool.workers().map(
      (worker) =>
        new Promise<MetricObjectWithValues<MetricValue<string>>[]>((resolve) => {
          const id = nextMetricsId++;
          const timer = setTimeout(() => {
            worker.off('message', listener);
            resolve([]);
          }, 2000);
          const listener = (value: unknown) => {
            const said = message(value);
            if (said?.mkv !== 'metrics' || said.id !== id) return;
            clearTimeout(timer);
            worker.off('message', listener);
            resolve(said.metrics);
          };
          worker.on('message', listener);
          worker.send({ mkv: 'metrics', id });
        }),
    ),
  );
  const own = await metrics.registry.getMetricsAsJSON();
  return AggregatorRegistry.aggregate([own, ...fromWorkers] as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
}
