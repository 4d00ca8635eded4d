// One process at a time may write a db directory: the master, or an offline tool (rebuild,
// restore, gc). It holds an exclusive lock on <db>/LOCK (an open-file-description lock, which
// the kernel drops the moment its holder dies, kill -9 included); the file also names the
// holder, for the message the next process gets.
//
// A pid in a file was the lock before: a master killed with kill -9 stays a zombie for a while
// when nobody reaps it at once (as a PID 1 that reaps late leaves it), kill(pid, 0) counts a
// zombie as alive, and so a master restarted at once by a supervisor refused to start.
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import fsx from 'fs-native-extensions';
import { MkvError } from '../errors.js';

/** Takes the db's lock; returns its release. */
export function lockDb(db: string, purpose: string): () => void {
  // A new db is the master's alone: its log names every key, its uploads hold values.
  mkdirSync(db, { recursive: true, mode: 0o700 });
  const path = join(db, 'LOCK');
  const fd = openSync(path, 'a+');
  let locked: boolean;
  try {
    locked = fsx.tryLock(fd);
  } catch (error) {
    closeSync(fd);
    throw new MkvError('MKV_DB_LOCKED', `${db} could not be locked (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (!locked) {
    closeSync(fd);
    const holder = readFileSync(path, 'utf8').trim();
    throw new MkvError('MKV_DB_LOCKED', `${db} is in use${holder ? ` by ${holder}` : ''}; stop it first`);
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `process ${process.pid} (${purpose})\n`, 0);
  // The file stays: removing it could let a process that opened it meanwhile lock a file that
  // no longer is the db's LOCK while a third locks the new one.
  return () => closeSync(fd);
}
