// The versions of a key, from its history: every value it held, named by the seq of the event
// that made it the key's value (a commit, a rescan's discovery, a compaction's snapshot), where
// its bytes are and whether they are still there. GET /key?version=SEQ and ?at=TIME read them;
// ?history marks each commit with whether its bytes are held.
//
//   a value's blob      is removed by
//   version 0 (the key's own path, as the original writes it)
//                       a native PUT over the unlinked key (WriteStarted writes the same path;
//                       WriteUndone gives it back: nothing was written), KeyDeleted
//   version N (path~N)  StaleRemoved of N (an overwrite's replaced value, after --stale-grace),
//                       KeyDeleted
//
// A value moved by rebalance or repair is followed (KeyRelocated moves the value's blob).
import { MkvError } from '../errors.js';
import type { BlobVersion, LogEvent, ObjectState } from '../events/event.js';
import { keyRecord, type KeyRecord } from '../index/evolve.js';
import { findReplica } from './read-value.js';
import type { KeyDeps } from './deps.js';
import { blobPath } from '../placement.js';

export interface KeyVersion {
  /** Its id: the seq of the event that made it the key's value. */
  seq: number;
  /** When it became the key's value. */
  time: number;
  /** Its blob: which version of the key's path, on which volumes (as moved since). */
  blob: BlobVersion;
  size: number | null;
  md5: string | null;
  /** When it stopped being the key's value (written over, deleted); null while it is. */
  replaced: number | null;
  /** Whether its bytes are still on the volumes. */
  held: boolean;
  /** When its bytes were removed (null while held). */
  removed: number | null;
  /** What S3 keeps with it (ObjectCommitted's): none for a value the native API wrote. */
  s3: S3Attributes | null;
}

export type S3Attributes = Pick<ObjectState, 'etag' | 'contentType' | 'metadata' | 'headers' | 'checksum' | 'parts'>;

/** A DELETE with --retain (KeyDeleted, retained): S3's delete marker, named by its seq. */
export interface DeleteMarker {
  seq: number;
  time: number;
  /** When a value came after it (it stopped being the key's latest); null while it is. */
  replaced: number | null;
}

/** What a key was at a moment: the version it served, or none (it did not exist, or was not live). */
interface Moment {
  time: number;
  version: KeyVersion | undefined;
}

export interface KeyVersions {
  versions: KeyVersion[];
  markers: DeleteMarker[];
  /** The key's readable value from each event on, in order (one entry per event). */
  moments: Moment[];
}

/** Folds a key's history (oldest first) into its versions. */
export function versionsOf(history: readonly LogEvent[]): KeyVersions {
  const versions: KeyVersion[] = [];
  const markers: DeleteMarker[] = [];
  const moments: Moment[] = [];
  /** The key's value (live or unlinked), and whether it is live. */
  let value: KeyVersion | undefined;
  let live = false;
  /** The value a native PUT is writing over (an unlinked one), which WriteUndone gives back. */
  let writtenOver: KeyVersion | undefined;
  const remove = (version: KeyVersion | undefined, time: number) => {
    if (version?.held) Object.assign(version, { held: false, removed: time });
  };
  const end = (time: number) => {
    if (value && value.replaced === null) value.replaced = time;
  };
  const removeAll = (time: number) => {
    for (const version of versions) remove(version, time);
    markers.length = 0;
  };
  const begin = (seq: number, time: number, blob: BlobVersion, size: number | null, md5: string | null, s3: S3Attributes | null = null) => {
    end(time);
    const marker = markers.at(-1);
    if (marker && marker.replaced === null) marker.replaced = time;
    value = {
      seq,
      time,
      blob: { version: blob.version, volumes: [...blob.volumes] },
      size,
      md5,
      replaced: null,
      held: true,
      removed: null,
      s3,
    };
    versions.push(value);
    live = true;
  };
  for (const { seq, time, change } of history) {
    switch (change.type) {
      case 'WriteStarted':
        // Written at the key's own path: a value there (an unlinked one) is overwritten; one in
        // another blob stays until StaleRemoved.
        writtenOver = value;
        end(time);
        if (value?.blob.version === 0) remove(value, time);
        value = undefined;
        live = false;
        break;
      case 'WriteCommitted':
        writtenOver = undefined;
        begin(seq, time, { version: 0, volumes: change.volumes }, change.size, change.md5);
        break;
      case 'ObjectCommitted': {
        const { etag, contentType, metadata, headers, checksum, parts } = change;
        const s3 = { etag, contentType, metadata, headers, checksum, parts };
        begin(seq, time, { version: change.version, volumes: change.volumes }, change.size, change.md5, s3);
        break;
      }
      case 'VersionRestored': {
        // The latest removed by its id: a value (replaced now; its blob goes with StaleRemoved),
        // or a delete marker (no version any more). The one before it is the latest again.
        if (value) end(time);
        else markers.pop();
        const restored = versions.find((version) => version.seq === change.version);
        value = restored;
        live = restored !== undefined && change.state.state === 'live';
        if (restored) restored.replaced = null;
        const marker = markers.at(-1);
        if (!restored && marker?.seq === change.version) marker.replaced = null;
        break;
      }
      case 'MarkerRemoved': {
        const at = markers.findIndex((marker) => marker.seq === change.marker);
        const latest = at !== -1 && markers[at]!.replaced === null;
        if (at !== -1) markers.splice(at, 1);
        // The latest gone, one before it is the latest again (nothing came between); no state: nothing is left.
        if (latest && markers.length > 0) markers.at(-1)!.replaced = null;
        if (change.state === null) {
          removeAll(time);
          value = undefined;
          live = false;
        }
        break;
      }
      case 'MetadataReplaced':
        if (value?.s3) value.s3 = { ...value.s3, contentType: change.contentType, metadata: change.metadata, headers: change.headers };
        break;
      case 'WriteUndone':
        // Nothing was written: the value written over is back, and so are its bytes.
        if (writtenOver) Object.assign(writtenOver, { replaced: null });
        if (writtenOver?.blob.version === 0) Object.assign(writtenOver, { held: true, removed: null });
        value = writtenOver;
        writtenOver = undefined;
        live = change.restored.state === 'live';
        break;
      case 'WriteAborted':
        writtenOver = undefined;
        break;
      case 'KeyRelocated':
        if (value) value.blob.volumes = [...change.volumes];
        break;
      case 'KeyDiscovered':
      case 'ObjectDiscovered': {
        const version = change.type === 'KeyDiscovered' ? 0 : change.version;
        if (!value)
          begin(seq, time, { version, volumes: change.volumes }, change.size, change.type === 'KeyDiscovered' ? change.md5 : null);
        else if (value.blob.version === version) value.blob.volumes = [...change.volumes];
        break;
      }
      case 'KeySnapshot':
      case 'ObjectSnapshot': {
        // A compaction: the value as it was then stands for the events folded before it.
        const state = change.type === 'KeySnapshot' ? { ...change, version: 0 } : change.state;
        if (state.state === 'live' || state.state === 'unlinked') {
          const s3 = change.type === 'ObjectSnapshot' ? change.state : null;
          begin(seq, time, { version: state.version, volumes: state.volumes }, state.size, state.md5, s3);
          live = state.state === 'live';
        }
        break;
      }
      case 'StaleRemoved':
        for (const version of versions) if (version !== value && version.blob.version === change.version) remove(version, time);
        break;
      case 'KeyUnlinked':
        live = false;
        break;
      case 'DeleteStarted':
        end(time);
        live = false;
        break;
      case 'KeyLinked':
        live = value !== undefined;
        break;
      case 'KeyDeleted':
        // Retained (--retain): every blob stays until StaleRemoved; else all are gone.
        end(time);
        if (change.retained) {
          // On S3 a deleted key deleted again has another marker, the latest.
          const latest = markers.at(-1);
          if (latest && latest.replaced === null) latest.replaced = time;
          markers.push({ seq, time, replaced: null });
        } else removeAll(time);
        value = undefined;
        live = false;
        break;
      default:
        break;
    }
    moments.push({ time, version: live ? value : undefined });
  }
  return { versions, markers, moments };
}

/**
 * Whether a delete marker is still one of the key's versions: the latest, or one a value came
 * after less than the window ago (an older one has expired, as S3's noncurrent versions do).
 */
export function markerKept(marker: DeleteMarker, retainMs: number, now = Date.now()): boolean {
  return marker.replaced === null || marker.replaced >= now - retainMs;
}

/** The version that holds the record's value now (the newest held in its blob); undefined when none does (compacted away). */
export function currentVersion(found: KeyVersions, record: KeyRecord): KeyVersion | undefined {
  return found.versions.findLast((version) => version.held && version.blob.version === record.version);
}

/**
 * A version as the index would hold it had it stayed the key's value: the record a read of it
 * (S3 GetObject ?versionId) is served from.
 */
export function versionRecord(version: KeyVersion): KeyRecord {
  return keyRecord({
    state: 'live',
    volumes: version.blob.volumes,
    version: version.blob.version,
    size: version.size,
    md5: version.md5,
    seq: version.seq,
    time: version.time,
    modified: version.time,
    ...(version.s3 ?? {}),
  });
}

/** The version the key served at `time`: its value after the last event at or before it. */
export function versionAt(found: KeyVersions, time: number): KeyVersion | undefined {
  let at: KeyVersion | undefined;
  for (const moment of found.moments) {
    if (moment.time > time) break;
    at = moment.version;
  }
  return at;
}

/**
 * Where to read a version's bytes: a replica's URL (signed when the volumes hold a secret).
 * MKV_NOT_FOUND when the key had no such version, MKV_GONE when its bytes were removed, or no
 * replica serves them.
 */
export async function locateVersion(
  deps: KeyDeps,
  key: string,
  version: KeyVersion | undefined,
  what: string,
): Promise<{ url: string; version: KeyVersion }> {
  if (!version) throw new MkvError('MKV_NOT_FOUND', `${what}: the key had no value then`);
  if (!version.held)
    throw new MkvError('MKV_GONE', `${what}: version ${version.seq}'s bytes were removed at ${new Date(version.removed!).toISOString()}`);
  const found = await findReplica(deps, key, version.blob);
  if (!found) throw new MkvError('MKV_NOT_FOUND', `${what}: no replica serves version ${version.seq}`);
  return { url: deps.volumes.publicUrl(found.volume, blobPath(key, version.blob.version)), version };
}
