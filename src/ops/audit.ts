// mkv audit: the events of the log that match a filter (a time window, who, a key prefix, the
// kinds of change), read straight from the log, as the log holds them.
//
// A local log is read block by block: a block whose next block starts before --since is passed
// over by its first event's time alone, and the read stops at the first block that starts after
// --until (a log's times only grow, as a point-in-time rebuild also takes them). The events of
// the blocks in the window are skimmed (time, key, who, kind of change) and only those that
// match are decoded whole.
import { changeBranches, type LogEvent } from '../events/event.js';
import type { EventLog } from '../log/event-log.js';
import { decodeLong } from '../log/avro-container.js';
import { SegmentLog } from '../log/segment-log.js';
import { checkBlockEnd, decodeBlockEvents, type EncodedBlock } from '../log/segments.js';
import { skimEvent } from '../events/projected.js';
import { UsageError } from '../errors.js';

export interface AuditFilter {
  /** Events appended at or after this time (ms since the epoch). */
  since?: number;
  /** Events appended at or before this time. */
  until?: number;
  /** Events caused by this access key ("anonymous" for requests signed by none). */
  who?: string;
  /** Events of keys that start with this (a bucket event's key is the bucket's name). */
  prefix?: string;
  /** Events of these change types (KeyDeleted, ObjectCommitted, ...). */
  changes?: ReadonlySet<string>;
}

/** The change types `names` (comma-separated, any case) name; a name that is none is refused, listing them. */
export function changeTypes(names: string[]): Set<string> {
  const known = new Map(changeBranches.map(({ type }) => [type.toLowerCase(), type]));
  return new Set(
    names.map((name) => {
      const type = known.get(name.toLowerCase());
      if (!type) throw new UsageError(`--change ${name}: not a change; one of ${[...known.values()].join(', ')}`);
      return type;
    }),
  );
}

/** What a filter looks at in an event. */
interface Facts {
  time: number;
  key: string;
  who: string | null | undefined;
  type: string;
}

function matches(facts: Facts, filter: AuditFilter): boolean {
  return (
    (filter.since === undefined || facts.time >= filter.since) &&
    (filter.until === undefined || facts.time <= filter.until) &&
    (filter.who === undefined || facts.who === filter.who) &&
    (filter.prefix === undefined || facts.key.startsWith(filter.prefix)) &&
    (filter.changes === undefined || filter.changes.has(facts.type))
  );
}

function eventMatches(event: LogEvent, filter: AuditFilter): boolean {
  return matches({ time: event.time, key: event.key, who: event.cause.who, type: event.change.type }, filter);
}

/**
 * The events of a block that match. A block of this build's schema is skimmed by hand (as the
 * projector reads it) and only what matches is decoded whole; an older schema's goes through
 * its resolver, every event.
 */
function keptOf(block: EncodedBlock, filter: AuditFilter): LogEvent[] {
  const { records, count, path, offset, reader } = block;
  if (!reader.current) return decodeBlockEvents(records, count, path, offset, reader).filter((event) => eventMatches(event, filter));
  const kept: LogEvent[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const skim = skimEvent(records, at);
    if (matches(skim, filter)) kept.push(reader.decode(records, at).event);
    at = skim.end;
  }
  checkBlockEnd(at, records, count, path, offset);
  return kept;
}

/** The time of a block's first event: its second field, after the seq. */
function firstTime(block: EncodedBlock): number {
  const seq = decodeLong(block.records, 0);
  const time = seq && decodeLong(block.records, seq.end);
  if (!time) throw new Error(`${block.path}: block at byte ${block.offset} holds no whole first event`);
  return time.value;
}

/**
 * The log's events that match `filter`, in order, in batches. `onRead(n)` is told of every event
 * read or passed over, for a progress line.
 */
export async function* auditEvents(log: EventLog, filter: AuditFilter, onRead: (count: number) => void): AsyncGenerator<LogEvent[]> {
  const batches = log instanceof SegmentLog ? windowOfBlocks(log, filter, onRead) : windowOfEvents(log, filter, onRead);
  for await (const kept of batches) if (kept.length > 0) yield kept;
}

async function* windowOfBlocks(log: SegmentLog, filter: AuditFilter, onRead: (count: number) => void): AsyncGenerator<LogEvent[]> {
  let held: EncodedBlock | undefined;
  for await (const block of log.readBlocks(log.firstSeq)) {
    const start = firstTime(block);
    if (held) {
      // Every event of the held block came before this one's first: before --since, none is wanted.
      if (filter.since === undefined || start >= filter.since) yield keptOf(held, filter);
      onRead(held.count);
    }
    if (filter.until !== undefined && start > filter.until) return;
    held = block;
  }
  if (held) {
    yield keptOf(held, filter);
    onRead(held.count);
  }
}

async function* windowOfEvents(log: EventLog, filter: AuditFilter, onRead: (count: number) => void): AsyncGenerator<LogEvent[]> {
  for await (const events of log.readFrom(log.firstSeq)) {
    onRead(events.length);
    yield events.filter((event) => eventMatches(event, filter));
    if (filter.until !== undefined && events.at(-1)!.time > filter.until) return;
  }
}
