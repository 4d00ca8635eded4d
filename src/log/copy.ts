// Copying a log into a new segment log, seqs and times kept: for a point-in-time rebuild (up to
// seq N) and for mkv log export (all of it). A segment log's sealed segments go byte for byte;
// its newest segment, and any other log (JetStream), event by event.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MkvError, UsageError } from '../errors.js';
import { encodeEvent, type LogEvent } from '../events/event.js';
import { encodeBlock, parseHeader, readFramed, walkFrames } from './avro-container.js';
import type { EventLog } from './event-log.js';
import { SegmentLog } from './segment-log.js';
import { segmentReader } from './segments.js';

/** Copies `source` up to and including seq `untilSeq` (default: all of it) into a new segment log in `target`. */
export async function copyLog(source: EventLog, target: string, untilSeq = source.lastSeq): Promise<void> {
  if (source instanceof SegmentLog) copySegments(source, target, untilSeq);
  else await copyEvents(source, target, untilSeq);
}

/** Copies the log's segments up to seq N into `target`: sealed ones byte for byte, the last one cut at N. */
function copySegments(log: SegmentLog, target: string, untilSeq: number): void {
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
    const reader = segmentReader(header);
    let seq = segment.firstSeq;
    // Whole blocks go as they are (the replay of the copy checks every one); the block the point
    // falls in is read and cut there.
    for (const step of walkFrames(bytes, header)) {
      if (seq > Math.min(untilSeq, lastSeq)) break;
      if (!step.ok) throw new MkvError('MKV_CORRUPT_LOG', `${segment.path}: bad block at byte ${step.offset}: ${step.reason}`);
      const { frame } = step;
      if (seq + frame.count - 1 <= untilSeq) {
        parts.push(bytes.subarray(frame.offset, frame.end));
      } else {
        const scan = readFramed(bytes, frame);
        if (!scan.ok) throw new MkvError('MKV_CORRUPT_LOG', `${segment.path}: bad block at byte ${scan.offset}: ${scan.reason}`);
        const records: Buffer[] = [];
        for (let position = 0; seq + records.length <= untilSeq;) {
          const { end } = reader.decode(scan.block.records, position);
          records.push(scan.block.records.subarray(position, end));
          position = end;
        }
        parts.push(encodeBlock(records, header.sync));
      }
      seq += frame.count;
    }
    writeFileSync(join(target, name), Buffer.concat(parts));
  }
}

/** Copies a stream's events up to seq N into a new segment log at `target` (seqs and times kept). */
async function copyEvents(log: EventLog, target: string, untilSeq: number): Promise<void> {
  const copy = await SegmentLog.open(target);
  try {
    if (untilSeq > 0) for await (const batch of log.readFrom(1, untilSeq)) await copy.appendExisting(batch);
  } finally {
    await copy.close();
  }
}

/**
 * Throws unless `target`'s events are the first of `source`'s: the same seqs with the same
 * content (time, key, cause, change), so that appending the rest of `source` continues the very
 * same log (an import that stopped), never merges two. Says where they first differ.
 */
export async function checkPrefixOf(source: EventLog, target: EventLog): Promise<void> {
  if (target.lastSeq === 0) return;
  if (target.lastSeq > source.lastSeq) {
    throw new UsageError(
      `${target.location} holds ${target.lastSeq} events, more than ${source.location} (${source.lastSeq}): it is another log`,
    );
  }
  const describe = (event: LogEvent | undefined) =>
    event === undefined ? 'nothing' : `${event.change.type} of ${event.key} at ${new Date(event.time).toISOString()}`;
  const theirs = target.readFrom(1)[Symbol.asyncIterator]();
  let batch: LogEvent[] = [];
  let at = 0;
  for await (const events of source.readFrom(1, target.lastSeq)) {
    for (const event of events) {
      if (at === batch.length) {
        const next = await theirs.next();
        batch = next.done ? [] : next.value;
        at = 0;
      }
      const other = batch[at++];
      if (other === undefined || other.seq !== event.seq || !encodeEvent(other).equals(encodeEvent(event))) {
        await theirs.return?.();
        throw new UsageError(
          `${target.location} is not a beginning of ${source.location}: at seq ${event.seq} it holds ${describe(other)}, ` +
            `where ${source.location} holds ${describe(event)}. Give an empty target, or the one this log was copied to`,
        );
      }
    }
  }
  await theirs.return?.();
}
