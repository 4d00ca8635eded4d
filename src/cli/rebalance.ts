// mkv rebalance: move every key to where placement puts it for a new volume set.
import { rebalanceAll } from '../ops/rebalance.js';
import { createLogger } from '../logger.js';
import { VolumeClient } from '../volumes/client.js';
import { openStore } from '../db/store.js';
import { UsageError, type FlagSpecs, type FlagValues } from './args.js';
import { secretOption, serverFlags } from './server.js';

export const rebalanceFlags: FlagSpecs = {
  log: { type: 'string', default: '', help: 'the log on NATS JetStream (nats://host:port[,...][/STREAM]) instead of DB/log; DB holds this tool\'s own index of it' },
  db: { type: 'string', help: 'the database directory (the master must be stopped)' },
  volumes: { type: 'list', help: 'the NEW volume set, host:port,...' },
  replicas: serverFlags.replicas!,
  subvolumes: serverFlags.subvolumes!,
  concurrency: { type: 'integer', default: 32, help: 'keys moved at once' },
  voltimeout: serverFlags.voltimeout!,
  'volume-secret-file': serverFlags['volume-secret-file']!,
  v: serverFlags.v!,
};

export async function rebalanceCommand(flags: FlagValues): Promise<void> {
  const db = flags.db as string | undefined;
  const volumes = flags.volumes as string[] | undefined;
  if (!db) throw new UsageError('--db is required');
  if (!volumes || volumes.length === 0) throw new UsageError('--volumes (the new volume set) is required');
  const logger = createLogger({ verbose: flags.v as boolean });
  const store = await openStore(db, { logger, purpose: 'mkv rebalance', ...(flags.log ? { logUrl: flags.log as string } : {}) });
  const client = new VolumeClient({ headTimeoutMs: flags.voltimeout as number, ...secretOption(flags) });
  try {
    const report = await rebalanceAll(store.index, store.writer, client, { volumes, replicas: flags.replicas as number, subvolumes: flags.subvolumes as number }, {
      concurrency: flags.concurrency as number,
    });
    const lines = [
      ...report.failed.slice(0, 1000).map(({ key, reason }) => `failed ${key}: ${reason}`),
      ...report.staleLeft.slice(0, 1000).map(({ key, volume }) => `moved ${key}, but its old copy on ${volume} could not be deleted`),
    ];
    if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
    if (report.failed.length > 0) {
      process.stderr.write(`${report.failed.length} keys failed; fix what the reasons say and run the same command again\n`);
      process.exitCode = 1;
    }
  } finally {
    await store.close();
    await client.close();
  }
}
