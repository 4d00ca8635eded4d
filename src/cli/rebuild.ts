// mkv rebuild: --from-log (replay, to now or to a point in time) or --scan (rescan volumes).
import { rebuildFromLog } from '../ops/replay.js';
import { rescanVolumes } from '../ops/rescan.js';
import { createLogger } from '../logger.js';
import { defineFlags, originalFlags, parseTime, UsageError, type Options } from './args.js';
import { dbFlag, existingDb, logAccessFlags, logStoreOptions, secretOption, sharedFlags } from './common-flags.js';

export const rebuildFlags = defineFlags({
  log: sharedFlags.log,
  ...logAccessFlags,
  db: dbFlag('the database directory'),
  'from-log': { type: 'boolean', default: false, help: 'rebuild the index by replaying the log' },
  'until-seq': { type: 'integer', help: 'replay up to and including this seq (needs --into)' },
  until: { type: 'string', help: 'replay what was appended up to this time, e.g. 2026-11-20T12:00:00Z (needs --into)' },
  into: { type: 'string', help: 'build a separate db here (log up to the point, and its index) instead of replacing DIR/index' },
  scan: {
    type: 'boolean',
    default: false,
    help: "rescan the volumes, as the original's rebuild did (the default when --volumes is given and --from-log is not), recording what is found as events",
  },
  volumes: originalFlags.volumes,
  replicas: sharedFlags.replicas,
  subvolumes: sharedFlags.subvolumes,
  concurrency: { type: 'integer', default: 32, help: 'directory listings in flight during a rescan' },
  'volume-secret-file': sharedFlags['volume-secret-file'],
  v: sharedFlags.v,
});

export async function rebuildCommand(flags: Options<typeof rebuildFlags>): Promise<void> {
  const { db, volumes } = flags;
  if (flags['from-log'] && flags.scan) throw new UsageError('give one of --from-log or --scan');
  if (!flags['from-log'] && (!volumes || volumes.length === 0)) {
    throw new UsageError(
      flags.scan
        ? '--scan needs --volumes'
        : "give --volumes to rebuild the index from the volumes (the original's rebuild), or --from-log to replay the log",
    );
  }
  if (flags['from-log']) {
    if (!flags.log) existingDb(db);
    const result = await rebuildFromLog(db, {
      ...(flags['until-seq'] !== undefined ? { untilSeq: flags['until-seq'] } : {}),
      ...(flags.until !== undefined ? { until: parseTime(flags.until) } : {}),
      ...(flags.into !== undefined ? { into: flags.into } : {}),
      ...logStoreOptions(flags),
    });
    process.stdout.write(
      `rebuilt ${result.db}/index: ${result.keys} keys from ${result.events} events (up to seq ${result.lastSeq}) in ${result.seconds.toFixed(2)} s\n`,
    );
    if (flags.into) process.stdout.write(`serve it with: mkv server --db ${result.db} --read-only --volumes ...\n`);
    return;
  }
  const report = await rescanVolumes(db, {
    volumes: volumes!,
    replicas: flags.replicas,
    subvolumes: flags.subvolumes,
    concurrency: flags.concurrency,
    logger: createLogger({ verbose: flags.v }),
    ...logStoreOptions(flags),
    ...secretOption(flags),
  });
  const lines: string[] = [];
  const list = (title: string, items: string[]) => {
    if (items.length === 0) return;
    lines.push(`${title} (${items.length}):`);
    for (const item of items.slice(0, 1000)) lines.push(`  ${item}`);
    if (items.length > 1000) lines.push(`  … and ${items.length - 1000} more`);
  };
  list('listing errors', report.listingErrors);
  list('files that are not keys (skipped)', report.notKeys);
  list('replicas that differ in size', report.sizeMismatches);
  list('keys the log saw deleted, still on a volume (not restored)', report.deletedButPresent);
  list('keys in the index that no volume holds', report.onNoVolume);
  if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
  if (report.listingErrors.length > 0) process.exitCode = 1;
}
