// Storing a value under a key: what PUT, S3's PutObject and the completion of a multipart
// upload do, read top to bottom as the original's WriteToReplicas.
//
//   a new key (or a native PUT over an unlinked one), in the key's own path:
//     decide (403 a live key, 409 a write in flight) ─▶ lock + WriteStarted (fsync'd)
//     ─▶ the value to every replica at once ─▶ WriteCommitted (ObjectCommitted for S3) ─▶ unlock
//     a failure ─▶ remove what reached the replicas ─▶ WriteAborted (or the key stays pending)
//   an S3 overwrite, beside the value it replaces (which readers keep getting meanwhile):
//     OverwriteStarted (its seq N names the blob: the key's path with ~N; no lock is held, so
//     other overwrites of the key may overlap it, each in its own blob)
//     ─▶ the value to every replica ─▶ ObjectCommitted (the switch: old value or new, never a mix;
//     the last to commit wins) ─▶ the value it replaced removed a little later
//     (stale-sweeper.ts), StaleRemoved
//     a failure ─▶ remove what reached the replicas ─▶ OverwriteAborted N: the old value stays
//
// A small value (up to SMALL_VALUE_BYTES, its length known) is read whole before anything
// else, then sent to each replica as one buffer: no stream per replica, and a client that goes
// away mid-body leaves no trace in the log. A larger one is streamed to every replica at once
// and never held in memory:
//
//   source ──┬─ pipe ─▶ PassThrough ─▶ PUT ─▶ volume 1
//            ├─ pipe ─▶ PassThrough ─▶ PUT ─▶ volume 2      (pipe waits for the slowest)
//            ├─ pipe ─▶ PassThrough ─▶ PUT ─▶ volume 3
//            └─ 'data' ─▶ md5, byte count, body timeout
import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { isMkvError, MkvError } from '../errors.js';
import type { Cause, Change, Checksum, Part } from '../events/event.js';
import { inFlight, toState, type KeyRecord } from '../index/evolve.js';
import { blobPath, keyToVolumes } from '../placement.js';
import type { KeyDeps } from './deps.js';
import type { Key } from './key-limits.js';
import { checkWriteCondition, type WriteCondition } from './write-condition.js';
import { beginWrite, beginWriteWhenFree, inFlightElsewhere, type Decision, type KeyWrite } from './key-write.js';
import { beingDeleted } from './remove.js';
import { removeBlobs, removeReplicas } from './replicas.js';
import { deadBody, readSmallBody, watchBodyRate } from './slow-body.js';
import { sweepStale } from './stale-sweeper.js';

/**
 * A value to store: a byte stream and, when known, its length. A stream that must be checked
 * (against a signature, a Content-MD5) checks itself, and errors rather than end if it fails.
 */
export interface ValueSource {
  body: Readable;
  length: number | undefined;
  /** The checksum the value came with, known once the body has ended well (a trailer brings it last). */
  checksum?: () => Checksum | null;
}

/** S3's ways with a value: it replaces a live key's, may be empty, and keeps a Content-Type, user metadata and an ETag. */
export interface S3Value {
  contentType: string | null;
  /** x-amz-meta-* (by lower-case name, without the prefix). */
  metadata: Record<string, string>;
  /** The object headers S3 keeps (cache-control, content-disposition, content-encoding, content-language, expires). */
  headers: Record<string, string>;
  /** A multipart upload's ETag ("md5 of the parts' md5s-N"); the value's md5 otherwise. */
  etag?: string;
  /** A multipart upload's checksum (of its parts'), and its parts; else the source's checksum, if it came with one. */
  checksum?: Checksum | null;
  parts?: Part[];
}

export interface Stored {
  /** The checksum the value came with and is kept with (S3), if any. */
  checksum: Checksum | null;
  size: number;
  /** Hex md5 of the value (null with --md5sum false). */
  md5: string | null;
  /** The seq of the event that committed it. */
  seq: number;
}

/** Values up to this size are read whole, then written to each replica from one buffer. */
export const SMALL_VALUE_BYTES = 64 * 1024;

/** How a value is stored: as S3 does (none: the native API), and whether it may replace a value the key holds. */
export interface StoreOptions {
  s3?: S3Value;
  /**
   * Whether the caller may destroy a value the key holds (live, or unlinked for LINK to bring
   * back): with credentials, a key that may write but not delete never overwrites one. Default true.
   */
  mayReplace?: boolean;
  /** What the write asks of the value the key holds (S3's If-None-Match: *, If-Match), checked under the key's lock. */
  condition?: WriteCondition;
  /** Whether the client that asked for the write has gone (an S3 write waiting for its key stops waiting). */
  clientGone?: () => boolean;
}

/**
 * Stores `source` under `key`. The native API's PUT (no `s3`) refuses a live key (MKV_EXISTS)
 * and an empty value, as the original does; S3's replaces a live value, and stores an empty one.
 */
export async function storeValue(deps: KeyDeps, key: Key, source: ValueSource, cause: Cause, options: StoreOptions = {}): Promise<Stored> {
  const { s3, mayReplace = true, condition, clientGone } = options;
  if (source.length === 0 && !s3) throw emptyBody('Content-Length is 0');
  const targetVolumes = keyToVolumes(key, deps.config.volumes, deps.config.replicas, deps.config.subvolumes);
  const small =
    source.length !== undefined && source.length <= SMALL_VALUE_BYTES
      ? await readWhole(source.body, source.length, deps.config.bodyTimeoutMs)
      : undefined;
  const decide = (record: KeyRecord | undefined) =>
    decideStore(deps, key, record, targetVolumes, cause, s3 !== undefined, mayReplace, condition);
  const write = await (s3 && condition === undefined
    ? // S3 takes every unconditional write of a key, the last to end wins: one that finds the key held waits its turn.
      beginWriteWhenFree(deps.writer, deps.index, key, decide, clientGone ? { clientGone } : {})
    : beginWrite(deps.writer, deps.index, key, decide, condition === undefined).catch((error: unknown) => {
        // A conditional write that races another: S3's ConditionalRequestConflict.
        if (condition && isMkvError(error, 'MKV_KEY_LOCKED'))
          throw new MkvError('MKV_CONDITIONAL_CONFLICT', 'A conflicting operation occurred: another write of this key is in flight; retry');
        throw error;
      }));
  const overwrite = write.started[0]?.change.type === 'OverwriteStarted';
  // An overwrite's blob is named by the seq of the event that began it.
  const version = overwrite ? write.started[0]!.seq : 0;
  try {
    const path = blobPath(key, version);
    let written: { size: number; md5: string | null };
    try {
      written = small ? await putToReplicas(deps, small, targetVolumes, path) : await streamToReplicas(deps, source, targetVolumes, path);
      if (written.size === 0 && !s3) throw emptyBody('the chunked body was empty');
    } catch (error) {
      if (overwrite) await undoFailedOverwrite(deps, write, key, targetVolumes, version, cause, error as Error);
      else await undoFailedWrite(deps, write, key, targetVolumes, cause, error as Error);
      throw error;
    }
    const checksum = s3 ? (s3.checksum ?? source.checksum?.() ?? null) : null;
    // A value beside another is named by its version, which only ObjectCommitted carries.
    const change: Change =
      s3 || version !== 0
        ? {
            type: 'ObjectCommitted',
            volumes: targetVolumes,
            size: written.size,
            md5: written.md5,
            version,
            etag: s3?.etag ?? null,
            contentType: s3?.contentType ?? null,
            metadata: s3?.metadata ?? {},
            headers: s3?.headers ?? {},
            checksum,
            parts: s3?.parts ?? [],
          }
        : { type: 'WriteCommitted', volumes: targetVolumes, size: written.size, md5: written.md5 };
    const [event] = await write.finish([{ key, cause, change }]);
    // What the value replaced: removed once readers sent to it a moment ago have had their bytes.
    sweepStale(deps, key);
    return { ...written, checksum, seq: event!.seq };
  } finally {
    await write.release();
  }
}

/**
 * How a store begins on the key's record: in the key's own path (a new key, a write that never
 * finished, a native PUT over an unlinked value, as the original overwrote it in place, but not
 * with --retain), beside its value (S3 over a live or unlinked key; anything over a key deleted
 * with --retain, whose blobs are kept), or not at all.
 */
export function decideStore(
  deps: Pick<KeyDeps, 'writer' | 'config'>,
  key: string,
  record: KeyRecord | undefined,
  targetVolumes: string[],
  cause: Cause,
  s3: boolean,
  mayReplace: boolean,
  condition: WriteCondition,
): Decision {
  if (record?.state === 'deleting') return beingDeleted();
  try {
    checkWriteCondition(condition, record);
  } catch (error) {
    return error as MkvError;
  }
  if (record?.state === 'live' && !s3) return new MkvError('MKV_EXISTS', 'the key exists; DELETE or UNLINK it first');
  if ((record?.state === 'live' || record?.state === 'unlinked') && !mayReplace)
    return new MkvError('MKV_ACCESS_DENIED', `${key} holds a value, and replacing it needs the delete right`);
  if (record?.state === 'pending') {
    const refusal = inFlightElsewhere(deps, record);
    if (refusal) return refusal;
  }
  // With --retain nothing the key had is written over: every value after the first goes beside.
  const inPlace =
    !record ||
    record.state === 'pending' ||
    (record.state === 'unlinked' && !s3 && record.version === 0 && record.writing === null && deps.config.retainMs === 0) ||
    // Deleted with --retain and nothing kept, only its delete marker: its first value, as the original lays it out.
    (record.state === 'deleted' && record.writing === null && record.stale.length === 0);
  if (inPlace) return [{ key, cause, change: { type: 'WriteStarted', volumes: targetVolumes } }];
  // The overwrites the record names that never finished (their master died) are given up; the
  // writer keeps those in flight in this master. With a log shared by several masters, any of
  // them may be in flight on another one until the key has been quiet for --pending-grace.
  const abandons = inFlightElsewhere(deps, record) ? [] : inFlight(record).map((blob) => blob.version);
  return [{ key, cause, change: { type: 'OverwriteStarted', volumes: targetVolumes, abandons } }];
}

function emptyBody(why: string): MkvError {
  return new MkvError('MKV_EMPTY_BODY', `a PUT needs a body (${why})`);
}

function shortBody(size: number, length: number | undefined, what: string): MkvError {
  return new MkvError(
    'MKV_SHORT_BODY',
    length === undefined
      ? `the request body ${what} after ${size} bytes`
      : `the request body ${what} after ${size} of ${length} bytes (Content-Length)`,
  );
}

/** Reads a body of `length` bytes into one buffer, under the body timeout; one that ends early is MKV_SHORT_BODY. */
async function readWhole(body: Readable, length: number, windowMs: number): Promise<Buffer> {
  const value = await readSmallBody(
    body,
    length,
    windowMs,
    () => new MkvError('MKV_BAD_REQUEST', `the request body is longer than its Content-Length (${length})`),
  );
  if (value.length !== length) throw shortBody(value.length, length, 'ended early');
  return value;
}

/** Writes one buffer to every replica; the first failure (after all have answered) is thrown. */
async function putToReplicas(
  deps: KeyDeps,
  value: Buffer,
  targetVolumes: string[],
  path: string,
): Promise<{ size: number; md5: string | null }> {
  const results = await Promise.allSettled(targetVolumes.map((volume) => deps.volumes.put(volume, path, value, value.length)));
  const failed = results.findIndex((result) => result.status === 'rejected');
  if (failed !== -1) throw (results[failed] as PromiseRejectedResult).reason; // MKV_VOLUME_FAILED, naming the volume
  return { size: value.length, md5: deps.config.md5sum ? createHash('md5').update(value).digest('hex') : null };
}

/** Streams the body to every replica at once (module header); resolves once all have stored it. */
function streamToReplicas(
  deps: KeyDeps,
  source: ValueSource,
  targetVolumes: string[],
  path: string,
): Promise<{ size: number; md5: string | null }> {
  const { config, volumes } = deps;
  const { body: request, length } = source;
  const dead = deadBody(request);
  if (dead) return Promise.reject(markBrokeOff(dead instanceof MkvError ? dead : shortBody(0, length, 'failed')));
  return new Promise((resolve, reject) => {
    const hash = config.md5sum ? createHash('md5') : undefined;
    const controller = new AbortController();
    const bodies = targetVolumes.map(() => new PassThrough());
    let size = 0;
    let bodyEnded = false;
    let settled = false;

    const puts = targetVolumes.map((volume, i) => volumes.put(volume, path, bodies[i]!, length, controller.signal));

    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      stopWatching();
      controller.abort(error);
      for (const body of bodies) {
        request.unpipe(body);
        body.destroy();
      }
      // Cleanup must not race a replica PUT that is still finishing: wait for all to settle.
      void Promise.allSettled(puts).then(() => reject(error));
    };
    // The body broke off: no volume had it whole, so none stored it.
    const brokeOff = (error: Error) => fail(markBrokeOff(error));
    // Too little data for a window of the body timeout: the client stopped or trickles — or a
    // volume stopped taking data and backpressure paused the body, which is the volume's fault.
    const stopWatching = watchBodyRate(request, config.bodyTimeoutMs, (error) => {
      const stuck = bodies.findIndex((body) => body.writableNeedDrain);
      if (stuck === -1) brokeOff(error);
      else fail(new MkvError('MKV_VOLUME_FAILED', `the volume ${targetVolumes[stuck]} stopped taking data for ${config.bodyTimeoutMs} ms`));
    });
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      hash?.update(chunk);
    });
    request.on('end', () => {
      bodyEnded = true;
      stopWatching();
    });
    request.on('aborted', () => brokeOff(shortBody(size, length, 'ended (the client went away)')));
    request.on('error', (error) => brokeOff(error instanceof MkvError ? error : shortBody(size, length, 'failed')));
    request.on('close', () => {
      if (!bodyEnded) brokeOff(shortBody(size, length, 'ended (the client went away)'));
    });
    for (const body of bodies) request.pipe(body);

    Promise.all(puts).then(
      () => {
        if (settled) return;
        // With a length, every byte received is the whole body (a volume may answer before the
        // source's 'end' event); without one, the volumes saw the end of the chunked body.
        if (length !== undefined ? size !== length : !bodyEnded) {
          fail(shortBody(size, length, 'ended early'));
          return;
        }
        settled = true;
        stopWatching();
        resolve({ size, md5: hash ? hash.digest('hex') : null });
      },
      (error: Error) => fail(error),
    );
  });
}

/** Failures of a streamed value that came before its end: no volume stored anything. */
const beforeTheEnd = new WeakSet<Error>();

function markBrokeOff(error: Error): Error {
  beforeTheEnd.add(error);
  return error;
}

/**
 * A write that failed: its replicas removed, then WriteAborted. If a replica cannot be removed,
 * the key stays pending (the log names the write, and a later PUT, DELETE or gc cleans it up).
 *
 * Over an unlinked key, a body that broke off before its end reached no volume whole (a volume
 * keeps a PUT aside until its last byte), so every replica still holds the unlinked value:
 * then only the new targets the key was not on are cleaned, and WriteUndone puts the key back
 * as it was, for LINK to restore. (A write that failed after the whole body, on a volume, may
 * have replaced some replicas: those are removed, as for any key.) Over a key deleted with
 * --retain that kept nothing but its delete marker, what the write reached is removed and
 * WriteUndone gives the marker back.
 */
async function undoFailedWrite(
  deps: KeyDeps,
  write: KeyWrite,
  key: string,
  targetVolumes: string[],
  cause: Cause,
  reason: Error,
): Promise<void> {
  const before = write.record;
  // A key deleted with --retain whose first value failed: what the write reached goes, the delete marker stays.
  const marker = before?.state === 'deleted' ? before : undefined;
  const untouched = (before?.state === 'unlinked' && beforeTheEnd.has(reason) ? before : undefined) ?? marker;
  const path = blobPath(key, 0);
  // Undone: only the new targets. Aborted, the key goes: every blob it had goes first (a pending
  // write taken over may have reached other volumes; earlier values may have left stale ones).
  const failures = untouched
    ? await removeReplicas(
        deps.volumes,
        targetVolumes.filter((volume) => !untouched.volumes.includes(volume)), // a marker's: none
        path,
      )
    : [
        ...(await removeReplicas(
          deps.volumes,
          [...new Set([...targetVolumes, ...(before?.state === 'pending' ? before.volumes : [])])],
          path,
        )),
        ...(await removeBlobs(deps.volumes, key, before?.stale ?? [])),
      ];
  if (failures.length > 0) {
    deps.logger.warn('a failed write left replicas that could not be removed; the key stays pending', { key, failures });
    return;
  }
  const change: Change = untouched
    ? { type: 'WriteUndone', reason: reason.message, restored: toState(untouched) }
    : { type: 'WriteAborted', reason: reason.message };
  try {
    await write.finish([{ key, cause, change }]);
  } catch (error) {
    deps.logger.warn('a failed write could not be recorded as aborted; the key stays pending', { key, error });
  }
}

/**
 * An overwrite that failed: what it wrote beside the value is removed, then OverwriteAborted;
 * the key keeps its value all along. If a replica cannot be removed, the key stays "writing"
 * (the log names the blob, and the next overwrite, a DELETE or gc cleans it up).
 */
async function undoFailedOverwrite(
  deps: KeyDeps,
  write: KeyWrite,
  key: string,
  targetVolumes: string[],
  version: number,
  cause: Cause,
  reason: Error,
): Promise<void> {
  const failures = await removeReplicas(deps.volumes, targetVolumes, blobPath(key, version));
  if (failures.length > 0) {
    deps.logger.warn('a failed overwrite left replicas that could not be removed; the key keeps its value and names them', {
      key,
      failures,
    });
    return;
  }
  try {
    await write.finish([{ key, cause, change: { type: 'OverwriteAborted', reason: reason.message, version } }]);
  } catch (error) {
    deps.logger.warn('a failed overwrite could not be recorded as aborted', { key, error });
  }
}

/**
 * S3 CopyObject of a key onto itself with new metadata: the same value, a new Content-Type and
 * user metadata; the write's condition (If-Match, If-None-Match) checked under the key's lock.
 */
export async function replaceMetadata(
  deps: KeyDeps,
  key: string,
  { contentType, metadata, headers }: Pick<S3Value, 'contentType' | 'metadata' | 'headers'>,
  cause: Cause,
  condition?: WriteCondition,
): Promise<number> {
  const write = await beginWrite(deps.writer, deps.index, key, (record) => {
    if (record?.state !== 'live') return new MkvError('MKV_NOT_FOUND', 'The specified key does not exist.');
    checkWriteCondition(condition, record);
    return [{ key, cause, change: { type: 'MetadataReplaced', contentType, metadata, headers } }];
  });
  await write.release();
  return write.started[0]!.seq;
}
