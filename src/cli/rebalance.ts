// mkv rebalance: move every key to where placement puts it for a new volume set.
import { rebalanceAll } from '../ops/rebalance.js';
import { defineFlags, type Options } from './args.js';
import { dbFlag, logAccessFlags, openToolStore, sharedFlags, toolVolumeClient } from './common-flags.js';

export const rebalanceFlags = defineFlags({
  log: sharedFlags.log,
  ...logAccessFlags,
  db: dbFlag('the database directory (the master must be stopped)'),
  volumes: { ...sharedFlags.volumes, help: 'the NEW volume set, host:port,...' },
  replicas: sharedFlags.replicas,
  subvolumes: sharedFlags.subvolumes,
  concurrency: { type: 'integer', default: 32, help: 'keys moved at once' },
  voltimeout: sharedFlags.voltimeout,
  'volume-timeout': sharedFlags['volume-timeout'],
  'volume-secret-file': sharedFlags['volume-secret-file'],
  v: sharedFlags.v,
});

export async function rebalanceCommand(flags: Options<typeof rebalanceFlags>): Promise<void> {
  const store = await openToolStore(flags, 'mkv rebalance');
  const client = toolVolumeClient(flags);
  try {
    const { volumes, replicas, subvolumes, concurrency } = flags;
    const report = await rebalanceAll(store.index, store.writer, client, { volumes, replicas, subvolumes }, { concurrency });
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
