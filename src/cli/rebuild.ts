// mkv rebuild: --from-log (replay, to now or to a point in time) or --scan (rescan volumes).
import { rebuildFromLog } from '../ops/replay.js';
import { rescanVolumes } from '../ops/rescan.js';
import { createLogger } from '../logger.js';
import { parseTime, UsageError, type FlagSpecs, type FlagValues } from './args.js';
import { secretOption, serverFlags } from './server.js';

export const rebuildFlags: FlagSpecs = {
  log: { type: 'string', default: '', help: 'the log on NATS JetStream (nats://host:port[,...][/STREAM]) instead of DB/log; DB holds this tool\'s own index of it' },
  db: { type: 'string', help: 'the database directory' },
  'from-log': { type: 'boolean', default: false, help: 'rebuild the index by replaying the log' },
  'until-seq': { type: 'integer', help: 'replay up to and including this seq (needs --into)' },
  until: { type: 'string', help: 'replay what was appended up to this time, e.g. 2026-11-20T12:00:00Z (needs --into)' },
  into: { type: 'string', help: 'build a separate db here (log up to the point, and its index) instead of replacing DIR/index' },
  scan: { type: 'boolean', default: false, help: "rescan the volumes, as the original's rebuild did (the default when --volumes is given and --from-log is not), recording what is found as events" },
  volumes: serverFlags.volumes!,
  replicas: serverFlags.replicas!,
  subvolumes: serverFlags.subvolumes!,
  concurrency: { type: 'integer', default: 32, help: 'directory listings in flight during a rescan' },
  'volume-secret-file': serverFlags['volume-secret-file']!,
  v: serverFlags.v!,
};

export async function rebuildCommand(flags: FlagValues): Promise<void> {
  const db = flags.db as string | undefined;
  if (!db) throw new UsageError('--db is required');
  if (flags['from-log'] && flags.scan) throw new UsageError('give one of --from-log or --scan');
  const volumes = flags.volumes as string[] | undefined;
  if (!flags['from-log'] && (!volumes || volumes.length === 0)) {
    throw new UsageError(flags.scan ? '--scan needs --volumes' : "give --volumes to rebuild the index from the volumes (the original's rebuild), or --from-log to replay the log");
  }
  if (flags['from-log']) {
    const result = await rebuildFromLog(db, {
      ...(flags['until-seq'] !== undefined ? { untilSeq: flags['until-seq'] as number } : {}),
      ...(flags.until !== undefined ? { until: parseTime(flags.until as string) } : {}),
      ...(flags.into !== undefined ? { into: flags.into as string } : {}),
      ...(flags.log ? { logUrl: flags.log as string } : {}),
    });
    process.stdout.write(`rebuilt ${result.db}/index: ${result.keys} keys from ${result.events} events (up to seq ${result.lastSeq}) in ${result.seconds.toFixed(2)} s\n`);
    if (flags.into) process.stdout.write(`serve it with: mkv server --db ${result.db} --read-only --volumes ...\n`);
    return;
  }
  const report = await rescanVolumes(db, {
    volumes: volumes!,
    replicas: flags.replicas as number,
    subvolumes: flags.subvolumes as number,
    concurrency: flags.concurrency as number,
    logger: createLogger({ verbose: flags.v as boolean }),
    ...(flags.log ? { logUrl: flags.log as string } : {}),
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
