// An HTTP worker of `mkv server --workers N` (forked by cli/workers.ts, never run by hand): the
// master's Koa app over the LMDB index opened read-only, with writes sent to the primary's
// writer over IPC. It exits when the primary asks it to stop, or when the primary is gone.
import cluster from 'node:cluster';
import { IndexStore } from '../index/index-store.js';
import { credentialsOf } from '../auth/credentials.js';
import { createLogger, logProcessFailures } from '../logger.js';
import { Metrics } from '../metrics.js';
import { RemoteWriter, type Channel } from '../writer/ipc.js';
import { indexDir } from '../db/paths.js';
import { createHttpMaster, type HttpSettings } from './http-master.js';

logProcessFailures();

async function main(): Promise<void> {
  if (!cluster.isWorker || !process.send) throw new Error('cli/worker.js is started by mkv server --workers N, not by hand');
  // Worked out by the primary from the flags (cli/server.ts), handed over as they are.
  const { settings, credentialsText } = await askPrimary();
  const logger = createLogger({ verbose: settings.verbose });
  const index = IndexStore.open(indexDir(settings.db), { readOnly: true });
  const writer = new RemoteWriter(process as Channel, () => index.refresh(), settings.sharedLog);
  const metrics = new Metrics();
  const credentials = settings.credentialsFile ? credentialsOf(credentialsText, settings.credentialsFile, settings.region) : undefined;
  const http = createHttpMaster(settings, index, writer, logger, metrics, credentials);
  const { volumes } = http;
  // lmdb-js keeps one read snapshot until a timer resets it, and several requests can arrive
  // before that timer runs: a write answered by another worker could be invisible here. Every
  // request starts from the last commit, so a client reads its writes from any worker.
  for (const server of [http.server, http.s3Server]) server?.prependListener('request', () => index.refresh());

  let stopping: Promise<void> | undefined;
  const stop = (code: number) => {
    stopping ??= (async () => {
      await http.close();
      await writer.close();
      await volumes.close();
      await index.close();
    })()
      .catch((error: Error) => logger.error('HTTP worker: error while stopping', { error: error.message }))
      .finally(() => process.exit(code));
  };

  process.on('message', (value: unknown) => {
    const said = value as { mkv?: string; id?: number };
    if (said?.mkv === 'stop') stop(0);
    else if (said?.mkv === 'metrics') {
      void metrics.registry.getMetricsAsJSON().then((json) => process.send?.({ mkv: 'metrics', id: said.id, metrics: json }));
    }
  });
  // The primary is gone (stopped, or killed): no writer, so stop serving at once.
  // Closing a shared listening socket asks the primary, so do not wait for that: answer what is in
  // flight (writes now fail with 503) for a moment, then go.
  process.on('disconnect', () => {
    writer.disconnected();
    setTimeout(() => process.exit(1), 500).unref();
    stop(1);
  });
  // Ctrl-C reaches the whole process group: the primary decides when workers stop.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => stop(0));

  const { port, s3Port } = await http.listen();
  process.send({ mkv: 'listening', port, s3Port });
}

/**
 * The settings and the credentials file's text, from the primary (an edit to the file since
 * changes nothing until a restart). Over IPC, never the environment: the settings hold the volume
 * secret, and a process's environment is readable by every process of its user.
 */
function askPrimary(): Promise<{ settings: HttpSettings; credentialsText: string }> {
  return new Promise((resolve) => {
    const take = (value: unknown) => {
      const said = value as { mkv?: string; settings?: HttpSettings; credentialsText?: string };
      if (said?.mkv !== 'settings') return;
      process.off('message', take);
      resolve({ settings: said.settings!, credentialsText: String(said.credentialsText) });
    };
    process.on('message', take);
    process.send!({ mkv: 'settings?' });
  });
}

main().catch((error: unknown) => {
  const message = (error as Error)?.message ?? String(error);
  process.stderr.write(`mkv HTTP worker: ${message}\n`);
  process.send?.({ mkv: 'failed', message }, () => process.exit(1));
  setTimeout(() => process.exit(1), 1000).unref();
});
