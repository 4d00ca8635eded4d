// One process at a time may write a db directory: the master, or an offline tool (rebuild,
// restore). <db>/LOCK holds the owner's pid; a LOCK whose process is gone (kill -9) is stale
// and taken over.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { MkvError } from '../errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the db's lock; returns its release. */
export function lockDb(db: string, purpose: string): () => void {
  mkdirSync(db, { recursive: true });
  const path = join(db, 'LOCK');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, `${process.pid} ${purpose}\n`);
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const [pidText, ...what] = readFileSync(path, 'utf8').trim().split(' ');
      const pid = Number(pidText);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new MkvError(
          'MKV_DB_LOCKED',
          `${db} is in use by process ${pid} (${what.join(' ') || 'unknown'}); stop it first (or remove ${path} if that process is not mkv)`,
        );
      }
      rmSync(path, { force: true });
    }
  }
  throw new MkvError('MKV_DB_LOCKED', `could not lock ${db}`);
}
