// A key's record in the index's `keys` database, in a fixed binary layout (index format 2).
//
//   u8  state         0 live, 1 unlinked, 2 pending, 3 deleting
//   u8  flags         1: size present, 2: md5 present
//   f64 seq, f64 time (little-endian)
//   f64 size          when flag 1
//   u16 length, md5   when flag 2 (UTF-8)
//   u16 count, then per volume: u16 length, volume (UTF-8)
//
// Format 1 stored the record as msgpack through lmdb-js; this layout costs a fifth of its
// encoding, and it can be written by a thread that does not share lmdb-js's msgpack structures
// (replay's writer thread).
import type { KeyRecord, KeyState } from './evolve.js';

const STATES: readonly KeyState[] = ['live', 'unlinked', 'pending', 'deleting'];
const SIZE = 1;
const MD5 = 2;

/** The most bytes `record` can take encoded (a string's UTF-8 is at most 3 bytes per UTF-16 unit). */
export function recordBound(record: KeyRecord): number {
  let bound = 2 + 8 + 8 + 8 + 2 + 3 * (record.md5?.length ?? 0) + 2;
  for (const volume of record.volumes) bound += 2 + 3 * volume.length;
  return bound;
}

/** Writes `record` into `target` at `offset` (room for recordBound(record) bytes); returns the end. */
export function writeRecord(record: KeyRecord, target: Buffer, offset: number): number {
  let at = offset;
  target[at++] = STATES.indexOf(record.state);
  target[at++] = (record.size !== null ? SIZE : 0) | (record.md5 !== null ? MD5 : 0);
  at = target.writeDoubleLE(record.seq, at);
  at = target.writeDoubleLE(record.time, at);
  if (record.size !== null) at = target.writeDoubleLE(record.size, at);
  if (record.md5 !== null) at = writeString(record.md5, target, at);
  at = target.writeUInt16LE(record.volumes.length, at);
  for (const volume of record.volumes) at = writeString(volume, target, at);
  return at;
}

function writeString(value: string, target: Buffer, offset: number): number {
  const length = target.write(value, offset + 2, 'utf8');
  target.writeUInt16LE(length, offset);
  return offset + 2 + length;
}

/** The state of an encoded record, without decoding the rest. */
export function recordState(bytes: Uint8Array): KeyState {
  const state = STATES[bytes[0]!];
  if (state === undefined) throw new Error(`not a key record (state ${bytes[0]})`);
  return state;
}

export function decodeRecord(bytes: Uint8Array): KeyRecord {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const state = STATES[buffer[0]!];
  const flags = buffer[1]!;
  if (state === undefined || flags > (SIZE | MD5)) throw new Error(`not a key record (state ${buffer[0]}, flags ${flags})`);
  const seq = buffer.readDoubleLE(2);
  const time = buffer.readDoubleLE(10);
  let at = 18;
  let size: number | null = null;
  if (flags & SIZE) {
    size = buffer.readDoubleLE(at);
    at += 8;
  }
  let md5: string | null = null;
  if (flags & MD5) {
    const length = buffer.readUInt16LE(at);
    md5 = buffer.toString('utf8', at + 2, at + 2 + length);
    at += 2 + length;
  }
  const count = buffer.readUInt16LE(at);
  at += 2;
  const volumes: string[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const length = buffer.readUInt16LE(at);
    volumes[i] = buffer.toString('utf8', at + 2, at + 2 + length);
    at += 2 + length;
  }
  if (at !== buffer.length) throw new Error(`not a key record (${buffer.length} bytes, ${at} read)`);
  return { state, volumes, size, md5, seq, time };
}
