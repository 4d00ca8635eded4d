// The event types of the log, checked against schemas/event.avsc, and their Avro encoding.
//
// In TypeScript an event's change is a tagged union ({ type: 'WriteCommitted', ... }); in Avro
// it is a wrapped union ({ 'mkv.WriteCommitted': {...} }). toAvro/fromAvro convert between them.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import { MkvError } from '../errors.js';

export type WriteStarted = { type: 'WriteStarted'; volumes: string[] };
export type WriteCommitted = { type: 'WriteCommitted'; volumes: string[]; size: number; md5: string | null };
export type WriteAborted = { type: 'WriteAborted'; reason: string };
export type KeyUnlinked = { type: 'KeyUnlinked' };
export type KeyLinked = { type: 'KeyLinked' };
/** retained: a DELETE with --retain, which keeps the key's blobs for the window (false in older logs). */
export type KeyDeleted = { type: 'KeyDeleted'; retained: boolean };
export type DeleteStarted = { type: 'DeleteStarted' };
/** A version of a key's blob on volumes: 0 the key's path, N that path with ~N. */
export type BlobVersion = { version: number; volumes: string[] };
/** A key's whole record, as a snapshot or an undo carries it (index/evolve.ts's KeyRecord is this with seq and time). */
export type ObjectState = {
  state: KeyStateName;
  /** Where the blob is (live, unlinked), is being written (pending) or removed (deleting), in placement order. */
  volumes: string[];
  size: number | null;
  md5: string | null;
  /** Which blob holds the value: 0 the key's path (placement.ts keyToPath), N that path with ~N (an S3 overwrite). */
  version: number;
  /** The S3 ETag when it is not the md5 (a multipart upload's "md5-N"). */
  etag: string | null;
  contentType: string | null;
  /** S3 user metadata (x-amz-meta-*), by lower-case name. */
  metadata: Record<string, string>;
  /** When the value was written: S3's Last-Modified (a later UNLINK, LINK or move does not change it). */
  modified: number;
  /** A new value being written beside this one (an S3 overwrite in progress). */
  writing: BlobVersion | null;
  /** Blobs of earlier values still to remove (after an overwrite; gc removes what is left). */
  stale: BlobVersion[];
  /** The object headers S3 keeps and serves back (cache-control, content-disposition, content-encoding, content-language, expires), by lower-case name. */
  headers: Record<string, string>;
  /** The checksum the client sent with the value, checked as it arrived. */
  checksum: Checksum | null;
  /** A multipart upload's parts, in order; none for a value written whole. */
  parts: Part[];
  /** Further overwrites in progress at once, after `writing` (S3 PutObjects of one key that overlap), oldest first. */
  overwrites: BlobVersion[];
};
/** A checksum of a value (x-amz-checksum-ALGORITHM): its base64 digest; COMPOSITE: of its parts' digests, then -N. */
export type Checksum = { algorithm: string; value: string; type: string };
/** One part of a value a multipart upload wrote. */
export type Part = { size: number; etag: string; checksum: string | null };
export type WriteUndone = { type: 'WriteUndone'; reason: string; restored: ObjectState };
export type ObjectCommitted = {
  type: 'ObjectCommitted';
  volumes: string[];
  size: number;
  md5: string | null;
  version: number;
  etag: string | null;
  contentType: string | null;
  metadata: Record<string, string>;
  headers: Record<string, string>;
  checksum: Checksum | null;
  parts: Part[];
};
export type MetadataReplaced = {
  type: 'MetadataReplaced';
  contentType: string | null;
  metadata: Record<string, string>;
  headers: Record<string, string>;
};
/** `abandons`: the earlier overwrites (versions) this one gives up as never to finish; null (older logs): every one. */
export type OverwriteStarted = { type: 'OverwriteStarted'; volumes: string[]; abandons: number[] | null };
/** `version`: the overwrite given up; 0 (and older logs): every one in progress. */
export type OverwriteAborted = { type: 'OverwriteAborted'; reason: string; version: number };
export type StaleRemoved = { type: 'StaleRemoved'; version: number };
export type ObjectSnapshot = { type: 'ObjectSnapshot'; state: ObjectState; lastSeq: number; lastTime: number };
export type ObjectDiscovered = { type: 'ObjectDiscovered'; volumes: string[]; size: number | null; version: number };
/** S3 CreateBucket, DeleteBucket: the event's key is the bucket's name (no leading slash, so no key's). */
export type BucketCreated = { type: 'BucketCreated'; location: string | null; owner: string | null };
export type BucketDeleted = { type: 'BucketDeleted' };
/** A created bucket as a compaction found it. */
/**
 * S3 DeleteObject by version id (--retain) of the key's latest version or delete marker: `version`
 * (a value's seq, or a marker's) is the latest again, the record `state`.
 */
export type VersionRestored = { type: 'VersionRestored'; version: number; state: ObjectState };
/** Delete marker `marker` (--retain) removed, by its id or past the window: the record `state`, null the key gone. */
export type MarkerRemoved = { type: 'MarkerRemoved'; marker: number; state: ObjectState | null };
export type BucketSnapshot = {
  type: 'BucketSnapshot';
  created: number;
  lastSeq: number;
  location: string | null;
  owner: string | null;
};
export type KeyRelocated = { type: 'KeyRelocated'; volumes: string[] };
export type KeyDiscovered = { type: 'KeyDiscovered'; volumes: string[]; size: number | null; md5: string | null };
export type ReplicaRepaired = { type: 'ReplicaRepaired'; volume: string; source: string };
export type KeySnapshot = {
  type: 'KeySnapshot';
  state: KeyStateName;
  volumes: string[];
  size: number | null;
  md5: string | null;
  lastSeq: number;
  lastTime: number;
};

export type Change =
  | WriteStarted
  | WriteCommitted
  | WriteAborted
  | KeyUnlinked
  | KeyLinked
  | KeyDeleted
  | KeyRelocated
  | KeyDiscovered
  | ReplicaRepaired
  | KeySnapshot
  | DeleteStarted
  | WriteUndone
  | ObjectCommitted
  | OverwriteStarted
  | OverwriteAborted
  | StaleRemoved
  | ObjectSnapshot
  | ObjectDiscovered
  | MetadataReplaced
  | BucketCreated
  | BucketDeleted
  | BucketSnapshot
  | VersionRestored
  | MarkerRemoved;

/** The changes of a bucket (index/buckets.ts), not of a key: their event's key is the bucket's name. */
export function isBucketChange(change: Change): change is BucketCreated | BucketDeleted | BucketSnapshot {
  return change.type === 'BucketCreated' || change.type === 'BucketDeleted' || change.type === 'BucketSnapshot';
}

export type ChangeType = Change['type'];

/** A key's state, as events name it (index/evolve.ts's KeyState). */
export type KeyStateName = 'live' | 'unlinked' | 'pending' | 'deleting' | 'deleted';

export interface Cause {
  /** api, rebalance, rebuild, repair, gc, ... */
  origin: string;
  /** The client address, for API calls. */
  client: string | null;
  /**
   * Who made the API call: the access key it was signed with, or "anonymous". Absent on a server
   * without --credentials, for the master's own work, and in events written before it existed.
   */
  who?: string | null;
}

/** What a caller asks the writer to append: the log gives it a seq and a time. */
export interface EventInput {
  key: string;
  cause: Cause;
  change: Change;
}

export interface LogEvent extends EventInput {
  seq: number;
  /** Milliseconds since the Unix epoch. */
  time: number;
}

/** What the projection reads of an event: not its cause. */
export type ProjectedEvent = Pick<LogEvent, 'seq' | 'time' | 'key' | 'change'>;

const schemaPath = fileURLToPath(new URL('../../../schemas/event.avsc', import.meta.url));

/** The writer schema, exactly as stored in every segment header. */
export const eventSchemaJson: string = JSON.stringify(JSON.parse(readFileSync(schemaPath, 'utf8')));

/**
 * The schemas earlier builds wrote events with (schemas/past/): a stream's messages name theirs
 * only by a fingerprint, and a stream outlives the build that started it. (A segment names its
 * schema whole, in its header.)
 */
export function pastSchemas(): string[] {
  const dir = fileURLToPath(new URL('../../../schemas/past/', import.meta.url));
  return readdirSync(dir)
    .filter((name) => name.endsWith('.avsc'))
    .sort()
    .map((name) => JSON.stringify(JSON.parse(readFileSync(join(dir, name), 'utf8'))));
}

export const eventType = avro.Type.forSchema(JSON.parse(eventSchemaJson) as avro.Schema);

const NAMESPACE = 'mkv.';

// avsc leaves ["null", T] unions unwrapped (a plain value or null) and wraps the union of
// records by full name, so only `change` needs converting.
type AvroEvent = Omit<LogEvent, 'change'> & { change: Record<string, Record<string, unknown>> };

function toAvro(event: LogEvent): AvroEvent {
  const { type, ...fields } = event.change;
  const { origin, client, who } = event.cause;
  return { ...event, cause: { origin, client, who: who ?? null }, change: { [NAMESPACE + type]: fields } };
}

/** Changes that hold records of their own, which avsc decodes as instances of its classes. */
const NESTED = new Set(['WriteUndone', 'ObjectSnapshot', 'ObjectCommitted', 'VersionRestored', 'MarkerRemoved']);

/** The change of a decoded event: the wrapped union's one branch, tagged with its type, as plain data. */
function changeFromAvro(wrapped: AvroEvent['change']): Change {
  let wrappedName = '';
  for (wrappedName in wrapped) break;
  return changeOf(wrappedName.slice(NAMESPACE.length), wrapped[wrappedName]!);
}

function changeOf(type: string, fields: Record<string, unknown>): Change {
  return { type, ...(NESTED.has(type) ? structuredClone(fields) : fields) } as unknown as Change;
}

/**
 * The branches of the event's change union, in the schema's order: each one's type and avsc's
 * decoder of its record alone (events/projected.ts reads the rare ones through it).
 */
export const changeBranches: ReadonlyArray<{
  type: ChangeType;
  decode: (buffer: Buffer, offset: number) => { change: Change; end: number };
}> = (
  (eventType as avro.types.RecordType).fields.find((field) => field.name === 'change')!.type as avro.types.UnwrappedUnionType
).types.map((branch) => {
  const type = (branch as avro.types.RecordType).name!.slice(NAMESPACE.length) as ChangeType;
  return {
    type,
    decode(buffer: Buffer, offset: number) {
      const decoded: { value: unknown; offset: number } = branch.decode(buffer, offset);
      if (decoded.offset < 0) throw new Error('truncated event');
      return { change: changeOf(type, decoded.value as Record<string, unknown>), end: decoded.offset };
    },
  };
});

function causeFromAvro(cause: AvroEvent['cause']): Cause {
  return cause.who == null
    ? { origin: cause.origin, client: cause.client }
    : { origin: cause.origin, client: cause.client, who: cause.who };
}

function fromAvro(record: AvroEvent): LogEvent {
  const change = changeFromAvro(record.change);
  return {
    seq: record.seq,
    time: record.time,
    key: record.key,
    cause: causeFromAvro(record.cause),
    change,
  };
}

// An event's Avro bytes, remembered from when it was encoded for or decoded from the log, so
// the projector stores the history row without encoding the event again. A non-enumerable
// property (not a WeakMap: a million WeakMap entries cost a replay more than the encoding they
// save, in the garbage collector's ephemeron tables); a copy ({ ...event }) does not carry it.
const ENCODED = Symbol('mkv.encodedEvent');

function remember(event: LogEvent, bytes: Buffer): void {
  Object.defineProperty(event, ENCODED, { value: bytes });
}

export function encodeEvent(event: LogEvent): Buffer {
  let bytes = (event as { [ENCODED]?: Buffer })[ENCODED];
  if (!bytes) {
    bytes = eventType.toBuffer(toAvro(event));
    remember(event, bytes);
  }
  return bytes;
}

const longType = avro.Type.forSchema('long');

/**
 * Decodes an event whose encoding at `offset` has seq 0 in place of its own (a stream message:
 * the stream numbers it), and gives it `seq`. Its encoding is remembered with the seq, its other
 * bytes as they came: the projector's history row costs no encoding.
 */
export function decodeRenumbered(buffer: Buffer, offset: number, seq: number): LogEvent {
  if (buffer[offset] !== 0) throw new Error('not an event of seq 0');
  const { event: decoded, end } = decodeEvent(buffer, offset);
  const event: LogEvent = { seq, time: decoded.time, key: decoded.key, cause: decoded.cause, change: decoded.change };
  remember(event, Buffer.concat([longType.toBuffer(seq), buffer.subarray(offset + 1, end)]));
  return event;
}

/** Decodes one event at `offset` of `buffer`; returns the event and the offset after it. */
export function decodeEvent(buffer: Buffer, offset = 0): { event: LogEvent; end: number } {
  const decoded = eventType.decode(buffer, offset);
  const value: unknown = decoded.value;
  const end = decoded.offset;
  if (end < 0) throw new Error('truncated event');
  const event = fromAvro(value as AvroEvent);
  remember(event, buffer.subarray(offset, end));
  return { event, end };
}

/**
 * How the events of one writer's schema are read (a segment's header names its writer's; a
 * stream message's fingerprint does): the current schema's as they are, an older one's through
 * avsc's resolver into the current types — the fields a newer schema added take their defaults.
 * The log is never rewritten for a new schema; every older segment stays readable as it is.
 */
export interface EventReader {
  /** The schema is this build's: the events' bytes are what this build would write. */
  readonly current: boolean;
  decode(buffer: Buffer, offset: number): { event: LogEvent; end: number };
}

export const currentReader: EventReader = { current: true, decode: (buffer, offset) => decodeEvent(buffer, offset) };

const readers = new Map<string, EventReader>([[eventSchemaJson, currentReader]]);

/** The reader of events written with `writerSchemaJson` (a segment's avro.schema); MKV_CORRUPT_LOG when it is no event schema this build can resolve. */
export function eventReader(writerSchemaJson: string): EventReader {
  let reader = readers.get(writerSchemaJson);
  if (reader) return reader;
  let resolver: avro.Resolver;
  try {
    resolver = eventType.createResolver(avro.Type.forSchema(JSON.parse(writerSchemaJson) as avro.Schema));
  } catch (error) {
    throw new MkvError('MKV_CORRUPT_LOG', `the log was written with a schema this version cannot read (${(error as Error).message})`);
  }
  reader = {
    current: false,
    decode(buffer, offset) {
      const decoded = eventType.decode(buffer, offset, resolver);
      const value: unknown = decoded.value;
      if (decoded.offset < 0) throw new Error('truncated event');
      // Remembered as this build encodes it: a history row holds the current schema's bytes.
      const event = fromAvro(value as AvroEvent);
      return { event, end: decoded.offset };
    },
  };
  readers.set(writerSchemaJson, reader);
  return reader;
}

/** The seq of the event encoded at `offset`: its first field, in every schema. */
export function seqOf(buffer: Buffer, offset: number): number {
  let n = 0;
  let scale = 1;
  for (let at = offset; at < buffer.length; at++) {
    const byte = buffer[at]!;
    n += (byte & 0x7f) * scale;
    scale *= 0x80;
    if ((byte & 0x80) === 0) return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }
  throw new Error('truncated event');
}

/**
 * Where the key's UTF-8 bytes are in the event encoded at `offset`: after seq and time, two Avro
 * longs, and the key's length, a third (schemas/event.avsc's first three fields, which never move).
 * The projector copies them from there instead of encoding the key again.
 */
export function encodedKey(buffer: Buffer, offset: number): { start: number; end: number } {
  let at = offset;
  while (buffer[at++]! & 0x80); // seq
  while (buffer[at++]! & 0x80); // time
  let zigzag = 0;
  let shift = 0;
  let byte: number;
  do {
    byte = buffer[at++]!;
    zigzag += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  const length = zigzag / 2; // never negative: an odd zigzag would be
  if (!Number.isInteger(length) || at + length > buffer.length) throw new Error('not an encoded event: its key runs past it');
  return { start: at, end: at + length };
}

/** The JSON form users see (history, log dump): flat, with the time as ISO 8601. */
export function eventToJson(event: LogEvent): Record<string, unknown> {
  const { type, ...fields } = event.change;
  return {
    seq: event.seq,
    time: new Date(event.time).toISOString(),
    type,
    key: event.key,
    ...fields,
    origin: event.cause.origin,
    client: event.cause.client,
    ...(event.cause.who == null ? {} : { who: event.cause.who }),
  };
}
