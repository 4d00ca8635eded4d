// The --retain window a db keeps: DB/RETAIN, written by the server that was given --retain, read
// by every later start without it and by mkv gc. So no restart gives up the values kept for the
// window by leaving a flag out; --retain 0 gives them up, explicitly.
import { readFileSync } from 'node:fs';
import { writeFileDurably } from '../durable-files.js';
import { UsageError } from '../errors.js';
import { retainFile } from './paths.js';

/** The window the db keeps, in ms; 0 when none was ever given. */
export function retainOf(db: string): number {
  let text: string;
  try {
    text = readFileSync(retainFile(db), 'utf8').trim();
  } catch {
    return 0;
  }
  if (!/^\d+$/.test(text)) throw new UsageError(`${retainFile(db)} holds no --retain window in milliseconds: give --retain`);
  return Number(text);
}

/** Keeps a window given with --retain for later starts and mkv gc. */
export function keepRetain(db: string, retainMs: number): void {
  writeFileDurably(retainFile(db), `${retainMs}\n`);
}
