// mkv gc --db DIR --unlinked-before TIME [--pending-older-than 1h] [--dry-run]
import { UsageError } from '../errors.js';
import { defaultConfig } from '../config.js';
import { collectGarbage } from '../ops/gc.js';
import { retainOf } from '../db/retain.js';
import { createLogger } from '../logger.js';
import { defineFlags, parseTime, type Options } from './args.js';
import { dbFlag, logAccessFlags, openToolStore, sharedFlags, toolVolumeClient } from './common-flags.js';

export const gcFlags = defineFlags({
  log: sharedFlags.log,
  ...logAccessFlags,
  db: dbFlag('the database directory (the master must be stopped)'),
  'unlinked-before': { type: 'string', help: 'hard-delete keys unlinked before this time, e.g. 2026-11-01T00:00:00Z' },
  'pending-older-than': {
    type: 'duration',
    default: '1h',
    help: 'clean up writes that never committed, and finish DELETEs that never did, begun longer ago than this',
  },
  retain: {
    type: 'duration',
    help: "remove replaced values only once this window has passed since they were replaced (default: the server's --retain, kept in DB/RETAIN; 0 without)",
  },
  'dry-run': { type: 'boolean', default: false, help: 'print what would be done, change nothing' },
  concurrency: { type: 'integer', default: 16, help: 'keys handled at once' },
  'volume-timeout': sharedFlags['volume-timeout'],
  'volume-secret-file': sharedFlags['volume-secret-file'],
  v: sharedFlags.v,
});

export async function gcCommand(flags: Options<typeof gcFlags>): Promise<void> {
  const unlinkedBefore = flags['unlinked-before'] === undefined ? undefined : parseTime(flags['unlinked-before']);
  // A year mistyped would delete every unlinked key: a time to come is not one anything was unlinked before.
  if (unlinkedBefore !== undefined && unlinkedBefore > Date.now())
    throw new UsageError(`--unlinked-before ${flags['unlinked-before']} is in the future: give a time that has passed`);
  const store = await openToolStore(flags, 'mkv gc', flags['dry-run']);
  const client = toolVolumeClient(flags);
  try {
    const deps = {
      config: { ...defaultConfig, volumes: [], retainMs: flags.retain ?? retainOf(flags.db) },
      index: store.index,
      writer: store.writer,
      volumes: client,
      logger: createLogger({ verbose: flags.v }),
    };
    const report = await collectGarbage(deps, {
      ...(unlinkedBefore !== undefined ? { unlinkedBefore } : {}),
      pendingBefore: Date.now() - flags['pending-older-than'],
      dryRun: flags['dry-run'],
      concurrency: flags.concurrency,
    });
    const verb = flags['dry-run'] ? 'would ' : '';
    const lines = [
      ...report.deleted.map((key) => `${verb}delete ${key}`),
      ...report.aborted.map((key) => `${verb}clean up the abandoned write of ${key}`),
      ...report.stale.map((key) => `${verb}remove the replaced values of ${key}`),
      ...report.failed.map(({ key, reason }) => `failed ${key}: ${reason}`),
    ];
    if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
    if (report.failed.length > 0) process.exitCode = 1;
  } finally {
    await store.close();
    await client.close();
  }
}
