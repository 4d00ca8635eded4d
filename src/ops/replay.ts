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

/** The seq of the last event appended at or before `until`, 0 if none. */
async function seqAtTime(log: EventLog, until: number): Promise<number> {
  let seq = 0;
  for await (const events of log.readFrom(1)) {
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
  if (existsSync(into) && readdirSync(into).length > 0) throw new UsageError(`${into} is not empty; give a new directory`);
  // The source may be served by a running master: read it without locking or truncating.
  const source: EventLog = options.logUrl
    ? await JetStreamLog.open({ url: options.logUrl, access: options.logAccess ?? {} })
    : await SegmentLog.open(logDir(db), { readOnly: true });
  let untilSeq: number;
  try {
    untilSeq = Math.min(source.lastSeq, options.untilSeq ?? Infinity);
    if (options.until !== undefined) untilSeq = Math.min(untilSeq, await seqAtTime(source, options.until));
    await copyLog(source, logDir(into), untilSeq);
  } finally {
    await source.close();
  }
  const unlock = lockDb(into, 'mkv rebuild');
  try {
    const log = await SegmentLog.open(logDir(into));
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
