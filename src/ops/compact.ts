// mkv log compact --before TIME: bound the log. The sealed segments whose events all happened
// before TIME are replaced by one snapshot segment holding an ObjectSnapshot per key (live,
// unlinked or pending) as it stood after them, and a BucketSnapshot per bucket created then (and
// not deleted since); the history of those events is given up.
//
//   [seg 1][seg 2][seg 3][seg 4 (newest)]     events of 1–3 all before TIME
//   [snapshot: K events, seq N-K+1 … N][seg 4]   N = seg 4's first seq - 1; <log>/BASE = N-K+1
//
// The swap is journaled (<log>/COMPACTING): a crash at any point is finished on the next open.
// The index is then rebuilt from the new log, so index == replay(log), history included.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { encodeEvent, eventSchemaJson, type LogEvent } from '../events/event.js';
import { toState } from '../index/evolve.js';
import { IndexStore } from '../index/index-store.js';
import { encodeBlock, encodeHeader } from '../log/avro-container.js';
import { writeFileDurably } from '../durable-files.js';
import { SegmentLog } from '../log/segment-log.js';
import { finishCompaction, segmentName } from '../log/segments.js';
import { lockDb } from '../db/lock.js';
import { catchUp } from '../db/store.js';
import { logDir } from '../db/paths.js';
import { rebuildFromLog } from './replay.js';

export interface CompactResult {
  /** Segments replaced by the snapshot. */
  dropped: number;
  /** Events those segments held. */
  events: number;
  /** Keys in the snapshot. */
  keys: number;
  /** The log now starts here. */
  firstSeq: number;
  /** The snapshot stands for every event up to here. */
  untilSeq: number;
}

const EVENTS_PER_BLOCK = 1000;

type Segments = ReturnType<SegmentLog['listSegments']>;

/** Where a compaction before `before` cuts: the sealed segments whose events all came before it (the newest always stays). */
async function cutBefore(log: SegmentLog, before: number): Promise<{ segments: Segments; dropped: Segments; untilSeq: number }> {
  const segments = log.listSegments();
  let firstAfter = log.lastSeq + 1;
  search: for await (const events of log.readFrom(log.firstSeq)) {
    for (const event of events) {
      if (event.time > before) {
        firstAfter = event.seq;
        break search;
      }
    }
  }
  const kept = segments.findIndex((segment, i) => i === segments.length - 1 || segments[i + 1]!.firstSeq > firstAfter);
  return { segments, dropped: segments.slice(0, kept), untilSeq: kept > 0 ? segments[kept]!.firstSeq - 1 : log.firstSeq - 1 };
}

function eventsIn(segments: Segments, count: number, untilSeq: number): number {
  return segments.slice(0, count).reduce((sum, segment, i) => sum + ((segments[i + 1]?.firstSeq ?? untilSeq + 1) - segment.firstSeq), 0);
}

/** What compacting before `before` would give up (mkv log compact --dry-run): read beside a running master, nothing changed. */
export async function planCompaction(
  db: string,
  before: number,
): Promise<{ dropped: number; events: number; fromSeq: number; untilSeq: number }> {
  const log = await SegmentLog.open(logDir(db), { readOnly: true });
  try {
    const { segments, dropped, untilSeq } = await cutBefore(log, before);
    return { dropped: dropped.length, events: eventsIn(segments, dropped.length, untilSeq), fromSeq: log.firstSeq, untilSeq };
  } finally {
    await log.close();
  }
}

/**
 * Folds the sealed segments that end before `before` into one snapshot segment of the state
 * they leave (every key's and bucket's record), then rebuilds the index from the log.
 */
export async function compactLog(db: string, before: number, options: { quiet?: boolean } = {}): Promise<CompactResult> {
  const dir = logDir(db);
  const unlock = lockDb(db, 'mkv log compact');
  let result: CompactResult;
  try {
    const log = await SegmentLog.open(dir);
    try {
      const { segments, dropped, untilSeq } = await cutBefore(log, before);
      if (dropped.length === 0) return { dropped: 0, events: 0, keys: 0, firstSeq: log.firstSeq, untilSeq: log.firstSeq - 1 };
      const snapshot = await snapshotAt(db, log, untilSeq);
      const firstSeq = untilSeq - snapshot.length + 1;
      // Write the snapshot aside, then journal the swap and carry it out.
      const temporary = writeSnapshotSegment(dir, snapshot);
      await log.close();
      const journal = {
        drop: dropped.map((segment) => basename(segment.path)),
        snapshot: basename(temporary),
        final: segmentName(firstSeq),
        firstSeq,
      };
      writeFileDurably(join(dir, 'COMPACTING'), JSON.stringify(journal));
      finishCompaction(dir);
      result = {
        dropped: dropped.length,
        events: eventsIn(segments, dropped.length, untilSeq),
        keys: snapshot.filter((event) => event.change.type === 'ObjectSnapshot').length,
        firstSeq,
        untilSeq,
      };
    } finally {
      await log.close();
    }
  } finally {
    unlock();
  }
  // History before the snapshot is gone from the log: rebuild the index so it says the same.
  await rebuildFromLog(db, { quiet: options.quiet ?? false });
  return result;
}

/**
 * The state after `untilSeq` as snapshot events, numbered to end at untilSeq and stamped with
 * its time: folded from the log (and the previous snapshot, if any) into a scratch index.
 */
async function snapshotAt(db: string, log: SegmentLog, untilSeq: number): Promise<LogEvent[]> {
  let untilTime = 0;
  for await (const events of log.readFrom(untilSeq, untilSeq)) untilTime = events.at(-1)!.time;
  const scratchDir = join(db, 'compact-index-tmp');
  rmSync(scratchDir, { recursive: true, force: true });
  const scratch = IndexStore.open(scratchDir);
  try {
    await catchUp(log, scratch, { untilSeq });
    const buckets = [...scratch.bucketEntries()];
    let seq = untilSeq - scratch.count() - buckets.length + 1;
    const cause = { origin: 'compact', client: null };
    const snapshot: LogEvent[] = [...scratch.entries()].map(([key, record]) => ({
      seq: seq++,
      time: untilTime,
      key,
      cause,
      change: { type: 'ObjectSnapshot', state: toState(record), lastSeq: record.seq, lastTime: record.time },
    }));
    for (const [name, record] of buckets)
      snapshot.push({
        seq: seq++,
        time: untilTime,
        key: name,
        cause,
        change: { type: 'BucketSnapshot', created: record.created, lastSeq: record.seq, location: record.location, owner: record.owner },
      });
    return snapshot;
  } finally {
    await scratch.close();
    rmSync(scratchDir, { recursive: true, force: true });
  }
}

/** Writes `snapshot` as a segment beside the log (snapshot.avro.tmp), fsync'd; returns its path. */
function writeSnapshotSegment(dir: string, snapshot: LogEvent[]): string {
  const sync = randomBytes(16);
  const temporary = join(dir, 'snapshot.avro.tmp');
  const fd = openSync(temporary, 'w');
  try {
    writeSync(fd, encodeHeader(eventSchemaJson, sync));
    for (let i = 0; i < snapshot.length; i += EVENTS_PER_BLOCK)
      writeSync(fd, encodeBlock(snapshot.slice(i, i + EVENTS_PER_BLOCK).map(encodeEvent), sync));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return temporary;
}
