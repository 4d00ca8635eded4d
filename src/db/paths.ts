// The layout of a database directory: the event log, the key index projected from it, and the
// parts of S3 multipart uploads in progress.
//
//   <db>/log/      segments (log/segment-log.ts), or nothing with --log nats://...
//   <db>/index/    LMDB (index/index-store.ts)
//   <db>/uploads/  one directory per upload (uploads/upload-store.ts)
//   <db>/LOCK      held by the process that writes the db (lock.ts)
//   <db>/RETAIN    the --retain window (ms) the server last ran with, which mkv gc keeps to
import { join } from 'node:path';

export function logDir(db: string): string {
  return join(db, 'log');
}

export function indexDir(db: string): string {
  return join(db, 'index');
}

/** Multipart uploads in progress (S3). */
export function uploadsDir(db: string): string {
  return join(db, 'uploads');
}

/** The --retain window the server last ran with (mkv gc honours it). */
export function retainFile(db: string): string {
  return join(db, 'RETAIN');
}
