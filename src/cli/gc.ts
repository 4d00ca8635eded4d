// mkv gc --db DIR --unlinked-before TIME [--pending-older-than 1h] [--dry-run]
import { defaultConfig } from '../keys/config.js';
import { collectGarbage } from '../ops/gc.js';
import { createLogger } from '../logger.js';
import { VolumeClient } from '../volumes/client.js';
import { openStore } from '../db/store.js';
import { parseTime, UsageError, type FlagSpecs, type FlagValues } from './args.js';
import { secretOption, serverFlags } from './server.js';

export const gcFlags: FlagSpecs = {
  log: { type: 'string', default: '', help: 'the log on NATS JetStream (nats://host:port[,...][/STREAM]) instead of DB/log; DB holds this tool\'s own index of it' },
  db: { type: 'string', help: 'the database directory (the master must be stopped)' },
  'unlinked-before': { type: 'string', help: 'hard-delete keys unlinked before this time, e.g. 2026-11-01T00:00:00Z' },
  'pending-older-than': { type: 'duration', default: '1h', help: 'clean up writes that never committed, and finish DELETEs that never did, begun longer ago than this' },
  'dry-run': { type: 'boolean', default: false, help: 'print what would be done, change nothing' },
  concurrency: { type: 'integer', default: 16, help: 'keys handled at once' },
  'volume-timeout': serverFlags['volume-timeout']!,
  'volume-secret-file': serverFlags['volume-secret-file']!,
  v: serverFlags.v!,
};

export async function gcCommand(flags: FlagValues): Promise<void> {
  const db = flags.db as string | undefined;
  if (!db) throw new UsageError('--db is required');
  const unlinkedBefore = flags['unlinked-before'] === undefined ? undefined : parseTime(flags['unlinked-before'] as string);
  const logger = createLogger({ verbose: flags.v as boolean });
  const store = await openStore(db, { logger, purpose: 'mkv gc', ...(flags.log ? { logUrl: flags.log as string } : {}) });
  const client = new VolumeClient({ requestTimeoutMs: flags['volume-timeout'] as number, ...secretOption(flags) });
  try {
    const deps = { config: { ...defaultConfig, volumes: [] }, index: store.index, writer: store.writer, volumes: client, logger };
    const report = await collectGarbage(deps, {
      ...(unlinkedBefore !== undefined ? { unlinkedBefore } : {}),
      pendingBefore: Date.now() - (flags['pending-older-than'] as number),
      dryRun: flags['dry-run'] as boolean,
      concurrency: flags.concurrency as number,
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
