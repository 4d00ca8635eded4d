// The files of the local event log (segment-log.ts writes them): how segments are named and
// listed, the BASE and COMPACTING files a compaction leaves, and reading a segment's blocks
// with every check — sync marker, CRC, the seq numbering, each block's events decoding to
// exactly its bytes.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncPath, writeFileDurably } from '../durable-files.js';
import { MkvError } from '../errors.js';
import { currentReader, eventReader, seqOf, type EventReader, type LogEvent } from '../events/event.js';
import { parseHeader, readFramed, walkBlocks, walkFrames, type Frame, type Header } from './avro-container.js';

export interface Segment {
  firstSeq: number;
  path: string;
}

/** What recovery found and dropped at the tail of the newest segment. */
export interface TailRecovery {
  segment: string;
  truncatedAt: number;
  droppedBytes: number;
  reason: string;
}

const SEGMENT_NAME = /^(\d{20})\.avro$/;

export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, '0')}.avro`;
}

/**
 * <log>/BASE names the first seq of a compacted log ({"firstSeq": N}): the events before it
 * were folded into a snapshot segment by mkv log compact. Without it, a log must start at 1.
 */
export function readBase(dir: string): number {
  try {
    return (JSON.parse(readFileSync(join(dir, 'BASE'), 'utf8')) as { firstSeq: number }).firstSeq;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 1;
    throw new MkvError('MKV_CORRUPT_LOG', `${join(dir, 'BASE')} is unreadable: ${(error as Error).message}`);
  }
}

/**
 * Finishes a compaction that a crash interrupted (the journal <log>/COMPACTING names what to do);
 * every step can be redone.
 */
export function finishCompaction(dir: string): void {
  const journal = join(dir, 'COMPACTING');
  if (!existsSync(journal)) return;
  const { drop, snapshot, final, firstSeq } = JSON.parse(readFileSync(journal, 'utf8')) as {
    drop: string[];
    snapshot: string;
    final: string;
    firstSeq: number;
  };
  for (const name of drop) rmSync(join(dir, name), { force: true });
  if (existsSync(join(dir, snapshot))) renameSync(join(dir, snapshot), join(dir, final));
  if (firstSeq > 1) writeFileDurably(join(dir, 'BASE'), JSON.stringify({ firstSeq }) + '\n');
  else rmSync(join(dir, 'BASE'), { force: true });
  fsyncPath(dir);
  rmSync(journal);
  fsyncPath(dir);
}

export function listSegments(dir: string): Segment[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names
    .map((name) => SEGMENT_NAME.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ firstSeq: Number(match[1]), path: join(dir, match[0]) }))
    .sort((a, b) => a.firstSeq - b.firstSeq);
}

/** One checked block of a segment: its events' Avro bytes, back to back. */
export interface EncodedBlock {
  path: string;
  /** Where the block starts in its segment (for messages). */
  offset: number;
  records: Buffer;
  count: number;
  /** The seq of its first event (the log is dense: its segment's first seq and the blocks before it say). */
  firstSeq: number;
  /** How its events are read: by the schema its segment was written with. */
  reader: EventReader;
}

/** How a segment's events are read, by the schema its header names. */
export function segmentReader(header: Header): EventReader {
  const schema = header.metadata.get('avro.schema');
  return schema === undefined ? currentReader : eventReader(schema.toString('utf8'));
}

/** The blocks of one segment, checked; throws on the first bad block. `firstSeq`: the segment's. */
export function* readSegmentBlocks(path: string, buffer: Buffer, firstSeq: number): Generator<EncodedBlock> {
  let seq = firstSeq;
  const header = parseHeader(buffer);
  const reader = segmentReader(header);
  for (const step of walkBlocks(buffer, header)) {
    if (!step.ok) throw new MkvError('MKV_CORRUPT_LOG', `${path}: bad block at byte ${step.offset}: ${step.reason}`);
    yield { path, offset: step.block.offset, records: step.block.records, count: step.block.count, firstSeq: seq, reader };
    seq += step.block.count;
  }
}

/**
 * The checked blocks of `segments` that hold events from `fromSeq` to `untilSeq`
 * (SegmentLog.readBlocks). Blocks wholly before fromSeq are passed over by their frames, their
 * data not read: a catch-up from the middle of a segment, or the last event of a point in
 * time, reads only what it uses.
 */
export async function* readBlocks(segments: Segment[], fromSeq: number, untilSeq: number): AsyncGenerator<EncodedBlock> {
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    const next = segments[i + 1];
    if (next && next.firstSeq <= fromSeq) continue;
    if (segment.firstSeq > untilSeq) return;
    const buffer = await readFile(segment.path);
    let seq = segment.firstSeq;
    const header = parseHeader(buffer);
    const reader = segmentReader(header);
    for (const step of walkFrames(buffer, header)) {
      if (!step.ok) throw new MkvError('MKV_CORRUPT_LOG', `${segment.path}: bad block at byte ${step.offset}: ${step.reason}`);
      const firstSeq = seq;
      seq += step.frame.count;
      if (firstSeq > untilSeq) return;
      if (seq <= fromSeq) continue;
      const scan = readFramed(buffer, step.frame);
      if (!scan.ok) throw new MkvError('MKV_CORRUPT_LOG', `${segment.path}: bad block at byte ${scan.offset}: ${scan.reason}`);
      yield { path: segment.path, offset: step.frame.offset, records: scan.block.records, count: step.frame.count, firstSeq, reader };
    }
  }
}

/** Every event of one segment, block by block; throws on the first bad block. */
export function* readSegmentEvents(path: string, buffer: Buffer, firstSeq = 1): Generator<LogEvent[]> {
  for (const block of readSegmentBlocks(path, buffer, firstSeq))
    yield decodeBlockEvents(block.records, block.count, path, block.offset, block.reader);
}

/** The events of one checked block; throws if the block holds other than exactly `count` events. */
export function decodeBlockEvents(records: Buffer, count: number, path: string, offset: number, reader = currentReader): LogEvent[] {
  const events: LogEvent[] = [];
  let position = 0;
  for (let i = 0; i < count; i++) {
    const { event, end } = reader.decode(records, position);
    events.push(event);
    position = end;
  }
  checkBlockEnd(position, records, count, path, offset);
  return events;
}

/** Throws unless a block's `count` events, decoded, ended at `position` = the end of its bytes. */
export function checkBlockEnd(position: number, records: Buffer, count: number, path: string, offset: number): void {
  if (position !== records.length) {
    throw new MkvError('MKV_CORRUPT_LOG', `${path}: block at byte ${offset} holds more bytes than its ${count} events`);
  }
}

/** Where the newest segment's good blocks end (findTail). */
export interface Tail {
  /** The seq of its last good event (its first seq - 1 when it holds none). */
  lastSeq: number;
  /** Where its good blocks end: the next block goes here. */
  end: number;
  /** The file's length: past `end` lies a torn block or a reserve of empty blocks. */
  length: number;
  sync: Buffer;
  /** Set when what follows `end` is a torn or corrupt block, not a reserve. */
  torn: TailRecovery | undefined;
}

/**
 * Finds where the newest segment's good blocks end. A writer ('check every block') checks
 * each block's CRC and that its first seq follows the one before, and refuses a gap. A reader
 * of a live log ('frames') goes by the blocks' frames and reads the last one whole: only the
 * block being appended can be torn, and every block it reads later is checked as it is read
 * (readBlocks).
 */
export async function findTail(newest: Segment, how: 'check every block' | 'frames'): Promise<Tail> {
  const buffer = await readFile(newest.path);
  const header = parseHeader(buffer);
  let lastSeq = newest.firstSeq - 1;
  let end = header.end;
  let torn: TailRecovery | undefined;
  const tornAt = (reason: string) => ({ segment: newest.path, truncatedAt: end, droppedBytes: buffer.length - end, reason });
  if (how === 'frames') {
    let last: Frame | undefined;
    for (const step of walkFrames(buffer, header)) {
      if (!step.ok) {
        torn = tornAt(step.reason);
        break;
      }
      last = step.frame;
      lastSeq += step.frame.count;
      end = step.frame.end;
    }
    const scan = last && readFramed(buffer, last);
    if (last && scan && (!scan.ok || seqOf(scan.block.records, 0) !== lastSeq - last.count + 1)) {
      lastSeq -= last.count;
      end = last.offset;
      torn = tornAt(scan.ok ? 'its last block does not follow the one before it' : scan.reason);
    }
  } else {
    for (const step of walkBlocks(buffer, header)) {
      if (!step.ok) {
        torn = tornAt(step.reason);
        break;
      }
      // The CRC vouches for the block; its first event's seq vouches for the numbering.
      const first = seqOf(step.block.records, 0);
      if (first !== lastSeq + 1) {
        throw new MkvError('MKV_CORRUPT_LOG', `${newest.path}: seq ${first} follows ${lastSeq} (the log must be dense)`);
      }
      lastSeq += step.block.count;
      end = step.block.end;
    }
  }
  return { lastSeq, end, length: buffer.length, sync: header.sync, torn };
}

/**
 * A sealed segment must be whole: every block's sync marker and CRC good, and its blocks' event
 * counts must bring the seq exactly to the next segment's first.
 */
export async function checkSealedSegment(segment: Segment, nextFirstSeq: number): Promise<void> {
  const buffer = await readFile(segment.path);
  const refuse = (what: string) =>
    new MkvError(
      'MKV_CORRUPT_LOG',
      `${segment.path}: ${what}. This sealed segment is damaged, so the log cannot be replayed past it. ` +
        'Restore the file from a backup (mkv log verify --db DIR shows every damaged block), ' +
        'or recover the keys from the volumes into a new db with mkv rebuild --db NEW --scan --volumes ...; ' +
        'mkv server --skip-log-check starts anyway on the index as it is.',
    );
  let header;
  try {
    header = parseHeader(buffer);
  } catch (error) {
    throw refuse(`bad header (${(error as Error).message})`);
  }
  let events = 0;
  for (const step of walkBlocks(buffer, header)) {
    if (!step.ok) throw refuse(`bad block at byte ${step.offset} (${step.reason})`);
    events += step.block.count;
  }
  if (segment.firstSeq + events !== nextFirstSeq) {
    throw refuse(`holds seq ${segment.firstSeq} to ${segment.firstSeq + events - 1}, but the next segment starts at ${nextFirstSeq}`);
  }
}
