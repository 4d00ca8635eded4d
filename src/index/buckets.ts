// A bucket in the index's `buckets` database: what the log says of the buckets S3 clients
// created (BucketCreated, BucketDeleted, BucketSnapshot; the event's key is the bucket's name).
//
//   buckets  name (UTF-8, no leading slash)  →  f64 created, f64 seq (little-endian), then the
//                                               location's UTF-8 when it has one
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
}

/** The bucket's record after `event` (one of events/event.ts isBucketChange's); undefined: it has none. */
export function evolveBucket(event: ProjectedEvent): BucketRecord | undefined {
  const change: Change = event.change;
  switch (change.type) {
    case 'BucketCreated':
      return { created: event.time, seq: event.seq, location: change.location };
    case 'BucketSnapshot':
      return { created: change.created, seq: change.lastSeq, location: change.location };
    default:
      return undefined;
  }
}

/** The most bytes `record` can take encoded (a string's UTF-8 is at most 3 bytes per UTF-16 unit). */
export function bucketRecordBound(record: BucketRecord | undefined): number {
  return 16 + 3 * (record?.location?.length ?? 0);
}

export function writeBucketRecord(record: BucketRecord, target: Buffer, at: number): number {
  target.writeDoubleLE(record.created, at);
  target.writeDoubleLE(record.seq, at + 8);
  return at + 16 + (record.location === null ? 0 : target.write(record.location, at + 16, 'utf8'));
}

export function decodeBucketRecord(bytes: Buffer): BucketRecord {
  return {
    created: bytes.readDoubleLE(0),
    seq: bytes.readDoubleLE(8),
    location: bytes.length > 16 ? bytes.toString('utf8', 16) : null,
  };
}
