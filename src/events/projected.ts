// The projector's reader of events: what replay decodes a million times. It reads an event's
// Avro bytes (schemas/event.avsc) straight from its block, the fields the projection uses and
// no others: seq, time, key, then the change; the cause is skipped. The changes a log is mostly
// made of (writes, unlinks, deletes, relocations, S3 commits) are read by hand here; the rest,
// rare, by avsc's decoder of their branch of the union, so every change is read the one way the
// schema says. test/unit/avro-encoding.test.ts holds this reader to avsc's on every change.
//
//   event = seq long, time long, key string, cause { origin string, client [null, string], who [null, string] },
//           change: union index long, then that record's fields
//
// Longs are zig-zag varints; strings a long length then UTF-8; arrays and maps blocks of a long
// count (negative: then a long byte size) and their items, ended by a count of 0.
import type { Change, ChangeType, Part, ProjectedEvent } from './event.js';
import { changeBranches } from './event.js';

/**
 * Short strings that repeat from event to event (a volume, "host:port/svNN"), decoded once and
 * then found by their bytes: most events name the same few volumes, and a replay reads millions.
 */
class StringTable {
  private readonly bytes: Array<Buffer | undefined> = new Array<Buffer | undefined>(1024);
  private readonly texts: string[] = new Array<string>(1024);

  get(buffer: Buffer, start: number, end: number): string {
    let hash = 0x811c9dc5;
    for (let i = start; i < end; i++) hash = Math.imul(hash ^ buffer[i]!, 0x01000193);
    const slot = (hash >>> 0) & 1023;
    const known = this.bytes[slot];
    if (known !== undefined && known.length === end - start) {
      let same = true;
      for (let i = 0; i < known.length; i++) {
        if (known[i] !== buffer[start + i]) {
          same = false;
          break;
        }
      }
      if (same) return this.texts[slot]!;
    }
    const text = buffer.toString('utf8', start, end);
    this.bytes[slot] = Buffer.from(buffer.subarray(start, end));
    this.texts[slot] = text;
    return text;
  }
}

const volumeNames = new StringTable();
/** Longer strings are not volumes: decoded as they come. */
const TABLE_MAX_BYTES = 64;

/** A cursor over one buffer: each read moves it on. */
class Cursor {
  at: number;
  constructor(
    readonly buffer: Buffer,
    offset: number,
  ) {
    this.at = offset;
  }

  long(): number {
    const buffer = this.buffer;
    let byte = buffer[this.at++]!;
    let n = byte & 0x7f;
    if (byte & 0x80) {
      // Past 28 bits, arithmetic rather than shifts: seqs and times stay below 2^53.
      let scale = 0x80;
      do {
        if (this.at >= buffer.length) throw new Error('truncated event');
        byte = buffer[this.at++]!;
        n += (byte & 0x7f) * scale;
        scale *= 0x80;
      } while (byte & 0x80);
    }
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }

  string(): string {
    const length = this.long();
    const start = this.at;
    const end = start + length;
    if (length < 0 || end > this.buffer.length) throw new Error('truncated event');
    this.at = end;
    return this.buffer.toString('utf8', start, end);
  }

  skipString(): void {
    const length = this.long();
    if (length < 0 || this.at + length > this.buffer.length) throw new Error('truncated event');
    this.at += length;
  }

  /** A ["null", "string"] union. */
  optionalString(): string | null {
    return this.long() === 0 ? null : this.string();
  }

  /** An array of strings that repeat (volumes): each found in the string table by its bytes. */
  volumes(): string[] {
    const items: string[] = [];
    for (let count = this.long(); count !== 0; count = this.long()) {
      if (count < 0) {
        count = -count;
        this.long(); // the block's byte size
      }
      for (let i = 0; i < count; i++) {
        const length = this.long();
        const start = this.at;
        const end = start + length;
        if (length < 0 || end > this.buffer.length) throw new Error('truncated event');
        this.at = end;
        items.push(length <= TABLE_MAX_BYTES ? volumeNames.get(this.buffer, start, end) : this.buffer.toString('utf8', start, end));
      }
    }
    return items;
  }

  stringMap(): Record<string, string> {
    const map: Record<string, string> = {};
    for (let count = this.long(); count !== 0; count = this.long()) {
      if (count < 0) {
        count = -count;
        this.long();
      }
      for (let i = 0; i < count; i++) {
        const name = this.string();
        map[name] = this.string();
      }
    }
    return map;
  }
}

/** The changes read by hand, by their name in the union; the others go through avsc. */
const readers: Partial<Record<ChangeType, (cursor: Cursor) => Change>> = {
  WriteStarted: (cursor) => ({ type: 'WriteStarted', volumes: cursor.volumes() }),
  WriteCommitted: (cursor) => {
    const volumes = cursor.volumes();
    const size = cursor.long();
    return { type: 'WriteCommitted', volumes, size, md5: cursor.optionalString() };
  },
  WriteAborted: (cursor) => ({ type: 'WriteAborted', reason: cursor.string() }),
  KeyUnlinked: () => ({ type: 'KeyUnlinked' }),
  KeyLinked: () => ({ type: 'KeyLinked' }),
  KeyDeleted: (cursor) => ({ type: 'KeyDeleted', retained: cursor.buffer[cursor.at++] === 1 }),
  DeleteStarted: () => ({ type: 'DeleteStarted' }),
  KeyRelocated: (cursor) => ({ type: 'KeyRelocated', volumes: cursor.volumes() }),
  StaleRemoved: (cursor) => ({ type: 'StaleRemoved', version: cursor.long() }),
  ObjectCommitted: (cursor) => {
    const volumes = cursor.volumes();
    const size = cursor.long();
    const md5 = cursor.optionalString();
    const version = cursor.long();
    const etag = cursor.optionalString();
    const contentType = cursor.optionalString();
    const metadata = cursor.stringMap();
    const headers = cursor.stringMap();
    const checksum = cursor.long() === 0 ? null : { algorithm: cursor.string(), value: cursor.string(), type: cursor.string() };
    const parts: Part[] = [];
    for (let count = cursor.long(); count !== 0; count = cursor.long()) {
      if (count < 0) {
        count = -count;
        cursor.long(); // the block's byte size
      }
      for (let i = 0; i < count; i++) parts.push({ size: cursor.long(), etag: cursor.string(), checksum: cursor.optionalString() });
    }
    return { type: 'ObjectCommitted', volumes, size, md5, version, etag, contentType, metadata, headers, checksum, parts };
  },
};

/** For each branch of the union, in the schema's order: how its change is read. */
const byIndex = changeBranches.map(({ type, decode }) => {
  const read = readers[type];
  if (read) return read;
  return (cursor: Cursor): Change => {
    const { change, end } = decode(cursor.buffer, cursor.at);
    cursor.at = end;
    return change;
  };
});

/** Decodes the event at `offset` for the projector; returns it and the offset after it. */
export function readProjected(buffer: Buffer, offset: number): { event: ProjectedEvent; end: number } {
  const cursor = new Cursor(buffer, offset);
  const seq = cursor.long();
  const time = cursor.long();
  const key = cursor.string();
  cursor.skipString(); // cause.origin
  if (cursor.long() !== 0) cursor.skipString(); // cause.client
  if (cursor.long() !== 0) cursor.skipString(); // cause.who
  const change = readChange(cursor);
  return { event: { seq, time, key, change }, end: cursor.at };
}

function readChange(cursor: Cursor): Change {
  const branch = cursor.long();
  const read = byIndex[branch];
  if (read === undefined) throw new Error(`not an event: change ${branch} is not in the schema`);
  const change = read(cursor);
  if (cursor.at > cursor.buffer.length) throw new Error('truncated event');
  return change;
}

/**
 * What a filter of events looks at (mkv audit), read by hand as the projector reads, and where
 * the event ends: so only the events it keeps are decoded whole.
 */
export function skimEvent(
  buffer: Buffer,
  offset: number,
): { time: number; key: string; who: string | null; type: ChangeType; end: number } {
  const cursor = new Cursor(buffer, offset);
  cursor.long(); // seq
  const time = cursor.long();
  const key = cursor.string();
  cursor.skipString(); // cause.origin
  if (cursor.long() !== 0) cursor.skipString(); // cause.client
  const who = cursor.optionalString();
  const { type } = readChange(cursor);
  return { time, key, who, type, end: cursor.at };
}
