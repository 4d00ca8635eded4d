// The local event log: a directory of segments, each a standard Avro Object Container File.
//
//   <db>/log/00000000000000000001.avro   sealed (immutable) once the next one exists
//   <db>/log/00000000000000052817.avro   the newest: appended to, one block per append()
//
// A segment is named by the seq of its first event. append() writes one block and fdatasyncs
// it before resolving (unless sync is 'none'); the writer groups concurrent callers into one
// append, which is what makes fsync cheap. On open, the newest segment's blocks are checked
// one by one and a torn or corrupt tail is truncated at the last good block, and reported.
//
// The newest segment is written into space reserved ahead, RESERVE_BYTES at a time: empty Avro
// blocks (avro-container.ts), which every Avro reader passes over, so the segment is a valid
// container file at every instant — while the master runs, and after kill -9. A block written
// over them leaves the file's size, and so the file system's metadata, as it was, and its
// fdatasync flushes the data alone; an append that grows the file waits for a journal commit,
// which on ext4 with volumes on the same disk costs several times the fdatasync into the reserve
// (docs/design-figures.md).
//
//   … block │ block │ filler │ empty │ empty │ empty │ …        empties on a grid of 23 bytes
//                    ▲ size   ▲ the next grid line, or the one after
//
// A new block rarely ends on the grid, so the same write carries a filler: one or two padded
// empty blocks from its end to a grid line. A sealed segment is cut to its last block, and so is
// the newest when the log is closed: a stopped master's segments hold no reserve at all.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncPath } from '../durable-files.js';
import { MkvError } from '../errors.js';
import { encodeEvent, eventSchemaJson, type EventInput, type LogEvent } from '../events/event.js';
import type { EventLog } from './event-log.js';
import {
  checkSealedSegment,
  decodeBlockEvents,
  findTail,
  finishCompaction,
  listSegments,
  readBase,
  readBlocks,
  segmentName,
  type EncodedBlock,
  type Segment,
  type TailRecovery,
} from './segments.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { EMPTY_BLOCK_BYTES, emptyBlocks, encodeBlock, encodeHeader } from './avro-container.js';

export type SyncMode = 'fsync' | 'none';

export interface SegmentLogOptions {
  /** Start a new segment once the current one reaches this many bytes. */
  segmentBytes?: number;
  sync?: SyncMode;
  logger?: Logger;
  /** Open without recovering or appending (for readers of a live log and read-only servers). */
  readOnly?: boolean;
  /**
   * Check every block of the sealed segments too (CRC, sync, seq), not only the newest
   * segment's tail. On by default for a writer; a damaged sealed block refuses the open.
   */
  verifySealed?: boolean;
  /** A clock, for tests. */
  now?: () => number;
}

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** How far ahead of its last block the newest segment is reserved (less for a smaller segment size); a multiple of EMPTY_BLOCK_BYTES. */
const RESERVE_BYTES = EMPTY_BLOCK_BYTES * 364_722; // ~8 MiB
/** The longest filler a block's write carries to the reserve's next grid line (two empty blocks). */
const MAX_FILLER_BYTES = 3 * EMPTY_BLOCK_BYTES - 1;

export class SegmentLog implements EventLog {
  readonly dir: string;
  private readonly segmentBytes: number;
  private readonly syncMode: SyncMode;
  private readonly logger: Logger;
  private readonly now: () => number;
  private segments: Segment[];
  private handle: FileHandle | undefined;
  private sync: Buffer | undefined;
  /** Where the newest segment's blocks end: the next block goes here. */
  private size = 0;
  /** The newest segment's length: its blocks, then empty blocks reserved for the next ones. */
  private reserved = 0;
  /** Where the reserve's grid of EMPTY_BLOCK_BYTES-long empty blocks begins. */
  private grid = 0;
  /** The bytes that lie from `size` to the next grid line: the last block's filler (none without a reserve). */
  private filler: Buffer = Buffer.alloc(0);
  private last = 0;
  private broken: Error | undefined;
  private appending = false;
  /** What open() truncated, if anything. */
  readonly recovered: TailRecovery | undefined;

  private constructor(dir: string, options: SegmentLogOptions, segments: Segment[], recovered: TailRecovery | undefined) {
    this.dir = dir;
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.syncMode = options.sync ?? 'fsync';
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
    this.segments = segments;
    this.recovered = recovered;
  }

  static async open(dir: string, options: SegmentLogOptions = {}): Promise<SegmentLog> {
    const logger = options.logger ?? silentLogger;
    const readOnly = options.readOnly ?? false;
    if (!readOnly) {
      mkdirSync(dir, { recursive: true });
      finishCompaction(dir);
    }
    const segments = listSegments(dir);
    const newest = segments.at(-1);
    const tail = newest && (await findTail(newest, readOnly ? 'frames' : 'check every block'));
    if (newest && tail?.torn) {
      if (readOnly) logger.warn('log tail is torn; reading up to the last good block', { ...tail.torn });
      else {
        logger.warn('log tail is torn or corrupt: truncating at the last good block', { ...tail.torn });
        truncateDurably(newest.path, tail.end);
      }
    } else if (newest && tail && tail.length > tail.end && !readOnly) {
      // A reserve left by a writer that stopped without closing (kill -9): cut, and laid anew on the next append.
      truncateDurably(newest.path, tail.end);
    }
    if (options.verifySealed ?? !readOnly) {
      for (const [i, segment] of segments.slice(0, -1).entries()) await checkSealedSegment(segment, segments[i + 1]!.firstSeq);
    }
    const log = new SegmentLog(dir, options, segments, tail?.torn);
    log.last = tail?.lastSeq ?? 0;
    log.size = tail?.end ?? 0;
    log.reserved = log.size;
    log.sync = tail?.sync;
    if (newest && !readOnly) log.handle = await open(newest.path, 'r+');
    return log;
  }

  get location(): string {
    return this.dir;
  }

  base(): number {
    return readBase(this.dir);
  }

  get lastSeq(): number {
    return this.last;
  }

  /** The seq the log starts at: 1, or where a compaction's snapshot begins. */
  get firstSeq(): number {
    return this.segments[0]?.firstSeq ?? this.last + 1;
  }

  listSegments(): Segment[] {
    return [...this.segments];
  }

  /**
   * Appends the events as one block and makes it durable; resolves with them, numbered.
   * On failure nothing is appended: the partial block is cut off again (or, when even that
   * fails, the log refuses every later append until restarted).
   */
  async append(inputs: EventInput[]): Promise<LogEvent[]> {
    if (inputs.length === 0) return [];
    const time = this.now();
    return this.writeBlock((first) => inputs.map((input, i): LogEvent => ({ seq: first + i, time, ...input })));
  }

  /**
   * Appends events that already have their seq and time (a log exported from elsewhere): the
   * first must follow this log's last, and the seqs be dense.
   */
  async appendExisting(events: LogEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.writeBlock((first) => {
      events.forEach((event, i) => {
        if (event.seq !== first + i)
          throw new MkvError('MKV_CORRUPT_LOG', `seq ${event.seq} cannot follow ${first + i - 1} in ${this.dir}`);
      });
      return events;
    });
  }

  /** Writes one block of the events `make` numbers from the next seq, fsync'd. */
  private async writeBlock(make: (firstSeq: number) => LogEvent[]): Promise<LogEvent[]> {
    if (this.broken) throw this.broken;
    if (this.appending) throw new Error('SegmentLog.append is not re-entrant: the writer serialises appends');
    this.appending = true;
    try {
      if (!this.handle || this.size >= this.segmentBytes) await this.startSegment(this.last + 1);
      const events = make(this.last + 1);
      const block = encodeBlock(events.map(encodeEvent), this.sync!);
      const handle = this.handle!;
      let filler: Buffer;
      let written: Buffer;
      try {
        if (this.size + block.length + MAX_FILLER_BYTES > this.reserved) await this.reserve(handle, this.size + block.length);
        filler = this.fillerAfter(this.size + block.length);
        written = filler.length === 0 ? block : Buffer.concat([block, filler]);
        await writeFully(handle, written, this.size);
        if (this.syncMode === 'fsync') await handle.datasync();
      } catch (error) {
        await this.undoPartialWrite(handle, block.length + MAX_FILLER_BYTES, error);
        throw mapWriteError(error);
      }
      this.size += block.length;
      this.reserved = Math.max(this.reserved, this.size + filler.length);
      this.filler = filler;
      this.last += events.length;
      return events;
    } finally {
      this.appending = false;
    }
  }

  /**
   * Lays empty blocks ahead of the newest segment's blocks, past `end` (see the header). On a
   * disk too full for that, the space is given back and blocks go past the file's end, as
   * without a reserve (a reserve that took the last free bytes would leave nothing for the volumes).
   */
  private async reserve(handle: FileHandle, end: number): Promise<void> {
    const step = Math.min(RESERVE_BYTES, Math.max(this.segmentBytes, 64 * 1024));
    // A new reserve starts its grid where the blocks end; one that grows continues its grid.
    if (this.reserved <= this.size) {
      this.grid = this.size;
      this.reserved = this.size;
      this.filler = Buffer.alloc(0);
    }
    const from = this.reserved;
    const target = from + Math.ceil((end + step - from) / EMPTY_BLOCK_BYTES) * EMPTY_BLOCK_BYTES;
    const chunk = emptyBlocks(Math.min(target - from, EMPTY_BLOCK_BYTES * 45_590), this.sync!); // ~1 MiB
    try {
      for (let at = from; at < target; at += chunk.length)
        await writeFully(handle, chunk.subarray(0, Math.min(chunk.length, target - at)), at);
      this.reserved = target;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOSPC' && code !== 'EDQUOT') throw error;
      await handle.truncate(from);
    }
  }

  /**
   * The empty blocks a block ending at `end` is written with, to the reserve's next grid line
   * (or the one after, when the gap is shorter than an empty block): none past the reserve.
   */
  private fillerAfter(end: number): Buffer {
    if (end >= this.reserved) return Buffer.alloc(0);
    const gap = (EMPTY_BLOCK_BYTES - ((end - this.grid) % EMPTY_BLOCK_BYTES)) % EMPTY_BLOCK_BYTES;
    if (gap === 0) return Buffer.alloc(0);
    // 1 to 18 bytes: one padded block of 24 to 41; 19 to 22: two blocks, 65 to 68 bytes.
    return emptyBlocks(gap + (gap <= 18 ? EMPTY_BLOCK_BYTES : 2 * EMPTY_BLOCK_BYTES), this.sync!);
  }

  /**
   * Puts the newest segment back as its last good block left it (its reserve goes too). A write
   * refused outright (EPERM, EROFS) changed nothing, and a file that cannot be written often
   * cannot be cut either: then nothing is undone.
   */
  private async undoPartialWrite(handle: FileHandle, length: number, cause: unknown): Promise<void> {
    try {
      if (await this.untouched(handle, length)) return;
      await handle.truncate(this.size);
      await handle.datasync();
      this.reserved = this.size;
      this.filler = Buffer.alloc(0);
    } catch (error) {
      this.broken = new MkvError(
        'MKV_LOG_UNAVAILABLE',
        `the log could not undo a failed append (${(error as Error).message}); restart the server`,
        { cause },
      );
      this.logger.error('log append failed and could not be undone; refusing further writes', { error });
    }
  }

  /** Whether the `length` bytes after the last block are as they were: past the file's end, or the reserve's empty blocks. */
  private async untouched(handle: FileHandle, length: number): Promise<boolean> {
    const fileSize = (await handle.stat()).size;
    if (fileSize <= this.size) return true;
    if (fileSize > this.reserved) return false;
    const after = Buffer.alloc(Math.min(length, fileSize - this.size));
    await handle.read(after, 0, after.length, this.size);
    return after.equals(this.reserveAfterBlocks(after.length));
  }

  /** The first `length` bytes of what the reserve holds after the last block: its filler, then empty blocks on the grid. */
  private reserveAfterBlocks(length: number): Buffer {
    const lines = Math.ceil(Math.max(0, length - this.filler.length) / EMPTY_BLOCK_BYTES);
    return Buffer.concat([this.filler, emptyBlocks(lines * EMPTY_BLOCK_BYTES, this.sync!)]).subarray(0, length);
  }

  /** Cuts the newest segment's reserve: what is left ends with its last block. */
  private async seal(handle: FileHandle): Promise<void> {
    if (this.reserved === this.size) return;
    await handle.truncate(this.size);
    if (this.syncMode === 'fsync') await handle.datasync();
    this.reserved = this.size;
    this.filler = Buffer.alloc(0);
  }

  /** A new segment appears whole or not at all: its header is written aside, fsync'd, renamed. */
  private async startSegment(firstSeq: number): Promise<void> {
    const sync = randomBytes(16);
    const path = join(this.dir, segmentName(firstSeq));
    const temporary = `${path}.tmp`;
    try {
      writeFileSync(temporary, encodeHeader(eventSchemaJson, sync));
      const fd = openSync(temporary, 'r+');
      try {
        if (this.syncMode === 'fsync') fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temporary, path);
      if (this.syncMode === 'fsync') fsyncPath(this.dir);
    } catch (error) {
      throw mapWriteError(error);
    }
    if (this.handle) {
      await this.seal(this.handle);
      await this.handle.close();
    }
    this.handle = await open(path, 'r+');
    this.size = (await this.handle.stat()).size;
    this.reserved = this.size;
    this.filler = Buffer.alloc(0);
    this.sync = sync;
    this.segments.push({ firstSeq, path });
    this.logger.info('log segment started', { path });
  }

  /**
   * Events from `fromSeq` on, a block at a time (events before fromSeq in the first block are
   * left out). Reads only what existed when called.
   */
  async *readFrom(fromSeq: number, untilSeq = this.last): AsyncGenerator<LogEvent[]> {
    for await (const block of this.readBlocks(fromSeq, untilSeq)) {
      const events = decodeBlockEvents(block.records, block.count, block.path, block.offset, block.reader);
      const wanted = events.filter((event) => event.seq >= fromSeq && event.seq <= untilSeq);
      if (wanted.length > 0) yield wanted;
      if (events.at(-1)!.seq >= untilSeq) return;
    }
  }

  /**
   * The checked blocks that hold events from `fromSeq` to `untilSeq`, undecoded and whole: the
   * first may start before fromSeq, the last end after untilSeq; the caller stops. For replay,
   * which decodes only what the projection reads (decodeProjected).
   */
  readBlocks(fromSeq: number, untilSeq = this.last): AsyncGenerator<EncodedBlock> {
    return readBlocks(this.listSegments(), fromSeq, untilSeq);
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (!handle) return;
    try {
      if (!this.broken) await this.seal(handle);
    } finally {
      await handle.close();
    }
  }
}

async function writeFully(handle: FileHandle, data: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await handle.write(data, written, data.length - written, position + written);
    written += bytesWritten;
  }
}

function truncateDurably(path: string, length: number): void {
  const fd = openSync(path, 'r+');
  try {
    // fsync after the cut, so it survives a second crash.
    ftruncateSync(fd, length);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function mapWriteError(error: unknown): MkvError {
  if (error instanceof MkvError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new MkvError('MKV_LOG_FULL', `the log's disk is full (${code}); writes resume when space returns`, { cause: error });
  }
  return new MkvError('MKV_LOG_UNAVAILABLE', `the log cannot be written (${code ?? (error as Error).message})`, { cause: error });
}
