// Small files written so that a crash leaves them whole or absent, and fsync of a path: for
// the log's segments and journals, and the index's UNSYNCED marker.
import { closeSync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Writes a small file whole or not at all: aside, fsync'd, renamed, directory fsync'd. */
export function writeFileDurably(path: string, data: string | Buffer): void {
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, data);
  const fd = openSync(temporary, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  fsyncPath(dirname(path));
}

/** fsyncs a file or a directory (a directory: the names in it). */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
