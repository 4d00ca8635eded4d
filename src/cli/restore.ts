// mkv restore --db DIR --unlinked-since TIME: undo the unlinks made since then.
import { restoreUnlinked } from '../ops/restore.js';
import { defineFlags, parseTime, type Options } from './args.js';
import { dbFlag, existingDb } from './common-flags.js';

export const restoreFlags = defineFlags({
  db: dbFlag('the database directory (the master must be stopped)'),
  'unlinked-since': { type: 'string', required: true, help: 'restore keys unlinked at or after this time, e.g. 2026-11-20T12:00:00Z' },
  'dry-run': { type: 'boolean', default: false, help: 'print what would be restored, change nothing' },
});

export async function restoreCommand(flags: Options<typeof restoreFlags>): Promise<void> {
  const since = parseTime(flags['unlinked-since']);
  const restored = await restoreUnlinked(existingDb(flags.db), since, { dryRun: flags['dry-run'] });
  for (const key of restored) process.stdout.write(`${key}\n`);
  process.stderr.write(
    `${flags['dry-run'] ? 'would restore' : 'restored'} ${restored.length} keys unlinked since ${new Date(since).toISOString()}\n`,
  );
}
