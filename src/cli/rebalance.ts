// mkv rebalance: move every key to where placement puts it for a new volume set; --dry-run says
// what would move, moving nothing (and reads a local db beside a running master).
import { IndexStore } from '../index/index-store.js';
import { indexDir } from '../db/paths.js';
import { planRebalance, rebalanceAll } from '../ops/rebalance.js';
import { defineFlags, type Options } from './args.js';
import { dbFlag, existingDb, logAccessFlags, openToolStore, sharedFlags, toolVolumeClient } from './common-flags.js';

export const rebalanceFlags = defineFlags({
  log: sharedFlags.log,
  ...logAccessFlags,
  db: dbFlag('the database directory (the master must be stopped)'),
  volumes: { ...sharedFlags.volumes, help: 'the NEW volume set, host:port,...' },
  replicas: sharedFlags.replicas,
  subvolumes: sharedFlags.subvolumes,
  concurrency: { type: 'integer', default: 32, help: 'keys moved at once' },
  'dry-run': {
    type: 'boolean',
    default: false,
    help: 'say what would move (keys, copies, bytes, blobs leaving each volume), move nothing',
  },
  voltimeout: sharedFlags.voltimeout,
  'volume-timeout': sharedFlags['volume-timeout'],
  'volume-secret-file': sharedFlags['volume-secret-file'],
  v: sharedFlags.v,
});

/** The plan, read beside a running master from a local db (a log on JetStream is read into the tool's own db). */
async function dryRun(flags: Options<typeof rebalanceFlags>): Promise<void> {
  const { volumes, replicas, subvolumes } = flags;
  const store = flags.log ? await openToolStore(flags, 'mkv rebalance --dry-run') : undefined;
  const index = store?.index ?? IndexStore.open(indexDir(existingDb(flags.db)), { readOnly: true });
  try {
    const plan = planRebalance(index, { volumes, replicas, subvolumes });
    const lines = [
      `would move ${plan.moves} of ${plan.keys} keys: ${plan.copies} copies, ${(plan.bytes / 2 ** 20).toFixed(1)} MB; ${plan.balanced} already where placement puts them`,
      ...Object.entries(plan.leaving).map(
        ([volume, blobs]) =>
          `  ${volume}: ${blobs} blobs would leave it${volumes.includes(volume.replace(/\/sv[0-9A-F]{2}$/i, '')) ? '' : ' (not in --volumes: emptied)'}`,
      ),
      ...(plan.blocked > 0
        ? [`${plan.blocked} keys would be reported failed now (a write pending, a DELETE unfinished, an overwrite in flight)`]
        : []),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    if (store) await store.close();
    else await index.close();
  }
}

export async function rebalanceCommand(flags: Options<typeof rebalanceFlags>): Promise<void> {
  if (flags['dry-run']) return dryRun(flags);
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
