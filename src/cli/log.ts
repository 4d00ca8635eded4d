// mkv log dump | verify: the event log, read without the index.
import { eventToJson } from '../events/event.js';
import { existsSync, readdirSync } from 'node:fs';
import type { EventLog } from '../log/event-log.js';
import { JetStreamLog } from '../log/jetstream-log.js';
import { DEFAULT_SEGMENT_BYTES, SegmentLog } from '../log/segment-log.js';
import { verifyLog } from '../ops/verify-log.js';
import { logDir } from '../db/paths.js';
import { compactLog, planCompaction } from '../ops/compact.js';
import { checkPrefixOf, copyLog } from '../log/copy.js';
import { defineFlags, parseTime, UsageError, type Options } from './args.js';
import { existingDb, logAccess, logAccessFlags, sharedFlags } from './common-flags.js';

export const logFlags = defineFlags({
  db: { type: 'string', help: 'the database directory' },
  'from-seq': { type: 'integer', default: 1, help: 'dump: start at this seq' },
  limit: { type: 'integer', help: 'dump: at most this many events' },
  before: { type: 'string', help: 'compact: fold the sealed segments whose events all happened before this time' },
  'dry-run': { type: 'boolean', default: false, help: 'compact: say what would be folded (and its history given up), change nothing' },
  log: {
    ...sharedFlags.log,
    help: "the log on NATS JetStream instead of DB/log: dump's and export's source, import's target (nats://[USER:PASSWORD@]host:port[,...][/STREAM])",
  },
  ...logAccessFlags,
  into: { type: 'string', help: 'export: a new directory for the standard Avro container segments' },
});

type LogOptions = Options<typeof logFlags>;

/** The log a command reads: the stream with --log, else DB/log. */
async function openForReading(flags: LogOptions): Promise<EventLog> {
  if (flags.log) return JetStreamLog.open({ url: flags.log, access: logAccess(flags) });
  const { db } = flags;
  if (!db) throw new UsageError('--db (or --log nats://...) is required');
  return SegmentLog.open(logDir(existingDb(db)), { readOnly: true });
}

/** Copies every event of `source` into a new segment log in `into`; returns how many. */
async function exportLog(source: EventLog, into: string): Promise<number> {
  if (existsSync(into) && readdirSync(into).length > 0) throw new UsageError(`--into ${into} must be a new or empty directory`);
  if (source.firstSeq > 1 && source.lastSeq >= source.firstSeq) {
    throw new UsageError(`the log starts at seq ${source.firstSeq} (compacted): export copies whole logs only`);
  }
  await copyLog(source, into);
  return source.lastSeq;
}

function iso(time: number | undefined): string {
  return time === undefined ? '-' : new Date(time).toISOString();
}

/** mkv log ACTION: each action a function of its own. */
const ACTIONS: Record<string, (flags: LogOptions) => Promise<void>> = {
  export: exportCommand,
  import: importCommand,
  dump: dumpCommand,
  verify: verifyCommand,
  compact: compactCommand,
};

export async function logCommand(flags: LogOptions, positional: string[]): Promise<void> {
  const [action] = positional;
  logAccess(flags); // a --log-* file without --log is refused, not ignored
  const run = action === undefined ? undefined : ACTIONS[action];
  if (!run) throw new UsageError('usage: mkv log dump|verify|compact|export|import --db DIR');
  await run(flags);
}

/** mkv log export: the log (local, or a stream) as standard Avro container files in a new directory. */
async function exportCommand(flags: LogOptions): Promise<void> {
  if (!flags.into) throw new UsageError('export needs --into DIR');
  const source = await openForReading(flags);
  try {
    const events = await exportLog(source, flags.into);
    process.stdout.write(`exported ${events} events from ${source.location} into ${flags.into} (standard Avro container files)\n`);
  } finally {
    await source.close();
  }
}

/** mkv log import: a local log into a JetStream stream, going on after what an import that stopped copied. */
async function importCommand(flags: LogOptions): Promise<void> {
  if (!flags.log || !flags.db) throw new UsageError('import needs --db DIR (the local log) and --log nats://... (the stream)');
  const source = await SegmentLog.open(logDir(existingDb(flags.db)), { readOnly: true });
  const target = await JetStreamLog.open({ url: flags.log, access: logAccess(flags) });
  try {
    if (source.firstSeq > 1 && source.lastSeq >= source.firstSeq)
      throw new UsageError(`the log starts at seq ${source.firstSeq} (compacted): import copies whole logs only`);
    // A stream that already holds the beginning of this log (an import that stopped) goes on
    // after it; any other stream is another cluster's log, never merged into.
    await checkPrefixOf(source, target);
    const from = target.lastSeq + 1;
    let imported = 0;
    for await (const batch of source.readFrom(from)) {
      await target.importEvents(batch);
      imported += batch.length;
    }
    process.stdout.write(
      `imported ${imported} events (seq ${from} to ${source.lastSeq}) into ${target.location}; start the masters with --log ${target.location}\n`,
    );
  } finally {
    await target.close();
    await source.close();
  }
}

/** mkv log dump: events as JSON lines, from --from-seq, at most --limit. */
async function dumpCommand(flags: LogOptions): Promise<void> {
  const log = await openForReading(flags);
  let left = flags.limit ?? Infinity;
  try {
    for await (const events of log.readFrom(flags['from-seq'])) {
      const lines: string[] = [];
      for (const event of events) {
        if (left-- <= 0) break;
        lines.push(JSON.stringify(eventToJson(event)));
      }
      if (lines.length > 0 && !process.stdout.write(lines.join('\n') + '\n')) {
        await new Promise((resolve) => process.stdout.once('drain', resolve));
      }
      if (left <= 0) break;
    }
  } finally {
    await log.close();
  }
}

/** The database directory a local-log action works on (--db), which must exist. */
function dbOf(flags: LogOptions): string {
  if (!flags.db) throw new UsageError('--db is required: the database directory');
  return existingDb(flags.db);
}

/** mkv log verify: every block of every segment checked; exit code 1 when any is damaged. */
async function verifyCommand(flags: LogOptions): Promise<void> {
  const summary = verifyLog(logDir(dbOf(flags)));
  const out = [
    `segments ${summary.segments}, blocks ${summary.blocks}, events ${summary.events}, ${summary.bytes} bytes`,
    `first seq ${summary.firstSeq ?? '-'} at ${iso(summary.firstTime)}, last seq ${summary.lastSeq ?? '-'} at ${iso(summary.lastTime)}`,
    `problems: ${summary.problems.length}`,
    ...summary.problems.map((problem) => `  ${problem}`),
  ];
  if (summary.problems.length > 0) {
    out.push(
      'A torn tail of the newest segment is cut off when the master starts; damage elsewhere needs a copy of the log',
      '(or mkv rebuild --scan to recover the keys from the volumes).',
    );
    process.exitCode = 1;
  }
  process.stdout.write(out.join('\n') + '\n');
}

/** mkv log compact --before TIME: the sealed segments before it folded into a snapshot (or, --dry-run, what would be). */
async function compactCommand(flags: LogOptions): Promise<void> {
  const db = dbOf(flags);
  if (flags.before === undefined) throw new UsageError('compact needs --before TIME');
  if (flags['dry-run']) {
    const plan = await planCompaction(db, parseTime(flags.before));
    process.stdout.write(
      plan.dropped === 0
        ? 'would compact nothing: no sealed segment ends before that time\n'
        : `would compact ${plan.dropped} segments (${plan.events} events, seq ${plan.fromSeq} to ${plan.untilSeq}) into a snapshot: the history of those events would be given up\n`,
    );
    return;
  }
  const result = await compactLog(db, parseTime(flags.before));
  process.stdout.write(
    result.dropped === 0
      ? `nothing to compact: no sealed segment ends before that time (a segment is sealed when it reaches ${DEFAULT_SEGMENT_BYTES / 2 ** 20} MB, or when a master starts writing after a restart; the one being written is never compacted)\n`
      : `compacted ${result.dropped} segments (${result.events} events) into a snapshot of ${result.keys} keys; the log now starts at seq ${result.firstSeq} (the history before seq ${result.untilSeq + 1} is given up)\n`,
  );
}
