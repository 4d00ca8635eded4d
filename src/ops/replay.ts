// mkv rebuild --from-log: the index thrown away and rebuilt from the log, to now or to a point
// in time (--until-seq N, --until TIME) into a separate db directory.
//
//   DIR/log ──replay──▶ DIR/index.rebuild-<pid> ──rename──▶ DIR/index          (to now, in place)
//   DIR/log ──copy ≤ N──▶ OUT/log ──replay──▶ OUT/index                          (point in time)
//
// An interrupted in-place rebuild leaves at worst no index; the next start replays the whole log.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MkvError } from '../errors.js';
import { decodeEvent } from '../events/event.js';
import { IndexStore } from '../index/index-store.js';
import { encodeBlock, parseHeader, walkBlocks } from '../log/avro-container.js';
import type { EventLog } from '../log/event-log.js';
import { JetStreamLog } from '../log/jetstream-log.js';
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

/** Copies the log's segments up to seq N into `target`: sealed ones byte for byte, the last one cut at N. */
function copyLogUntil(log: SegmentLog, target: string, untilSeq: number): void {
  mkdirSync(target, { recursive: true });
  if (existsSync(join(log.dir, 'BASE'))) copyFileSync(join(log.dir, 'BASE'), join(target, 'BASE'));
  const segments = log.listSegments();
  for (const [i, segment] of segments.entries()) {
    if (segment.firstSeq > untilSeq) break;
    const name = segment.path.slice(segment.path.lastIndexOf('/') + 1);
    const lastSeq = i + 1 < segments.length ? segments[i + 1]!.firstSeq - 1 : log.lastSeq;
    const newest = i === segments.length - 1;
    // The newest segment goes block by block even when whole, so a torn tail is not copied.
    if (lastSeq <= untilSeq && !newest) {
      copyFileSync(segment.path, join(target, name));
      continue;
    }
    const bytes = readFileSync(segment.path);
    const header = parseHeader(bytes);
    const parts: Buffer[] = [bytes.subarray(0, header.end)];
    let seq = segment.firstSeq;
    for (const step of walkBlocks(bytes, header)) {
      if (seq > Math.min(untilSeq, lastSeq)) break;
      if (!step.ok) throw new MkvError('MKV_CORRUPT_LOG', `${segment.path}: bad block at byte ${step.offset}: ${step.reason}`);
      const { block } = step;
      if (seq + block.count - 1 <= untilSeq) {
        parts.push(bytes.subarray(block.offset, block.end));
      } else {
        const records: Buffer[] = [];
        for (let position = 0; seq + records.length <= untilSeq; ) {
          const { end } = decodeEvent(block.records, position);
          records.push(block.records.subarray(position, end));
          position = end;
        }
        parts.push(encodeBlock(records, header.sync));
      }
      seq += block.count;
    }
    writeFileSync(join(target, name), Buffer.concat(parts));
  }
}

/** Copies a stream's events up to seq N into a new segment log at `target` (seqs and times kept). */
async function copyEventsUntil(log: EventLog, target: string, untilSeq: number): Promise<void> {
  const copy = await SegmentLog.open(target);
  try {
    if (untilSeq > 0) for await (const batch of log.readFrom(1, untilSeq)) await copy.appendExisting(batch);
  } finally {
    await copy.close();
  }
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
  if (!options.logUrl && !existsSync(logDir(db))) throw new MkvError('MKV_INTERNAL', `${logDir(db)} does not exist: nothing to replay`);
  if (pointInTime && !options.into) {
    throw new MkvError('MKV_INTERNAL', 'a point-in-time rebuild needs --into OUT: it never overwrites the live db');
  }
  if (options.into) return rebuildInto(db, options.into, options, started);

  const unlock = lockDb(db, 'mkv rebuild');
  try {
    const log: EventLog = options.logUrl ? await JetStreamLog.open({ url: options.logUrl }) : await SegmentLog.open(logDir(db));
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
  if (resolve(into) === resolve(db)) throw new MkvError('MKV_INTERNAL', '--into must be another directory than --db');
  if (existsSync(into) && readdirSync(into).length > 0) throw new MkvError('MKV_INTERNAL', `${into} is not empty; give a new directory`);
  // The source may be served by a running master: read it without locking or truncating.
  const source: EventLog = options.logUrl ? await JetStreamLog.open({ url: options.logUrl }) : await SegmentLog.open(logDir(db), { readOnly: true });
  let untilSeq: number;
  try {
    untilSeq = Math.min(source.lastSeq, options.untilSeq ?? Infinity);
    if (options.until !== undefined) untilSeq = Math.min(untilSeq, await seqAtTime(source, options.until));
    if (source instanceof SegmentLog) copyLogUntil(source, logDir(into), untilSeq);
    else await copyEventsUntil(source, logDir(into), untilSeq);
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
            source: options.logUrl ?? resolve(db),
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
