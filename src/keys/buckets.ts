// Buckets, as the log knows them. Bucket b is every key "/b/…" (the native API's keys need no
// bucket), and it exists while it is created (BucketCreated, until BucketDeleted) or while it
// holds a live key:
//
//   CreateBucket ──name S3 allows?──▶ created already? 200 : BucketCreated ──▶ index `buckets`
//   DeleteBucket ──exists? (404)──▶ a live key in it? (409) ──▶ BucketDeleted
//   S3 object and bucket requests ──▶ bucketExists, else 404 NoSuchBucket
//
// So S3 clients get S3's answers on buckets, and a key put into a bucket through the native API
// makes the bucket exist for them, created or not (ListBuckets lists both). A create or delete
// holds the bucket's name as its lock (no key has a name without a leading slash); on JetStream
// that lock is conditional on the name's last event, so two masters cannot both decide on it.
import { MkvError } from '../errors.js';
import type { Cause } from '../events/event.js';
import type { BucketRecord } from '../index/buckets.js';
import type { IndexStore } from '../index/index-store.js';
import { MAX_KEY_BYTES, prefixEnd } from '../index/index-store.js';
import type { KeyDeps } from './deps.js';

/**
 * S3's rules for a new bucket's name: 3 to 63 characters of a-z, 0-9, '.' and '-', beginning
 * and ending with a letter or digit, no '..' (nor '.-', '-.': a DNS label begins and ends with
 * a letter or digit), not an IPv4 address, not the prefixes and suffixes S3 keeps for itself.
 */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'a bucket name is 3 to 63 characters long';
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name))
    return 'a bucket name has only lower-case letters, digits, dots and hyphens, and begins and ends with a letter or digit';
  if (/\.\.|\.-|-\./.test(name)) return 'a bucket name has no two dots, nor a dot and a hyphen, side by side';
  if (/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)) return 'a bucket name is not an IP address';
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name) || /(-s3alias|--ol-s3|--x-s3|\.mrap)$/.test(name))
    return 'that prefix or suffix of a bucket name is reserved';
  return undefined;
}

/** Whether the bucket holds a live key. */
/** Whether the bucket holds a live key, or (--retain) a deleted one's versions: S3 counts both. */
function holdsLiveKey(index: IndexStore, name: string): boolean {
  return index.list({ prefix: `/${name}/`, states: ['live', 'deleted'], limit: 1 }).keys.length > 0;
}

/** Whether bucket `name` exists: created, or holding a live key (or a deleted one's versions). */
export function bucketExists(index: IndexStore, name: string): boolean {
  return index.bucket(name) !== undefined || holdsLiveKey(index, name);
}

export function noSuchBucket(): MkvError {
  return new MkvError('MKV_NO_SUCH_BUCKET', 'The specified bucket does not exist');
}

/** Refuses (404 NoSuchBucket) a request into a bucket that does not exist. */
export function requireBucket(index: IndexStore, name: string): void {
  if (!bucketExists(index, name)) throw noSuchBucket();
}

/** A created bucket's record, unless another `owner` created it (409 BucketAlreadyExists: S3's names are everyone's). */
function createdBy(index: IndexStore, name: string, owner: string | null): BucketRecord | undefined {
  const record = index.bucket(name);
  if (record && record.owner !== null && owner !== null && record.owner !== owner)
    throw new MkvError('MKV_BUCKET_EXISTS', 'The requested bucket name is not available: another access key created it');
  return record;
}

/**
 * CreateBucket: BucketCreated, unless it is created already. Creating a bucket that exists
 * answers as S3 in us-east-1 answers its owner: success; one another access key created is 409
 * BucketAlreadyExists (`owner` is the caller's access key with --credentials, null without). A
 * bucket that exists only because it holds keys is created by it, so it stays when they go.
 * `location` is the LocationConstraint asked for, which GetBucketLocation answers (this store
 * has no regions).
 */
export async function createBucket(
  deps: KeyDeps,
  name: string,
  cause: Cause,
  options: { location?: string | null; owner?: string | null } = {},
): Promise<'created' | 'existed'> {
  const problem = bucketNameProblem(name);
  if (problem) throw new MkvError('MKV_INVALID_BUCKET_NAME', `The specified bucket is not valid: ${problem}`);
  const owner = options.owner ?? null;
  if (createdBy(deps.index, name, owner)) return 'existed';
  await deps.writer.lock(name);
  let appended = false;
  try {
    if (createdBy(deps.index, name, owner)) return 'existed';
    appended = true;
    const change = { type: 'BucketCreated' as const, location: options.location ?? null, owner };
    await deps.writer.appendAndUnlock([{ key: name, cause, change }], name);
    return 'created';
  } finally {
    if (!appended) await deps.writer.unlock(name);
  }
}

/**
 * DeleteBucket: 404 when it does not exist, 409 while it holds a live key, else BucketDeleted. A
 * key written into it afterwards (the native API needs no bucket) makes it exist again.
 */
export async function deleteBucket(deps: KeyDeps, name: string, cause: Cause): Promise<void> {
  await deps.writer.lock(name);
  let appended = false;
  try {
    if (holdsLiveKey(deps.index, name))
      throw new MkvError(
        'MKV_BUCKET_NOT_EMPTY',
        'The bucket you tried to delete is not empty (with --retain: of versions and delete markers too)',
      );
    if (!deps.index.bucket(name)) throw noSuchBucket();
    appended = true;
    await deps.writer.appendAndUnlock([{ key: name, cause, change: { type: 'BucketDeleted' } }], name);
  } finally {
    if (!appended) await deps.writer.unlock(name);
  }
}

export interface BucketListing {
  buckets: Array<{ name: string; created: number }>;
  /** The first bucket not listed, when `limit` cut the listing short. */
  next: string | undefined;
}

/**
 * The buckets that exist, by name (bytewise): the created ones and those holding a live key (a
 * key's bucket is dated by its first live key's value). From `start` (inclusive), with `prefix`,
 * at most `limit`, those `visible` lets the caller see.
 */
export function listBuckets(
  index: IndexStore,
  options: { prefix?: string; start?: string; limit?: number; visible?: (name: string) => boolean },
): BucketListing {
  const prefix = options.prefix ?? '';
  const found = new Map<string, number>();
  for (const [name, record] of index.bucketEntries(prefix || undefined)) {
    if (!name.startsWith(prefix)) break;
    found.set(name, record.created);
  }
  // One live key per bucket: after the first, jump past the bucket's prefix. Unlinked keys, and
  // keys a DELETE has begun, are not in a listing, so they make no bucket either.
  const end = prefixEnd(Buffer.from(`/${prefix}`));
  let from: Buffer | undefined = Buffer.from(`/${prefix}`);
  while (from && from.length <= MAX_KEY_BYTES) {
    let next: Buffer | undefined;
    for (const [key, record] of index.range(from, end)) {
      if (record.state !== 'live') continue;
      const slash = key.indexOf('/', 1);
      if (slash === -1) {
        next = Buffer.concat([Buffer.from(key), Buffer.from([0])]); // a key outside any bucket
        break;
      }
      const name = key.slice(1, slash);
      if (!found.has(name)) found.set(name, record.modified);
      next = prefixEnd(Buffer.from(`/${name}/`));
      break;
    }
    from = next;
  }
  const names = [...found.keys()]
    .filter(
      (name) =>
        (options.start === undefined || Buffer.compare(Buffer.from(name), Buffer.from(options.start)) >= 0) &&
        (options.visible?.(name) ?? true),
    )
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const limit = options.limit ?? names.length;
  return {
    buckets: names.slice(0, limit).map((name) => ({ name, created: found.get(name)! })),
    next: names.length > limit ? names[limit] : undefined,
  };
}
