// evolve: the pure function the projector folds over the log. (record before, event) → record after.
import type { BlobVersion, Checksum, KeyStateName, ObjectState, Part, ProjectedEvent } from '../events/event.js';

/**
 * live: served. unlinked: not served, its blob kept (LINK serves it again). pending: a write in
 * progress, or one that never finished. deleting: a DELETE in progress, or one that never finished.
 * deleted: a DELETE with --retain: no value (404, as a key that does not exist), every blob it had
 * in `stale`, kept until the retention window passes; the record is there for its delete marker
 * (S3's latest version of it), and goes with the marker (MarkerRemoved).
 */
export type KeyState = KeyStateName;

/** A key's record in the index: its whole state (events/event.ts ObjectState) and the seq and time of the last event that changed it. */
export interface KeyRecord extends ObjectState {
  seq: number;
  time: number;
}

/**
 * Whether evolve needs the record before the event. Only the events that replace a record whole
 * (or remove it) do not; any other, including ones added later, gets the record.
 */
export function needsPrevious(event: ProjectedEvent): boolean {
  const type = event.change.type;
  return !(
    type === 'WriteAborted' ||
    type === 'WriteUndone' ||
    (type === 'KeyDeleted' && !event.change.retained) ||
    type === 'KeySnapshot' ||
    type === 'ObjectSnapshot' ||
    type === 'VersionRestored' ||
    type === 'MarkerRemoved'
  );
}

const NO_BLOBS: BlobVersion[] = [];
const NO_METADATA: Record<string, string> = {};

/** Earlier values' blobs, and `also` when it is not the version the key now holds. */
function staleWith(record: KeyRecord | undefined, also: Array<BlobVersion | null>, kept: number): BlobVersion[] {
  const more = also.filter((blob): blob is BlobVersion => blob !== null && blob.version !== kept);
  if (more.length === 0) return record?.stale ?? NO_BLOBS;
  return [...(record?.stale ?? []), ...more];
}

/**
 * What is stale once the key's own path (version 0) holds its value: the value's blob before, if
 * it was another version, and the overwrites in flight (a write in the key's path is taken only
 * when none is: their masters died). A key that had neither (every new key, in a replay a
 * million times) allocates nothing.
 */
function staleAtPath(record: KeyRecord | undefined, includeCurrent: boolean): BlobVersion[] {
  if (!record) return NO_BLOBS;
  if ((!includeCurrent || record.version === 0) && record.writing === null) return record.stale;
  return staleWith(record, [includeCurrent ? current(record) : null, ...inFlight(record)], 0);
}

/** The overwrites of the key in progress, oldest first. */
export function inFlight(record: KeyRecord): BlobVersion[] {
  if (record.writing === null) return NO_BLOBS;
  return record.overwrites.length === 0 ? [record.writing] : [record.writing, ...record.overwrites];
}

/** The record with the overwrites in progress `writing` (oldest first). */
function withInFlight(writing: BlobVersion[]): Pick<KeyRecord, 'writing' | 'overwrites'> {
  return { writing: writing[0] ?? null, overwrites: writing.length > 1 ? writing.slice(1) : NO_BLOBS };
}

/** undefined means the key does not exist. */
export function evolve(record: KeyRecord | undefined, event: ProjectedEvent): KeyRecord | undefined {
  const { seq, time, change } = event;
  switch (change.type) {
    case 'WriteStarted':
      // The key's path; a versioned blob the key held before is stale from now on.
      return keyRecord({ state: 'pending', volumes: change.volumes, seq, time, stale: staleAtPath(record, true) });
    case 'WriteCommitted':
      return keyRecord({
        state: 'live',
        volumes: change.volumes,
        seq,
        time,
        size: change.size,
        md5: change.md5,
        stale: staleAtPath(record, false),
      });
    case 'ObjectCommitted': {
      // The value it replaces is stale; the other overwrites in flight go on (the last to commit wins).
      const { volumes, size, md5, version, etag, contentType, metadata, headers, checksum, parts } = change;
      let stale = staleWith(record, [record && record.state !== 'deleted' ? current(record) : null], version);
      // An overwrite a retained DELETE found in flight (and made stale), even if another version
      // was restored since (S3 DeleteObject by version id), is the value now.
      if (stale.some((blob) => blob.version === version)) stale = stale.filter((blob) => blob.version !== version);
      const writing = record ? inFlight(record).filter((blob) => blob.version !== version) : NO_BLOBS;
      return keyRecord({
        state: 'live',
        seq,
        time,
        volumes,
        size,
        md5,
        version,
        etag,
        contentType,
        metadata,
        headers,
        checksum,
        parts,
        stale,
        writing: writing[0] ?? null,
        overwrites: writing.slice(1),
      });
    }
    case 'MetadataReplaced':
      return (
        record && {
          ...record,
          contentType: change.contentType,
          metadata: change.metadata,
          headers: change.headers,
          modified: time,
          seq,
          time,
        }
      );
    case 'OverwriteStarted': {
      // Beside the overwrites in flight, but those it gives up (their master died): their blobs are stale.
      if (!record) return record;
      const { abandons } = change;
      const earlier = inFlight(record);
      const given = abandons === null ? earlier : earlier.filter((blob) => abandons.includes(blob.version));
      const going = given.length === earlier.length ? NO_BLOBS : earlier.filter((blob) => !given.includes(blob));
      return {
        ...record,
        seq,
        time,
        ...withInFlight([...going, { version: seq, volumes: change.volumes }]),
        stale: staleWith(record, given, record.version),
      };
    }
    case 'OverwriteAborted':
      if (!record) return record;
      return {
        ...record,
        seq,
        time,
        ...withInFlight(change.version === 0 ? NO_BLOBS : inFlight(record).filter((blob) => blob.version !== change.version)),
      };
    case 'StaleRemoved':
      // A deleted key's record stays for its delete marker when its last blob goes: MarkerRemoved ends it.
      return record && { ...record, seq, time, stale: record.stale.filter((blob) => blob.version !== change.version) };
    case 'KeyDeleted':
      return change.retained ? retire(record, seq, time) : undefined;
    case 'WriteAborted':
      return undefined;
    case 'WriteUndone':
      return fromState(change.restored, seq, time);
    case 'KeyUnlinked':
      return record && { ...record, state: 'unlinked', seq, time };
    case 'DeleteStarted':
      return record && { ...record, state: 'deleting', seq, time };
    case 'KeyLinked':
      return record && { ...record, state: 'live', seq, time };
    case 'KeyRelocated':
      return record && { ...record, volumes: change.volumes, seq, time };
    case 'KeySnapshot':
      // The record as it was when the log was compacted, stamped as it was then.
      return keyRecord({
        state: change.state,
        volumes: change.volumes,
        size: change.size,
        md5: change.md5,
        seq: change.lastSeq,
        time: change.lastTime,
      });
    case 'ObjectSnapshot':
      return fromState(change.state, change.lastSeq, change.lastTime);
    case 'VersionRestored':
      return fromState(change.state, seq, time);
    case 'MarkerRemoved':
      return change.state === null ? undefined : fromState(change.state, seq, time);
    case 'ReplicaRepaired':
      return record && { ...record, seq, time };
    case 'KeyDiscovered':
      // A rescan knows where a blob is, not its story: a key the log already knows keeps its state and md5.
      return record
        ? { ...record, volumes: change.volumes, size: record.size ?? change.size, seq, time }
        : keyRecord({ state: 'live', volumes: change.volumes, size: change.size, md5: change.md5, seq, time });
    case 'ObjectDiscovered':
      if (!record) return keyRecord({ state: 'live', volumes: change.volumes, size: change.size, version: change.version, seq, time });
      if (record.version === change.version) return { ...record, volumes: change.volumes, size: record.size ?? change.size, seq, time };
      // Another version than the key's value: left over from an earlier one.
      return { ...record, seq, time, stale: staleWith(record, [{ version: change.version, volumes: change.volumes }], record.version) };
    case 'BucketCreated':
    case 'BucketDeleted':
    case 'BucketSnapshot':
      return record; // a bucket's, not a key's: projected into `buckets` (index/buckets.ts)
  }
}

/**
 * A DELETE with --retain: the key serves nothing, and every blob it had (its value's, an
 * overwrite's given up, earlier values') is stale, kept for the window. A deleted key deleted
 * again (S3) is another delete marker on the same record.
 */
function retire(record: KeyRecord | undefined, seq: number, time: number): KeyRecord {
  // S3 gives a key that has no value a delete marker all the same: the record is there for it.
  if (!record) return keyRecord({ state: 'deleted', volumes: [], seq, time, modified: time });
  const held = record.state === 'live' || record.state === 'unlinked' ? [current(record)] : NO_BLOBS;
  const stale = [...record.stale, ...held, ...inFlight(record)];
  return keyRecord({ state: 'deleted', volumes: [], seq, time, stale, modified: record.modified });
}

/** Where the key's value is. */
export function current(record: KeyRecord): BlobVersion {
  return { version: record.version, volumes: record.volumes };
}

/** Every blob the key has on volumes: its value's, the overwrites' in flight, earlier values'. */
export function allBlobs(record: KeyRecord): BlobVersion[] {
  return [current(record), ...inFlight(record), ...record.stale];
}

/** A record as a snapshot or an undo carries it. */
export function toState(record: KeyRecord): ObjectState {
  const {
    state,
    volumes,
    size,
    md5,
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
  } = record;
  return {
    state,
    volumes,
    size,
    md5,
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

function fromState(state: ObjectState, seq: number, time: number): KeyRecord {
  return keyRecord({ ...state, seq, time });
}

/** What a record holds when an event says nothing of it. */
const NO_HEADERS: Record<string, string> = {};
const NO_PARTS: Part[] = [];

/**
 * Every record an event makes is built here, so all have one shape (a replay builds millions;
 * decodeRecord in record.ts, which reads one back, lists the same fields in the same order):
 * what the event gives, and for the rest what a value written whole, by no S3 client, holds.
 */
export function keyRecord(fields: {
  state: KeyState;
  volumes: string[];
  seq: number;
  time: number;
  size?: number | null;
  md5?: string | null;
  version?: number;
  etag?: string | null;
  contentType?: string | null;
  metadata?: Record<string, string>;
  /** When the value was written: the event's time unless given. */
  modified?: number;
  writing?: BlobVersion | null;
  overwrites?: BlobVersion[];
  stale?: BlobVersion[];
  headers?: Record<string, string>;
  checksum?: Checksum | null;
  parts?: Part[];
}): KeyRecord {
  return {
    state: fields.state,
    volumes: fields.volumes,
    size: fields.size ?? null,
    md5: fields.md5 ?? null,
    seq: fields.seq,
    time: fields.time,
    version: fields.version ?? 0,
    etag: fields.etag ?? null,
    contentType: fields.contentType ?? null,
    metadata: fields.metadata ?? NO_METADATA,
    modified: fields.modified ?? fields.time,
    writing: fields.writing ?? null,
    stale: fields.stale ?? NO_BLOBS,
    headers: fields.headers ?? NO_HEADERS,
    checksum: fields.checksum ?? null,
    parts: fields.parts ?? NO_PARTS,
    overwrites: fields.overwrites ?? NO_BLOBS,
  };
}
