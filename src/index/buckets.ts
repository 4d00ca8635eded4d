// A bucket in the index's `buckets` database: what the log says of the buckets S3 clients
// created (BucketCreated, BucketDeleted, BucketSnapshot; the event's key is the bucket's name).
//
//   buckets  name (UTF-8, no leading slash)  →  f64 created, f64 seq (little-endian)
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
}

/** The bucket's record after `event` (one of events/event.ts isBucketChange's); undefined: it has none. */
export function evolveBucket(event: ProjectedEvent): BucketRecord | undefined {
  const change: Change = event.change;
  switch (change.type) {
    case 'BucketCreated':
      return { created: event.time, seq: event.seq };
    case 'BucketSnapshot':
      return { created: change.created, seq: change.lastSeq };
    default:
      return undefined;
  }
}

export const BUCKET_RECORD_BYTES = 16;

export function writeBucketRecord(record: BucketRecord, target: Buffer, at: number): number {
  target.writeDoubleLE(record.created, at);
  target.writeDoubleLE(record.seq, at + 8);
  return at + BUCKET_RECORD_BYTES;
}

export function decodeBucketRecord(bytes: Buffer): BucketRecord {
  return { created: bytes.readDoubleLE(0), seq: bytes.readDoubleLE(8) };
}
