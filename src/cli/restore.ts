// mkv restore --db DIR --unlinked-since TIME: undo the unlinks made since then.
import { restoreUnlinked } from '../ops/restore.js';
import { parseTime, UsageError, type FlagSpecs, type FlagValues } from './args.js';

export const restoreFlags: FlagSpecs = {
  db: { type: 'string', help: 'the database directory (the master must be stopped)' },
  'unlinked-since': { type: 'string', help: 'restore keys unlinked at or after this time, e.g. 2026-11-20T12:00:00Z' },
  'dry-run': { type: 'boolean', default: false, help: 'print what would be restored, change nothing' },
};

export async function restoreCommand(flags: FlagValues): Promise<void> {
  const db = flags.db as string | undefined;
  if (!db) throw new UsageError('--db is required');
  if (flags['unlinked-since'] === undefined) throw new UsageError('--unlinked-since TIME is required');
  const since = parseTime(flags['unlinked-since'] as string);
  const restored = await restoreUnlinked(db, since, { dryRun: flags['dry-run'] as boolean });
  for (const key of restored) process.stdout.write(`${key}\n`);
  process.stderr.write(`${flags['dry-run'] ? 'would restore' : 'restored'} ${restored.length} keys unlinked since ${new Date(since).toISOString()}\n`);
}
