// ListObjects, both versions: GET /bucket?list-type=2 (V2: continuation-token, start-after) and
// GET /bucket (V1, which rclone and older clients use: marker, NextMarker), each with prefix,
// delimiter (CommonPrefixes), max-keys and encoding-type=url. The object key "k" of bucket "b"
// is the mkv key "/b/k"; only live keys are listed, with the size, ETag and Last-Modified of the
// value they hold.
import { authorize } from '../../auth/authenticate.js';
import { MkvError } from '../../errors.js';
import type { KeyRecord } from '../../index/evolve.js';
import { prefixEnd } from '../../index/index-store.js';
import type { Answer } from '../answer.js';
import type { MasterDeps } from '../deps.js';
import type { S3Call } from './call.js';
import { etagOf } from '../../keys/write-condition.js';
import { currentVersion, markerKept, versionsOf, type KeyVersion } from '../../keys/versions.js';
import { parseVersionId } from './versions.js';
import { person } from './s3.js';
import { document, element } from './xml.js';

function parseMaxKeys(value: string | null): number {
  if (value === null || value === '') return 1000;
  if (!/^\d{1,10}$/.test(value))
    throw new MkvError('MKV_BAD_QUERY', `max-keys must be a non-negative integer, not ${JSON.stringify(value)}`);
  return Math.min(Number(value), 1000);
}

function encodeToken(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

/** The key a continuation-token resumes after: one this server gave for a listing of `root` (the bucket), else 400. */
function decodeToken(token: string, root: string): string {
  const key = Buffer.from(token, 'base64url').toString('utf8');
  if (encodeToken(key) !== token || !key.startsWith(root))
    throw new MkvError('MKV_BAD_QUERY', 'The continuation token provided is incorrect: it is not one this server gave for this bucket');
  return key;
}

/** The smallest byte string after every key that starts with `prefix`. */
function after(prefix: string): Buffer | undefined {
  return prefixEnd(Buffer.from(prefix, 'utf8'));
}

/** A <Version> of ListObjectVersions. */
function versionElement(key: string, id: string, latest: boolean, time: number, etag: string, size: number | null): string {
  return element('Version', [
    element('Key', key),
    element('VersionId', id),
    element('IsLatest', latest),
    element('LastModified', new Date(time).toISOString()),
    element('ETag', etag),
    element('Size', size ?? 0),
    element('Owner', person()),
    element('StorageClass', 'STANDARD'),
  ]);
}

/** One line of a versioned listing: a version whose bytes are kept, or a delete marker (no `version`). */
interface VersionEntry {
  key: string;
  id: string;
  time: number;
  latest: boolean;
  version?: KeyVersion;
}

/**
 * A key's versions and delete markers, newest first: the versions whose bytes are kept, the
 * markers that are the latest or stopped being it within the window. The latest is the value a
 * live key serves, or a deleted key's last marker; an unlinked key, which S3 does not have, has
 * none.
 */
function versionEntriesOf(deps: MasterDeps, key: string, objectKey: string, record: KeyRecord): VersionEntry[] {
  const found = versionsOf(deps.index.historyOf(key));
  const now = Date.now();
  const latest =
    record.state === 'live' ? currentVersion(found, record)?.seq : record.state === 'deleted' ? found.markers.at(-1)?.seq : undefined;
  return [
    ...found.versions
      .filter((version) => version.held)
      .map((version) => ({ key: objectKey, id: String(version.seq), time: version.time, latest: version.seq === latest, version })),
    ...found.markers
      .filter((marker) => markerKept(marker, deps.config.retainMs, now))
      .map((marker) => ({ key: objectKey, id: String(marker.seq), time: marker.time, latest: marker.seq === latest })),
  ].sort((a, b) => Number(b.id) - Number(a.id));
}

/**
 * The versions of a bucket's keys under `prefix`, in key order and newest first within a key,
 * from the markers on, at most `maxKeys` lines (a CommonPrefix is one).
 */
function versionedPage(
  deps: MasterDeps,
  options: { root: string; prefix: string; delimiter: string; maxKeys: number; keyMarker: string; versionMarker: string },
): { entries: VersionEntry[]; commonPrefixes: string[]; next: { key: string; id?: string } | undefined } {
  const { root, prefix, delimiter, maxKeys, keyMarker, versionMarker } = options;
  const page = {
    entries: [] as VersionEntry[],
    commonPrefixes: [] as string[],
    next: undefined as { key: string; id?: string } | undefined,
  };
  if (maxKeys === 0) return page;
  const end = after(root + prefix);
  // Within the key-marker's own key after its version-id-marker; else after the key-marker.
  const marker = versionMarker === '' ? 'null' : parseVersionId(versionMarker);
  const resumeInKey = marker === 'null' ? undefined : marker;
  let from = resumeInKey !== undefined ? Buffer.from(root + keyMarker, 'utf8') : resumeAfter(root, prefix, delimiter, keyMarker);
  if (Buffer.compare(from, Buffer.from(root + prefix, 'utf8')) < 0) from = Buffer.from(root + prefix, 'utf8');
  let count = 0;
  let last: { key: string; id?: string } | undefined;
  scan: for (;;) {
    for (const [key, record] of deps.index.range(from, end)) {
      if (record.state !== 'live' && record.state !== 'unlinked' && record.state !== 'deleted') continue;
      const objectKey = key.slice(root.length);
      const cut = delimiter ? objectKey.indexOf(delimiter, prefix.length) : -1;
      if (cut !== -1) {
        const common = objectKey.slice(0, cut + delimiter.length);
        if (count === maxKeys) {
          page.next = last;
          break scan;
        }
        count++;
        page.commonPrefixes.push(common);
        last = { key: common };
        const skip = after(root + common);
        if (!skip || (end && Buffer.compare(skip, end) >= 0)) break scan;
        from = skip;
        continue scan;
      }
      let entries = versionEntriesOf(deps, key, objectKey, record);
      if (resumeInKey !== undefined && objectKey === keyMarker) entries = entries.filter((entry) => Number(entry.id) < resumeInKey);
      for (const entry of entries) {
        if (count === maxKeys) {
          page.next = last;
          break scan;
        }
        count++;
        page.entries.push(entry);
        last = { key: entry.key, id: entry.id };
      }
    }
    break;
  }
  return page;
}

/** The smallest key after `key` itself. */
function justAfter(key: string): Buffer {
  return Buffer.concat([Buffer.from(key, 'utf8'), Buffer.from([0])]);
}

interface Page {
  objects: Array<[string, KeyRecord]>;
  commonPrefixes: string[];
  /** The first key not listed, when max-keys cut the page short. */
  next: string | undefined;
  /** The last object key or common prefix listed (V1's NextMarker). */
  last: string | undefined;
}

/**
 * The live keys of a bucket under `prefix`, from `start` on (bytewise), at most `maxKeys`
 * entries, a run of keys sharing a prefix up to `delimiter` folded into one CommonPrefix.
 */
function listPage(deps: MasterDeps, root: string, prefix: string, delimiter: string, start: Buffer, maxKeys: number): Page {
  const end = after(root + prefix);
  const page: Page = { objects: [], commonPrefixes: [], next: undefined, last: undefined };
  // max-keys=0 asks for nothing, and S3 says there is nothing more: not truncated.
  if (maxKeys === 0) return page;
  let from = start;
  let count = 0;
  // A delimiter folds a run of keys into one CommonPrefix and jumps past it.
  scan: for (;;) {
    for (const [key, record] of deps.index.range(from, end)) {
      if (record.state !== 'live') continue;
      if (count === maxKeys) {
        page.next = key;
        break scan;
      }
      count++;
      const objectKey = key.slice(root.length);
      const cut = delimiter ? objectKey.indexOf(delimiter, prefix.length) : -1;
      if (cut === -1) {
        page.objects.push([objectKey, record]);
        page.last = objectKey;
        continue;
      }
      const common = objectKey.slice(0, cut + delimiter.length);
      page.commonPrefixes.push(common);
      page.last = common;
      const skip = after(root + common);
      if (!skip || (end && Buffer.compare(skip, end) >= 0)) break scan;
      from = skip;
      continue scan;
    }
    break;
  }
  return page;
}

function entries(page: Page, encode: (text: string) => string, withOwner: boolean): string[] {
  return [
    ...page.objects.map(([objectKey, record]) =>
      element('Contents', [
        element('Key', encode(objectKey)),
        element('LastModified', new Date(record.modified).toISOString()),
        element('ETag', etagOf(record)),
        element('Size', record.size ?? 0),
        ...(withOwner ? [element('Owner', person())] : []),
        element('StorageClass', 'STANDARD'),
      ]),
    ),
    ...page.commonPrefixes.map((common) => element('CommonPrefixes', [element('Prefix', encode(common))])),
  ];
}

/** Characters an XML 1.0 document cannot carry (xml.ts writes them as U+FFFD). */
const NOT_IN_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

function listing(call: S3Call) {
  const { bucket, query } = call;
  const encoding = query.get('encoding-type');
  if (encoding !== null && encoding !== 'url')
    throw new MkvError('MKV_BAD_QUERY', 'Invalid Encoding Method specified in Request: encoding-type is url or none');
  const urlEncoded = encoding === 'url';
  // What the answer says back must be what was asked: a character XML cannot carry needs encoding-type=url.
  for (const name of ['prefix', 'delimiter', 'marker', 'start-after', 'key-marker']) {
    if (!urlEncoded && NOT_IN_XML.test(query.get(name) ?? ''))
      throw new MkvError('MKV_BAD_QUERY', `${name} holds a character an XML answer cannot carry: ask with encoding-type=url`);
  }
  const prefix = query.get('prefix') ?? '';
  const root = `/${bucket}/`;
  authorize(call.identity, 'list', root + prefix);
  return {
    root,
    prefix,
    delimiter: query.get('delimiter') ?? '',
    maxKeys: parseMaxKeys(query.get('max-keys')),
    urlEncoded,
    encode: (text: string) => (urlEncoded ? encodeURIComponent(text).replace(/%2F/g, '/') : text),
  };
}

function xml(root: string, children: string[]): Answer {
  return { status: 200, type: 'application/xml', body: document(root, children) };
}

/** ListObjectsV2. */
export function listObjectsV2(deps: MasterDeps, call: S3Call): Answer {
  const { bucket, query } = call;
  const { root, prefix, delimiter, maxKeys, urlEncoded, encode } = listing(call);
  const token = query.get('continuation-token');
  const startAfter = query.get('start-after') ?? '';
  let start: Buffer = Buffer.from(root + prefix, 'utf8');
  const bump = (candidate: Buffer) => {
    if (Buffer.compare(candidate, start) > 0) start = candidate;
  };
  if (startAfter) bump(justAfter(root + startAfter));
  if (token) bump(Buffer.from(decodeToken(token, root), 'utf8'));
  const page = listPage(deps, root, prefix, delimiter, start, maxKeys);
  return xml('ListBucketResult', [
    element('Name', bucket),
    element('Prefix', encode(prefix)),
    ...(delimiter ? [element('Delimiter', encode(delimiter))] : []),
    element('MaxKeys', maxKeys),
    element('KeyCount', page.objects.length + page.commonPrefixes.length),
    element('IsTruncated', page.next !== undefined),
    ...(token !== null ? [element('ContinuationToken', token)] : []),
    ...(page.next !== undefined ? [element('NextContinuationToken', encodeToken(page.next))] : []),
    ...(startAfter ? [element('StartAfter', encode(startAfter))] : []),
    ...(urlEncoded ? [element('EncodingType', 'url')] : []),
    ...entries(page, encode, query.get('fetch-owner') === 'true'),
  ]);
}

/**
 * Where a listing resumes after `marker` (V1's marker, ListObjectVersions' key-marker): just
 * after it, or, when it is (or lies in) a CommonPrefix the delimiter folds, after every key of
 * that prefix: a NextMarker that is a CommonPrefix is not listed again.
 */
function resumeAfter(root: string, prefix: string, delimiter: string, marker: string): Buffer {
  const start = Buffer.from(root + prefix, 'utf8');
  if (!marker) return start;
  const cut = delimiter && marker.startsWith(prefix) ? marker.indexOf(delimiter, prefix.length) : -1;
  const resume =
    cut === -1 ? justAfter(root + marker) : (after(root + marker.slice(0, cut + delimiter.length)) ?? justAfter(root + marker));
  return Buffer.compare(resume, start) > 0 ? resume : start;
}

/** ListObjects (V1): resumed after `marker`; NextMarker is the last key or CommonPrefix listed. */
export function listObjectsV1(deps: MasterDeps, call: S3Call): Answer {
  const { bucket, query } = call;
  const { root, prefix, delimiter, maxKeys, urlEncoded, encode } = listing(call);
  const marker = query.get('marker') ?? '';
  const page = listPage(deps, root, prefix, delimiter, resumeAfter(root, prefix, delimiter, marker), maxKeys);
  return xml('ListBucketResult', [
    element('Name', bucket),
    element('Prefix', encode(prefix)),
    element('Marker', encode(marker)),
    element('MaxKeys', maxKeys),
    ...(delimiter ? [element('Delimiter', encode(delimiter))] : []),
    element('IsTruncated', page.next !== undefined),
    ...(page.next !== undefined && page.last !== undefined ? [element('NextMarker', encode(page.last))] : []),
    ...(urlEncoded ? [element('EncodingType', 'url')] : []),
    ...entries(page, encode, true),
  ]);
}

/**
 * ListObjectVersions (GET /bucket?versions). With --retain, every version whose bytes are kept
 * and every delete marker within the window (versionedPage); without, every live key is its one
 * version, "null", as S3 lists the objects of a bucket that never had versioning.
 */
export function listObjectVersions(deps: MasterDeps, call: S3Call): Answer {
  const { bucket, query } = call;
  const { root, prefix, delimiter, maxKeys, urlEncoded, encode } = listing(call);
  const keyMarker = query.get('key-marker') ?? '';
  const versionMarker = query.get('version-id-marker') ?? '';
  if (versionMarker && !keyMarker) throw new MkvError('MKV_BAD_QUERY', 'A version-id marker cannot be specified without a key marker.');
  let lines: string[];
  let commonPrefixes: string[];
  let next: { key: string; id?: string } | undefined;
  if (deps.config.retainMs > 0) {
    const page = versionedPage(deps, { root, prefix, delimiter, maxKeys, keyMarker, versionMarker });
    ({ commonPrefixes, next } = page);
    lines = page.entries.map((entry) =>
      entry.version
        ? versionElement(
            encode(entry.key),
            entry.id,
            entry.latest,
            entry.time,
            `"${entry.version.s3?.etag ?? entry.version.md5 ?? ''}"`,
            entry.version.size,
          )
        : element('DeleteMarker', [
            element('Key', encode(entry.key)),
            element('VersionId', entry.id),
            element('IsLatest', entry.latest),
            element('LastModified', new Date(entry.time).toISOString()),
            element('Owner', person()),
          ]),
    );
  } else {
    if (versionMarker && versionMarker !== 'null') throw new MkvError('MKV_BAD_QUERY', 'Invalid version id specified');
    const page = listPage(deps, root, prefix, delimiter, resumeAfter(root, prefix, delimiter, keyMarker), maxKeys);
    commonPrefixes = page.commonPrefixes;
    next = page.next !== undefined && page.last !== undefined ? { key: page.last, id: 'null' } : undefined;
    lines = page.objects.map(([objectKey, record]) =>
      versionElement(encode(objectKey), 'null', true, record.modified, etagOf(record), record.size),
    );
  }
  return xml('ListVersionsResult', [
    element('Name', bucket),
    element('Prefix', encode(prefix)),
    element('KeyMarker', encode(keyMarker)),
    element('VersionIdMarker', versionMarker),
    element('MaxKeys', maxKeys),
    ...(delimiter ? [element('Delimiter', encode(delimiter))] : []),
    element('IsTruncated', next !== undefined),
    ...(next ? [element('NextKeyMarker', encode(next.key)), ...(next.id ? [element('NextVersionIdMarker', next.id)] : [])] : []),
    ...(urlEncoded ? [element('EncodingType', 'url')] : []),
    ...lines,
    ...commonPrefixes.map((common) => element('CommonPrefixes', [element('Prefix', encode(common))])),
  ]);
}
