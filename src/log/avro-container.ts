// The bytes of an Avro Object Container File, written and checked by hand so that recovery can
// tell a good block from a torn one (avsc's own decoder silently drops a torn last block).
//
//   file   = header block*
//   header = "Obj" 0x01, metadata map { avro.schema: <json>, avro.codec: "snappy" }, sync (16 bytes)
//   block  = count (long), size (long), data (size bytes), sync (16 bytes)
//   data   = snappy(concatenated Avro events) ‖ CRC-32 (big-endian) of the uncompressed events
//
// Longs are zig-zag varints. Every block ends with the header's sync marker; a block is good
// only when its sync matches and the CRC of its decompressed events checks.
//
// A file being appended to ends in empty blocks past its last block: space its writer reserved
// ahead (segment-log.ts), which every Avro reader takes as blocks of no records (Apache's Python
// and Java readers do; avro-c's avrocat does not read empty blocks). An empty block is
//
//   count 0, size 5, snappy("") = 0x00, CRC-32("") = 0x00000000, sync      23 bytes
//
// and the varints of its count and size may carry up to 9 redundant continuation bytes each
// (0x80…): 23 to 41 bytes, so that empty blocks can fill any gap the writer leaves. Files of an
// older writer end in zeros instead; a block never starts with a zero byte unless it is an empty
// block, so walkBlocks takes all-zero bytes where a block would start as the end too.
import { crc32 as zlibCrc32 } from 'node:zlib';
import snappy from 'snappyjs';

export const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]);
export const SYNC_SIZE = 16;
export const CODEC = 'snappy';

/** CRC-32 (IEEE, as zlib and Avro's snappy codec use it): zlib's, native, far faster than a byte-at-a-time table in JS (docs/design-figures.md). */
export function crc32(data: Uint8Array): number {
  return zlibCrc32(data);
}

export function encodeLong(value: number): Buffer {
  // Zig-zag, then base-128 little-endian groups; arithmetic rather than bit ops to stay exact past 2^31.
  let n = value >= 0 ? value * 2 : -value * 2 - 1;
  const bytes: number[] = [];
  while (n >= 0x80) {
    bytes.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

/** Reads a long at `offset`; undefined when the buffer ends first or the varint is too long. */
export function decodeLong(buffer: Buffer, offset: number): { value: number; end: number } | undefined {
  let n = 0;
  let scale = 1;
  // Up to 10 bytes, as Java's reader takes them (the writer pads empty blocks' varints).
  for (let i = offset; i < buffer.length && i < offset + 10; i++) {
    const byte = buffer[i]!;
    n += (byte & 0x7f) * scale;
    scale *= 0x80;
    if ((byte & 0x80) === 0) return { value: n % 2 === 0 ? n / 2 : -(n + 1) / 2, end: i + 1 };
  }
  return undefined;
}

function encodeBytes(data: Buffer): Buffer {
  return Buffer.concat([encodeLong(data.length), data]);
}

export function encodeHeader(schemaJson: string, sync: Buffer): Buffer {
  const metadata: Array<[string, string]> = [
    ['avro.schema', schemaJson],
    ['avro.codec', CODEC],
  ];
  const parts = [MAGIC, encodeLong(metadata.length)];
  for (const [name, value] of metadata) parts.push(encodeBytes(Buffer.from(name)), encodeBytes(Buffer.from(value)));
  parts.push(encodeLong(0), sync);
  return Buffer.concat(parts);
}

export interface Header {
  metadata: Map<string, Buffer>;
  sync: Buffer;
  /** Offset of the first block. */
  end: number;
}

export function parseHeader(buffer: Buffer): Header {
  if (buffer.length < MAGIC.length || !buffer.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new Error('not an Avro container file (bad magic)');
  }
  const metadata = new Map<string, Buffer>();
  let offset = MAGIC.length;
  for (;;) {
    const count = decodeLong(buffer, offset);
    if (!count) throw new Error('truncated header');
    offset = count.end;
    if (count.value === 0) break;
    let entries = count.value;
    if (entries < 0) {
      // A negative count is followed by the block's byte size, which we do not need.
      const size = decodeLong(buffer, offset);
      if (!size) throw new Error('truncated header');
      offset = size.end;
      entries = -entries;
    }
    for (let i = 0; i < entries; i++) {
      const name = readBytes(buffer, offset);
      const value = name && readBytes(buffer, name.end);
      if (!name || !value) throw new Error('truncated header');
      metadata.set(name.data.toString('utf8'), value.data);
      offset = value.end;
    }
  }
  if (offset + SYNC_SIZE > buffer.length) throw new Error('truncated header');
  return { metadata, sync: Buffer.from(buffer.subarray(offset, offset + SYNC_SIZE)), end: offset + SYNC_SIZE };
}

function readBytes(buffer: Buffer, offset: number): { data: Buffer; end: number } | undefined {
  const length = decodeLong(buffer, offset);
  if (!length || length.value < 0 || length.end + length.value > buffer.length) return undefined;
  return { data: buffer.subarray(length.end, length.end + length.value), end: length.end + length.value };
}

/** One block holding `records` (each already Avro-encoded), compressed with snappy plus its CRC. */
export function encodeBlock(records: Buffer[], sync: Buffer): Buffer {
  const raw = Buffer.concat(records);
  const compressed = Buffer.from(snappy.compress(raw));
  const checksum = Buffer.alloc(4);
  checksum.writeUInt32BE(crc32(raw));
  return Buffer.concat([encodeLong(records.length), encodeLong(compressed.length + 4), compressed, checksum, sync]);
}

/** The shortest empty block: count 0, size 5, snappy(""), CRC-32(""), sync. */
export const EMPTY_BLOCK_BYTES = 23;
/** The longest: both varints padded to 10 bytes. */
export const MAX_EMPTY_BLOCK_BYTES = EMPTY_BLOCK_BYTES + 18;

/** One empty block of `length` bytes (23 to 41): its count's and size's varints padded as needed. */
function emptyBlock(length: number, sync: Buffer): Buffer {
  const extra = length - EMPTY_BLOCK_BYTES;
  if (extra < 0 || extra > 18) throw new RangeError(`an empty block is 23 to 41 bytes, not ${length}`);
  const countPad = Math.ceil(extra / 2);
  const sizePad = extra - countPad;
  const block = Buffer.alloc(length);
  let at = 0;
  for (let i = 0; i < countPad; i++) block[at++] = 0x80; // 0, spelled with continuation bytes
  block[at++] = 0x00;
  if (sizePad === 0)
    block[at++] = 0x0a; // zig-zag 5
  else {
    block[at++] = 0x8a;
    for (let i = 1; i < sizePad; i++) block[at++] = 0x80;
    block[at++] = 0x00;
  }
  at += 5; // snappy("") and CRC-32(""): zeros
  sync.copy(block, at);
  return block;
}

/**
 * Empty blocks that fill exactly `length` bytes: 0, or 23 and more but not 42 to 45 (neither one
 * block of at most 41 bytes nor two of at least 23 each fit those).
 */
export function emptyBlocks(length: number, sync: Buffer): Buffer {
  if (length === 0) return Buffer.alloc(0);
  if (length < EMPTY_BLOCK_BYTES) throw new RangeError(`empty blocks cannot fill exactly ${length} bytes`);
  // Shortest blocks but for the remainder, which one padded block takes, or two when it is 42 to 45.
  let plain = Math.floor((length - EMPTY_BLOCK_BYTES) / EMPTY_BLOCK_BYTES);
  let rest = length - plain * EMPTY_BLOCK_BYTES;
  const padded: number[] = [];
  if (rest > MAX_EMPTY_BLOCK_BYTES) {
    if (plain === 0) throw new RangeError(`empty blocks cannot fill exactly ${length} bytes`);
    plain--;
    rest += EMPTY_BLOCK_BYTES;
    padded.push(MAX_EMPTY_BLOCK_BYTES, rest - MAX_EMPTY_BLOCK_BYTES);
  } else padded.push(rest);
  const blocks = padded.map((size) => emptyBlock(size, sync));
  if (plain > 0) {
    const one = emptyBlock(EMPTY_BLOCK_BYTES, sync);
    blocks.push(Buffer.alloc(plain * EMPTY_BLOCK_BYTES));
    for (let i = 0; i < plain; i++) one.copy(blocks.at(-1)!, i * EMPTY_BLOCK_BYTES);
  }
  return Buffer.concat(blocks, length);
}

export interface Block {
  /** Offset of the block in the file, and just past its sync marker. */
  offset: number;
  end: number;
  count: number;
  /** The uncompressed, concatenated records. */
  records: Buffer;
}

/** A block's frame: where it is and how many events it holds, its data not yet read. */
export interface Frame {
  offset: number;
  end: number;
  count: number;
  /** Where its snappy data (and the CRC after it) lie. */
  dataStart: number;
  dataEnd: number;
}

export type FrameScan = { ok: true; frame: Frame } | { ok: false; offset: number; reason: string };
export type BlockScan = { ok: true; block: Block } | { ok: false; offset: number; reason: string };

/** Reads the frame of the block at `offset`: its count and size, and the sync marker they lead to. */
export function readFrame(buffer: Buffer, offset: number, sync: Buffer): FrameScan {
  const fail = (reason: string): FrameScan => ({ ok: false, offset, reason });
  const count = decodeLong(buffer, offset);
  if (!count) return fail('short read in block count');
  const size = count.end < buffer.length ? decodeLong(buffer, count.end) : undefined;
  if (!size) return fail('short read in block size');
  if (count.value < 0 || size.value < 5) return fail(`implausible block (count ${count.value}, size ${size.value})`);
  const dataEnd = size.end + size.value;
  if (dataEnd + SYNC_SIZE > buffer.length)
    return fail(`short read: block needs ${dataEnd + SYNC_SIZE - offset} bytes, ${buffer.length - offset} left`);
  if (!buffer.subarray(dataEnd, dataEnd + SYNC_SIZE).equals(sync)) return fail('sync marker mismatch');
  return { ok: true, frame: { offset, end: dataEnd + SYNC_SIZE, count: count.value, dataStart: size.end, dataEnd } };
}

/** Reads a framed block's events: its snappy data decompressed, checked against its CRC-32. */
export function readFramed(buffer: Buffer, frame: Frame): BlockScan {
  let records: Buffer;
  try {
    // snappyjs answers a Buffer given one: no copy of it.
    const uncompressed: Uint8Array = snappy.uncompress(buffer.subarray(frame.dataStart, frame.dataEnd - 4));
    records = Buffer.isBuffer(uncompressed)
      ? uncompressed
      : Buffer.from(uncompressed.buffer, uncompressed.byteOffset, uncompressed.byteLength);
  } catch (error) {
    return { ok: false, offset: frame.offset, reason: `snappy data does not decompress (${(error as Error).message})` };
  }
  if (crc32(records) !== buffer.readUInt32BE(frame.dataEnd - 4)) return { ok: false, offset: frame.offset, reason: 'CRC-32 mismatch' };
  return { ok: true, block: { offset: frame.offset, end: frame.end, count: frame.count, records } };
}

/** Reads and checks the block at `offset`. */
export function readBlock(buffer: Buffer, offset: number, sync: Buffer): BlockScan {
  const scan = readFrame(buffer, offset, sync);
  return scan.ok ? readFramed(buffer, scan.frame) : scan;
}

const ZEROS = Buffer.alloc(64 * 1024);

/** Whether every byte from `offset` to the end of `buffer` is zero. */
export function zerosFrom(buffer: Buffer, offset: number): boolean {
  for (let at = offset; at < buffer.length; at += ZEROS.length) {
    const end = Math.min(at + ZEROS.length, buffer.length);
    if (!buffer.subarray(at, end).equals(ZEROS.subarray(0, end - at))) return false;
  }
  return true;
}

/** A bad block, and where the walk went on after it ('skip'; undefined: it could not). */
export type WalkStep = { ok: true; block: Block } | { ok: false; offset: number; reason: string; resumeAt?: number };
export type FrameStep = { ok: true; frame: Frame } | { ok: false; offset: number; reason: string; resumeAt?: number };

/**
 * The frames of a container file's blocks that hold records, in order, each checked as far as
 * its frame goes (its count and size lead to the sync marker); their data is not read. Empty
 * blocks (the space reserved past the last block) are passed over; the walk ends at the end of
 * the file, or of the data (zeros reserved by an older writer). A bad frame is yielded with its
 * reason; then `onBad` says what happens: 'stop' ends the walk there (a torn tail, a refusal),
 * 'skip' goes on at the next sync marker (a report of every damaged block).
 */
export function* walkFrames(buffer: Buffer, header: Header, onBad: 'stop' | 'skip' = 'stop'): Generator<FrameStep> {
  let offset = header.end;
  while (offset < buffer.length) {
    if (buffer[offset] === 0 && zerosFrom(buffer, offset)) return;
    const scan = readFrame(buffer, offset, header.sync);
    if (scan.ok) {
      if (scan.frame.count > 0) yield scan;
      offset = scan.frame.end;
      continue;
    }
    const resync = onBad === 'skip' ? buffer.indexOf(header.sync, offset + 1) : -1;
    yield resync === -1 ? scan : { ...scan, resumeAt: resync + SYNC_SIZE };
    if (resync === -1) return;
    offset = resync + SYNC_SIZE;
  }
}

/**
 * Every block of a container file that holds records, in order, each checked (sync marker,
 * CRC): the one walk behind opening, checking, replaying and copying a log (walkFrames, each
 * frame's data read). A bad block is yielded with its reason, and `onBad` says what happens next.
 */
export function* walkBlocks(buffer: Buffer, header: Header, onBad: 'stop' | 'skip' = 'stop'): Generator<WalkStep> {
  for (const step of walkFrames(buffer, header, onBad)) {
    if (!step.ok) {
      yield step;
      continue;
    }
    const scan = readFramed(buffer, step.frame);
    if (scan.ok) {
      yield scan;
      continue;
    }
    if (onBad === 'stop') {
      yield scan;
      return;
    }
    // Its frame was sound: the walk goes on after it.
    yield { ...scan, resumeAt: step.frame.end };
  }
}
