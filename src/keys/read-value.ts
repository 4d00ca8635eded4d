// Reading a live key's value from its replicas, tried in random order as the original's GET
// tries them (a replica that lost its copy, or a volume that is down, is skipped):
//
//   findReplica  the first replica whose HEAD finds the blob (its size): the native GET's
//                redirect target, an S3 HEAD's answer
//   readValue    the bytes (a range of them, when asked) from the first replica that serves
//                them: an S3 GET
//   openValue    those of a range that must be exactly that range: CopyObject, UploadPartCopy
import type { Readable } from 'node:stream';
import { MkvError } from '../errors.js';
import type { BlobVersion } from '../events/event.js';
import type { KeyRecord } from '../index/evolve.js';
import { blobPath } from '../placement.js';
import { discardBody } from '../volumes/client.js';
import type { KeyDeps } from './deps.js';

/** A copy in random order (Fisher–Yates): replicas are tried in random order, as the original did. */
export function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

/** The first replica of a blob (a live value's record, or an earlier version's) whose HEAD finds it, and the size it says; undefined when none does. */
export async function findReplica(
  deps: KeyDeps,
  key: string,
  blob: BlobVersion,
): Promise<{ volume: string; size: number | undefined } | undefined> {
  const path = blobPath(key, blob.version);
  for (const volume of shuffled(blob.volumes)) {
    const head = await deps.volumes.head(volume, path);
    if (head.status === 'found') return { volume, size: head.size };
    if (head.status === 'unknown') deps.logger.warn('replica did not answer a HEAD', { key, volume, reason: head.reason });
  }
  return undefined;
}

export interface ValueBytes {
  /** 200 for the whole value, 206 for a range. */
  status: number;
  /** Content-Length and Content-Range, as the replica answered them. */
  length: string | undefined;
  range: string | undefined;
  body: Readable;
}

/**
 * A live value's bytes (`range`: an HTTP Range, as a client sent it) from the first replica that
 * serves them; MKV_INVALID_RANGE when the range is outside the value, MKV_NOT_FOUND (each
 * replica's problem logged) when no replica serves it.
 */
export async function readValue(deps: KeyDeps, key: string, record: KeyRecord, range?: string): Promise<ValueBytes> {
  const path = blobPath(key, record.version);
  const problems: string[] = [];
  for (const volume of shuffled(record.volumes)) {
    let response;
    try {
      response = await deps.volumes.get(volume, path, range ? { range } : {});
    } catch (error) {
      problems.push((error as Error).message);
      continue;
    }
    if (response.statusCode === 416) {
      discardBody(response.body);
      throw new MkvError('MKV_INVALID_RANGE', 'The requested range is not satisfiable');
    }
    if (response.statusCode !== 200 && response.statusCode !== 206) {
      discardBody(response.body);
      problems.push(`${volume}: GET answered ${response.statusCode}`);
      continue;
    }
    const header = (name: string) => {
      const value = response.headers[name];
      return typeof value === 'string' ? value : undefined;
    };
    return { status: response.statusCode, length: header('content-length'), range: header('content-range'), body: response.body };
  }
  deps.logger.warn('no replica served a value', { key, problems });
  throw new MkvError('MKV_NOT_FOUND', 'The specified key does not exist on any replica.');
}

/** A live value's bytes (those from `start` to `end`, inclusive, when given), from the first replica that serves them. */
export async function openValue(deps: KeyDeps, key: string, record: KeyRecord, range?: { start: number; end: number }): Promise<Readable> {
  const bytes = await readValue(deps, key, record, range && `bytes=${range.start}-${range.end}`);
  if (range && bytes.status !== 206) {
    // A volume that sent the whole value for a range would make a copy of the wrong bytes.
    discardBody(bytes.body);
    throw new MkvError('MKV_VOLUME_FAILED', 'a replica answered a range with the whole value');
  }
  return bytes.body;
}
