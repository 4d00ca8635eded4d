// A key's record in the index's `keys` database, in a fixed binary layout (index format 4).
//
//   u8  state         0 live, 1 unlinked, 2 pending, 3 deleting, 4 deleted (retained)
//   u16 flags (LE)    1 size, 2 md5, 4 etag, 8 contentType, 16 version, 32 writing, 64 stale, 128 metadata,
//                     256 headers, 512 checksum, 1024 parts, 2048 overwrites
//   f64 seq, f64 time, f64 modified (little-endian)
//   f64 size                                 when flag 1
//   u16 length, md5                          when flag 2 (UTF-8, as every string here)
//   u16 length, etag                         when flag 4
//   u16 length, contentType                  when flag 8
//   f64 version                              when flag 16 (else 0: the key's own path)
//   u16 count, then per volume: u16 length, volume
//   writing: f64 version, u16 count, volumes when flag 32
//   stale: u16 count, then each as writing   when flag 64
//   metadata: u16 count, then name, value    when flag 128
//   headers: u16 count, then name, value     when flag 256
//   checksum: algorithm, value, type          when flag 512
//   parts: u32 count, then per part: f64 size, etag, u8 1 and checksum (or u8 0)   when flag 1024
//   overwrites: u16 count, then each as writing    when flag 2048 (more overwrites in flight)
//
// Format 1 stored the record as msgpack through lmdb-js; format 2 had no version, S3 metadata,
// overwrite or stale blobs; format 3 had a one-byte flags field and no headers, checksum or
// parts. This layout is cheaper to encode than msgpack (docs/design-figures.md), and it can be written by a thread that
// does not share lmdb-js's msgpack structures (replay's planner).
import type { BlobVersion, Part } from '../events/event.js';
import type { KeyRecord, KeyState } from './evolve.js';

const NO_BLOBS: BlobVersion[] = [];
const STATES: readonly KeyState[] = ['live', 'unlinked', 'pending', 'deleting', 'deleted'];
const SIZE = 1;
const MD5 = 2;
const ETAG = 4;
const CONTENT_TYPE = 8;
const VERSION = 16;
const WRITING = 32;
const STALE = 64;
const METADATA = 128;
const HEADERS = 256;
const CHECKSUM = 512;
const PARTS = 1024;
const OVERWRITES = 2048;
const ALL = SIZE | MD5 | ETAG | CONTENT_TYPE | VERSION | WRITING | STALE | METADATA | HEADERS | CHECKSUM | PARTS | OVERWRITES;

function stringBound(text: string | null): number {
  return text === null ? 0 : 2 + 3 * text.length;
}

function volumesBound(volumes: readonly string[]): number {
  let bound = 2;
  for (const volume of volumes) bound += 2 + 3 * volume.length;
  return bound;
}

/** The most bytes `record` can take encoded (a string's UTF-8 is at most 3 bytes per UTF-16 unit). */
export function recordBound(record: KeyRecord): number {
  let bound =
    3 + 8 * 5 + stringBound(record.md5) + stringBound(record.etag) + stringBound(record.contentType) + volumesBound(record.volumes);
  if (record.writing) bound += 8 + volumesBound(record.writing.volumes);
  bound += 2;
  for (const blob of record.stale) bound += 8 + volumesBound(blob.volumes);
  bound += 2 + mapBound(record.metadata) + 2 + mapBound(record.headers);
  if (record.checksum)
    bound += stringBound(record.checksum.algorithm) + stringBound(record.checksum.value) + stringBound(record.checksum.type);
  bound += 4;
  for (const part of record.parts) bound += 8 + stringBound(part.etag) + 1 + stringBound(part.checksum);
  bound += 2;
  for (const blob of record.overwrites) bound += 8 + volumesBound(blob.volumes);
  return bound;
}

function mapBound(map: Record<string, string>): number {
  let bound = 0;
  for (const name in map) bound += stringBound(name) + stringBound(map[name]!);
  return bound;
}

/** Writes `record` into `target` at `offset` (room for recordBound(record) bytes); returns the end. */
export function writeRecord(record: KeyRecord, target: Buffer, offset: number): number {
  let at = offset;
  target[at++] = STATES.indexOf(record.state);
  at = target.writeUInt16LE(
    (record.size !== null ? SIZE : 0) |
      (record.md5 !== null ? MD5 : 0) |
      (record.etag !== null ? ETAG : 0) |
      (record.contentType !== null ? CONTENT_TYPE : 0) |
      (record.version !== 0 ? VERSION : 0) |
      (record.writing !== null ? WRITING : 0) |
      (record.stale.length > 0 ? STALE : 0) |
      (hasEntries(record.metadata) ? METADATA : 0) |
      (hasEntries(record.headers) ? HEADERS : 0) |
      (record.checksum !== null ? CHECKSUM : 0) |
      (record.parts.length > 0 ? PARTS : 0) |
      (record.overwrites.length > 0 ? OVERWRITES : 0),
    at,
  );
  at = target.writeDoubleLE(record.seq, at);
  at = target.writeDoubleLE(record.time, at);
  at = target.writeDoubleLE(record.modified, at);
  if (record.size !== null) at = target.writeDoubleLE(record.size, at);
  if (record.md5 !== null) at = writeString(record.md5, target, at);
  if (record.etag !== null) at = writeString(record.etag, target, at);
  if (record.contentType !== null) at = writeString(record.contentType, target, at);
  if (record.version !== 0) at = target.writeDoubleLE(record.version, at);
  at = writeVolumes(record.volumes, target, at);
  if (record.writing !== null) at = writeBlob(record.writing, target, at);
  if (record.stale.length > 0) {
    at = target.writeUInt16LE(record.stale.length, at);
    for (const blob of record.stale) at = writeBlob(blob, target, at);
  }
  if (hasEntries(record.metadata)) at = writeMap(record.metadata, target, at);
  if (hasEntries(record.headers)) at = writeMap(record.headers, target, at);
  if (record.checksum !== null) {
    at = writeString(record.checksum.algorithm, target, at);
    at = writeString(record.checksum.value, target, at);
    at = writeString(record.checksum.type, target, at);
  }
  if (record.parts.length > 0) {
    at = target.writeUInt32LE(record.parts.length, at);
    for (const part of record.parts) {
      at = writeString(part.etag, target, target.writeDoubleLE(part.size, at));
      target[at++] = part.checksum === null ? 0 : 1;
      if (part.checksum !== null) at = writeString(part.checksum, target, at);
    }
  }
  if (record.overwrites.length > 0) {
    at = target.writeUInt16LE(record.overwrites.length, at);
    for (const blob of record.overwrites) at = writeBlob(blob, target, at);
  }
  return at;
}

function writeMap(map: Record<string, string>, target: Buffer, offset: number): number {
  const names = Object.keys(map);
  let at = target.writeUInt16LE(names.length, offset);
  for (const name of names) at = writeString(map[name]!, target, writeString(name, target, at));
  return at;
}

function hasEntries(map: Record<string, string>): boolean {
  for (const _ in map) return true;
  return false;
}

function writeString(value: string, target: Buffer, offset: number): number {
  const length = target.write(value, offset + 2, 'utf8');
  target.writeUInt16LE(length, offset);
  return offset + 2 + length;
}

function writeVolumes(volumes: readonly string[], target: Buffer, offset: number): number {
  let at = target.writeUInt16LE(volumes.length, offset);
  for (const volume of volumes) at = writeString(volume, target, at);
  return at;
}

function writeBlob(blob: BlobVersion, target: Buffer, offset: number): number {
  return writeVolumes(blob.volumes, target, target.writeDoubleLE(blob.version, offset));
}

/** The state of an encoded record, without decoding the rest. */
export function recordState(bytes: Uint8Array): KeyState {
  const state = STATES[bytes[0]!];
  if (state === undefined) throw new Error(`not a key record (state ${bytes[0]})`);
  return state;
}

/** Reads strings, numbers and lists of volumes in order from a record's bytes. */
class Reader {
  at = 0;
  constructor(readonly buffer: Buffer) {}

  number(): number {
    const value = this.buffer.readDoubleLE(this.at);
    this.at += 8;
    return value;
  }

  string(): string {
    const length = this.buffer.readUInt16LE(this.at);
    const value = this.buffer.toString('utf8', this.at + 2, this.at + 2 + length);
    this.at += 2 + length;
    return value;
  }

  volumes(): string[] {
    const count = this.buffer.readUInt16LE(this.at);
    this.at += 2;
    const volumes = new Array<string>(count);
    for (let i = 0; i < count; i++) volumes[i] = this.string();
    return volumes;
  }

  blob(): BlobVersion {
    const version = this.number();
    return { version, volumes: this.volumes() };
  }

  map(): Record<string, string> {
    const count = this.buffer.readUInt16LE(this.at);
    this.at += 2;
    const map: Record<string, string> = {};
    for (let i = 0; i < count; i++) {
      const name = this.string();
      map[name] = this.string();
    }
    return map;
  }
}

export function decodeRecord(bytes: Uint8Array): KeyRecord {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const state = STATES[buffer[0]!];
  const flags = buffer.readUInt16LE(1);
  if (state === undefined || (flags & ~ALL) !== 0) throw new Error(`not a key record (state ${buffer[0]}, flags ${flags})`);
  const read = new Reader(buffer);
  read.at = 3;
  const seq = read.number();
  const time = read.number();
  const modified = read.number();
  const size = flags & SIZE ? read.number() : null;
  const md5 = flags & MD5 ? read.string() : null;
  const etag = flags & ETAG ? read.string() : null;
  const contentType = flags & CONTENT_TYPE ? read.string() : null;
  const version = flags & VERSION ? read.number() : 0;
  const volumes = read.volumes();
  const writing = flags & WRITING ? read.blob() : null;
  let stale: BlobVersion[] = [];
  if (flags & STALE) {
    const count = buffer.readUInt16LE(read.at);
    read.at += 2;
    stale = Array.from({ length: count }, () => read.blob());
  }
  const metadata = flags & METADATA ? read.map() : {};
  const headers = flags & HEADERS ? read.map() : {};
  const checksum = flags & CHECKSUM ? { algorithm: read.string(), value: read.string(), type: read.string() } : null;
  const parts: Part[] = [];
  if (flags & PARTS) {
    const count = buffer.readUInt32LE(read.at);
    read.at += 4;
    for (let i = 0; i < count; i++) {
      const partSize = read.number();
      const partEtag = read.string();
      const hasChecksum = buffer[read.at++] === 1;
      parts.push({ size: partSize, etag: partEtag, checksum: hasChecksum ? read.string() : null });
    }
  }
  let overwrites: BlobVersion[] = NO_BLOBS;
  if (flags & OVERWRITES) {
    const count = buffer.readUInt16LE(read.at);
    read.at += 2;
    overwrites = Array.from({ length: count }, () => read.blob());
  }
  if (read.at !== buffer.length) throw new Error(`not a key record (${buffer.length} bytes, ${read.at} read)`);
  return {
    state,
    volumes,
    size,
    md5,
    seq,
    time,
    version,
    etag,
    contentType,
    metadata,
    modified,
    writing,
    stale,
    headers,
    checksum,
    parts,
    overwrites,
  };
}
