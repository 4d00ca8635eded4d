// mkv rebuild --from-log: the index thrown away and rebuilt from the log, to now or to a point
// in time (--until-seq N, --until TIME) into a separate db directory.
//
//   DIR/log ──replay──▶ DIR/index.rebuild-<pid> ──rename──▶ DIR/index          (to now, in place)
//   DIR/log ──copy ≤ N──▶ OUT/log ──replay──▶ OUT/index                          (point in time)
//
// An interrupted in-place rebuild leaves at worst no index; the next start replays the whole log.
import { existsSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MkvError, UsageError } from '../errors.js';
import { IndexStore } from '../index/index-store.js';
import { copyLog } from '../log/copy.js';
import type { EventLog } from '../log/event-log.js';
import { JetStreamLog } from '../log/jetstream-log.js';
import { parseNatsUrl, type NatsAccess } from '../log/nats-connection.js';
import { SegmentLog } from '../log/segment-log.js';
import { lockDb } from '../db/lock.js';
import { catchUp } from '../db/store.js';
import { indexDir, logDir } from '../db/paths.js';
import { createProgress } from './progress.js';

export interface ReplayOptions {
  /** Replay up to and including this seq. */
  untilSeq?: number;
  /** Replay the events appended at or before this instant (ms since the epoch). */
  until?: number;
  /** Build a separate db here instead of replacing DIR/index. */
  into?: string;
  /** No progress line (tests, benchmarks). */
  quiet?: boolean;
  /** The log is this JetStream stream (nats://...), not DB/log. */
  logUrl?: string;
  /** With logUrl: the files of its credentials and TLS. */
  logAccess?: NatsAccess;
}

export interface ReplayResult {
  db: string;
  events: number;
  lastSeq: number;
  lastTime: number | undefined;
  keys: number;
  seconds: number;
}

/**
 * The earliest point a log can be rebuilt to: 0 (its start) for a log that was never compacted;
 * else the last event of the snapshot a compaction left at its start, which stands for every
 * event before it (their history, and every point among them, given up).
 */
export async function earliestPoint(log: EventLog): Promise<{ seq: number; time: number | undefined }> {
  const base = log.base();
  let point: { seq: number; time: number | undefined } = { seq: base - 1, time: undefined };
  if (base <= 1 || log.lastSeq < base) return point;
  for await (const events of log.readFrom(base)) {
    for (const event of events) {
      if (event.change.type !== 'ObjectSnapshot' && event.change.type !== 'BucketSnapshot') return point;
      point = { seq: event.seq, time: event.time };
    }
  }
  return point;
}

/** The seq a point-in-time rebuild goes to, checked against what the log holds: a point it does not hold is refused. */
async function pointToRebuild(log: EventLog, options: ReplayOptions): Promise<number> {
  const earliest = await earliestPoint(log);
  const iso = (time: number) => new Date(time).toISOString();
  const folded = () =>
    new UsageError(
      `the log holds no point before seq ${earliest.seq}${earliest.time === undefined ? '' : ` (${iso(earliest.time)})`}: ` +
        `mkv log compact folded the events before it into a snapshot. The earliest point it can rebuild: --until-seq ${earliest.seq}` +
        (earliest.time === undefined ? '' : ` or --until ${iso(earliest.time)}`),
    );
  let untilSeq = log.lastSeq;
  if (options.untilSeq !== undefined) {
    if (options.untilSeq > log.lastSeq)
      throw new UsageError(
        `--until-seq ${options.untilSeq}: the log ends at seq ${log.lastSeq} (without --until-seq and --until, --into gets all of it)`,
      );
    if (options.untilSeq < earliest.seq) throw folded();
    untilSeq = options.untilSeq;
  }
  if (options.until !== undefined) {
    if (earliest.time !== undefined && options.until < earliest.time) throw folded();
    untilSeq = Math.min(untilSeq, await seqAtTime(log, options.until, Math.max(earliest.seq, log.firstSeq)));
  }
  return untilSeq;
}

/** The seq of the last event appended at or before `until`, 0 if none. */
async function seqAtTime(log: EventLog, until: number, fromSeq = 1): Promise<number> {
  let seq = fromSeq - 1;
  for await (const events of log.readFrom(fromSeq)) {
    for (const event of events) {
      if (event.time > until) return seq;
      seq = event.seq;
    }
  }
  return seq;
}

async function replayInto(log: EventLog, index: IndexStore, untilSeq: number, quiet: boolean): Promise<number> {
  const progress = createProgress({ label: 'replay', unit: 'events', total: untilSeq - index.checkpoint, quiet });
  const started = Date.now();
  const applied = await catchUp(log, index, { untilSeq, onBatch: (count) => progress.add(count) });
  const seconds = (Date.now() - started) / 1000;
  progress.finish(`replayed ${applied} events in ${seconds.toFixed(2)} s (${Math.round(applied / Math.max(seconds, 1e-3))} events/s)`);
  return applied;
}

export async function rebuildFromLog(db: string, options: ReplayOptions = {}): Promise<ReplayResult> {
  const started = Date.now();
  const pointInTime = options.untilSeq !== undefined || options.until !== undefined;
  if (!options.logUrl && !existsSync(logDir(db))) throw new UsageError(`${logDir(db)} does not exist: nothing to replay`);
  if (pointInTime && !options.into) {
    throw new UsageError('a point-in-time rebuild needs --into OUT: it never overwrites the live db');
  }
  if (options.into) return rebuildInto(db, options.into, options, started);

  const unlock = lockDb(db, 'mkv rebuild');
  try {
    const log: EventLog = options.logUrl
      ? await JetStreamLog.open({ url: options.logUrl, access: options.logAccess ?? {} })
      : await SegmentLog.open(logDir(db));
    const scratch = `${indexDir(db)}.rebuild-${process.pid}`;
    rmSync(scratch, { recursive: true, force: true });
    const index = IndexStore.open(scratch);
    let events: number;
    let keys: number;
    try {
      events = await replayInto(log, index, log.lastSeq, options.quiet ?? false);
      keys = index.count();
    } finally {
      await index.close();
      await log.close();
    }
    rmSync(indexDir(db), { recursive: true, force: true });
    renameSync(scratch, indexDir(db));
    for (const name of readdirSync(db)) {
      if (name.startsWith('index.rebuild-')) rmSync(join(db, name), { recursive: true, force: true });
    }
    return { db, events, lastSeq: log.lastSeq, lastTime: undefined, keys, seconds: (Date.now() - started) / 1000 };
  } finally {
    unlock();
  }
}

async function rebuildInto(db: string, into: string, options: ReplayOptions, started: number): Promise<ReplayResult> {
  if (resolve(into) === resolve(db)) throw new UsageError('--into must be another directory than --db');
  const existed = existsSync(into);
  if (existed && readdirSync(into).length > 0) throw new UsageError(`${into} is not empty; give a new directory`);
  // The source may be served by a running master: read it without locking or truncating.
  const source: EventLog = options.logUrl
    ? await JetStreamLog.open({ url: options.logUrl, access: options.logAccess ?? {} })
    : await SegmentLog.open(logDir(db), { readOnly: true });
  let untilSeq: number;
  try {
    untilSeq = await pointToRebuild(source, options);
    try {
      await copyLog(source, logDir(into), untilSeq);
    } catch (error) {
      clearOut(into, existed);
      throw error;
    }
  } finally {
    await source.close();
  }
  try {
    return await replayCopy(db, into, untilSeq, options, started);
  } catch (error) {
    // Nothing half-built is left behind: OUT is as it was, new or empty.
    clearOut(into, existed);
    throw error;
  }
}

/** Empties OUT again (or removes it, when the rebuild made it). */
function clearOut(into: string, existed: boolean): void {
  if (!existed) rmSync(into, { recursive: true, force: true });
  else for (const name of readdirSync(into)) rmSync(join(into, name), { recursive: true, force: true });
}

/** Replays OUT's copy of the log up to `untilSeq` into OUT's index, and describes the point in POINT_IN_TIME.json. */
async function replayCopy(db: string, into: string, untilSeq: number, options: ReplayOptions, started: number): Promise<ReplayResult> {
  const unlock = lockDb(into, 'mkv rebuild');
  try {
    // Its own copy, just written: read as it is, every block checked as the replay reads it.
    const log = await SegmentLog.open(logDir(into), { readOnly: true });
    const index = IndexStore.open(indexDir(into));
    try {
      if (log.lastSeq !== untilSeq) throw new MkvError('MKV_INTERNAL', `copied log ends at ${log.lastSeq}, expected ${untilSeq}`);
      const events = await replayInto(log, index, untilSeq, options.quiet ?? false);
      let lastTime: number | undefined;
      if (untilSeq > 0) for await (const batch of log.readFrom(untilSeq)) lastTime = batch.at(-1)!.time;
      writeFileSync(
        join(into, 'POINT_IN_TIME.json'),
        JSON.stringify(
          {
            // The stream as messages show it: its password or token is no one's business here.
            source: options.logUrl ? parseNatsUrl(options.logUrl).shown : resolve(db),
            untilSeq,
            lastEventTime: lastTime === undefined ? null : new Date(lastTime).toISOString(),
            requestedUntil: options.until === undefined ? null : new Date(options.until).toISOString(),
            createdAt: new Date().toISOString(),
          },
          null,
          2,
        ) + '\n',
      );
      return { db: into, events, lastSeq: untilSeq, lastTime, keys: index.count(), seconds: (Date.now() - started) / 1000 };
    } finally {
      await index.close();
      await log.close();
    }
  } finally {
    unlock();
  }
}
