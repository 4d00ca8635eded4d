// A bucket in the index's `buckets` database: what the log says of the buckets S3 clients
// created (BucketCreated, BucketDeleted, BucketSnapshot; the event's key is the bucket's name).
//
//   buckets  name (UTF-8, no leading slash)  →  f64 created, f64 seq (little-endian),
//                                               u16 length, location; u16 length, owner (UTF-8; length 0: null)
//
// A bucket *exists* when it has a record here or while it holds a live key ("/name/…"): a key
// written through the native API needs no bucket, and S3 sees the bucket it is in. The record is
// the event's alone, never the one before it, so a batch is planned without reading buckets.
import type { Change, ProjectedEvent } from '../events/event.js';

export interface BucketRecord {
  /** When it was created (ms since the epoch): ListBuckets' CreationDate. */
  created: number;
  /** The seq of the event that created it. */
  seq: number;
  /** The LocationConstraint it was created with (null: none, us-east-1). */
  location: string | null;
  /** The access key that created it (null: created without --credentials). */
  owner: string | null;
}

/** The bucket's record after `event` (one of events/event.ts isBucketChange's); undefined: it has none. */
export function evolveBucket(event: ProjectedEvent): BucketRecord | undefined {
  const change: Change = event.change;
  switch (change.type) {
    case 'BucketCreated':
      return { created: event.time, seq: event.seq, location: change.location, owner: change.owner };
    case 'BucketSnapshot':
      return { created: change.created, seq: change.lastSeq, location: change.location, owner: change.owner };
    default:
      return undefined;
  }
}

/** The most bytes `record` can take encoded (a string's UTF-8 is at most 3 bytes per UTF-16 unit). */
export function bucketRecordBound(record: BucketRecord | undefined): number {
  return 20 + 3 * ((record?.location?.length ?? 0) + (record?.owner?.length ?? 0));
}

function writeText(text: string | null, target: Buffer, at: number): number {
  const length = text === null ? 0 : target.write(text, at + 2, 'utf8');
  target.writeUInt16LE(length, at);
  return at + 2 + length;
}

function readText(bytes: Buffer, at: number): { text: string | null; end: number } {
  const length = bytes.readUInt16LE(at);
  return { text: length === 0 ? null : bytes.toString('utf8', at + 2, at + 2 + length), end: at + 2 + length };
}

export function writeBucketRecord(record: BucketRecord, target: Buffer, at: number): number {
  target.writeDoubleLE(record.created, at);
  target.writeDoubleLE(record.seq, at + 8);
  return writeText(record.owner, target, writeText(record.location, target, at + 16));
}

export function decodeBucketRecord(bytes: Buffer): BucketRecord {
  const location = readText(bytes, 16);
  return { created: bytes.readDoubleLE(0), seq: bytes.readDoubleLE(8), location: location.text, owner: readText(bytes, location.end).text };
}
