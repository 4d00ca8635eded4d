// mkv log dump | verify: the event log, read without the index.
import { eventToJson } from '../events/event.js';
import { SegmentLog } from '../log/segment-log.js';
import { verifyLog } from '../ops/verify-log.js';
import { logDir } from '../writer/store.js';
import { compactLog } from '../ops/compact.js';
import { parseTime, UsageError, type FlagSpecs, type FlagValues } from './args.js';

export const logFlags: FlagSpecs = {
  db: { type: 'string', help: 'the database directory' },
  'from-seq': { type: 'integer', default: 1, help: 'dump: start at this seq' },
  limit: { type: 'integer', help: 'dump: at most this many events' },
  before: { type: 'string', help: 'compact: fold the sealed segments whose events all happened before this time' },
};

function iso(time: number | undefined): string {
  return time === undefined ? '-' : new Date(time).toISOString();
}

export async function logCommand(flags: FlagValues, positional: string[]): Promise<void> {
  const db = flags.db as string | undefined;
  if (!db) throw new UsageError('--db is required');
  const [action] = positional;
  if (action === 'verify') {
    const summary = verifyLog(logDir(db));
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
    return;
  }
  if (action === 'dump') {
    const log = await SegmentLog.open(logDir(db), { readOnly: true });
    let left = (flags.limit as number | undefined) ?? Infinity;
    try {
      for await (const events of log.readFrom(flags['from-seq'] as number)) {
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
    return;
  }
  if (action === 'compact') {
    if (flags.before === undefined) throw new UsageError('compact needs --before TIME');
    const result = await compactLog(db, parseTime(flags.before as string));
    process.stdout.write(
      result.dropped === 0
        ? 'nothing to compact: no sealed segment ends before that time\n'
        : `compacted ${result.dropped} segments (${result.events} events) into a snapshot of ${result.keys} keys; the log now starts at seq ${result.firstSeq} (the history before seq ${result.untilSeq + 1} is given up)\n`,
    );
    return;
  }
  throw new UsageError('usage: mkv log dump|verify|compact --db DIR');
}
