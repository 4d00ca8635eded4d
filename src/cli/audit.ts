// mkv audit: who did what, straight from the log (DB/log, or a stream with --log): the events in
// a time window, of one access key, under a key prefix, of some kinds of change, as JSON lines
// (mkv log dump's form), with a progress line on a terminal.
import { eventToJson } from '../events/event.js';
import type { EventLog } from '../log/event-log.js';
import { JetStreamLog } from '../log/jetstream-log.js';
import { SegmentLog } from '../log/segment-log.js';
import { logDir } from '../db/paths.js';
import { auditEvents, changeTypes, type AuditFilter } from '../ops/audit.js';
import { createProgress } from '../ops/progress.js';
import { defineFlags, parseTime, UsageError, type Options } from './args.js';
import { existingDb, logAccess, logAccessFlags, sharedFlags } from './common-flags.js';

export const auditFlags = defineFlags({
  db: { type: 'string', help: 'the database directory whose log (DB/log) is read' },
  log: { ...sharedFlags.log, help: 'the log on NATS JetStream instead of DB/log (nats://[USER:PASSWORD@]host:port[,...][/STREAM])' },
  ...logAccessFlags,
  since: { type: 'string', help: 'events appended at or after this time (RFC 3339, or milliseconds since the epoch)' },
  until: { type: 'string', help: 'events appended at or before this time' },
  who: {
    type: 'string',
    help: 'events caused by this access key (anonymous: requests signed by none); events of a server without --credentials name nobody',
  },
  prefix: { type: 'string', help: 'events of keys that start with this (/bucket/ for a bucket; a bucket event: the bucket name)' },
  change: { type: 'list', help: 'events of these kinds of change (KeyDeleted, ObjectCommitted, KeyUnlinked, ...)' },
});

type AuditOptions = Options<typeof auditFlags>;

/** A time given as RFC 3339 or as milliseconds since the epoch. */
function timeOf(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (/^\d+$/.test(text)) return Number(text);
  try {
    return parseTime(text);
  } catch {
    throw new UsageError(
      `--${flag} ${JSON.stringify(text)} is not a time: give RFC 3339 (2026-12-06T09:00:00Z) or milliseconds since the epoch`,
    );
  }
}

function filterOf(flags: AuditOptions): AuditFilter {
  const filter: AuditFilter = { since: timeOf('since', flags.since), until: timeOf('until', flags.until) };
  if (filter.since !== undefined && filter.until !== undefined && filter.since > filter.until)
    throw new UsageError(`--since ${flags.since} is after --until ${flags.until}: no event is in that window`);
  if (flags.who !== undefined) filter.who = flags.who;
  if (flags.prefix !== undefined) filter.prefix = flags.prefix;
  if (flags.change !== undefined && flags.change.length > 0) filter.changes = changeTypes(flags.change);
  return filter;
}

async function openLog(flags: AuditOptions): Promise<EventLog> {
  if (flags.log) return JetStreamLog.open({ url: flags.log, access: logAccess(flags) });
  if (!flags.db) throw new UsageError('mkv audit needs --db DIR (or --log nats://...)');
  logAccess(flags); // a --log-* file without --log is refused, not ignored
  return SegmentLog.open(logDir(existingDb(flags.db)), { readOnly: true });
}

export async function auditCommand(flags: AuditOptions): Promise<void> {
  const filter = filterOf(flags);
  const log = await openLog(flags);
  const progress = createProgress({
    label: 'audit',
    unit: 'events',
    total: Math.max(0, log.lastSeq - log.firstSeq + 1),
    quiet: !process.stderr.isTTY,
  });
  let printed = 0;
  try {
    for await (const events of auditEvents(log, filter, (count) => progress.add(count))) {
      printed += events.length;
      const text = events.map((event) => JSON.stringify(eventToJson(event))).join('\n') + '\n';
      if (!process.stdout.write(text)) await new Promise((resolve) => process.stdout.once('drain', resolve));
    }
    progress.finish(`audit: ${printed} matching events of ${log.location}`);
  } finally {
    await log.close();
  }
}
