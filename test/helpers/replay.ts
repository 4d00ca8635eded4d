// index == replay(log): build a scratch index from a db's log and compare it with the db's index.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { IndexStore } from '../../src/index/index-store.js';
import { SegmentLog } from '../../src/log/segment-log.js';
import { catchUp } from '../../src/db/store.js';
import { indexDir, logDir } from '../../src/db/paths.js';
import { removeDir, tempDir } from './cluster.js';

/** Asserts that the db's index equals a fresh replay of its log (the master must be stopped). */
export async function assertIndexEqualsReplay(db: string): Promise<number> {
  const scratch = tempDir('mkv-replay-');
  const log = await SegmentLog.open(logDir(db), { readOnly: true });
  const replayed = IndexStore.open(join(scratch, 'index'));
  const live = IndexStore.open(indexDir(db), { readOnly: true });
  try {
    await catchUp(log, replayed);
    assert.equal(live.checkpoint, log.lastSeq, 'the index has applied the whole log');
    assert.equal(replayed.checkpoint, log.lastSeq);
    const liveEntries = [...live.entries()];
    assert.deepEqual(liveEntries, [...replayed.entries()], 'index == replay(log)');
    assert.deepEqual([...live.bucketEntries()], [...replayed.bucketEntries()], 'buckets == replay(log)');
    return liveEntries.length;
  } finally {
    await log.close();
    await replayed.close();
    await live.close();
    removeDir(scratch);
  }
}

/** Every key the log names. */
export async function keysInLog(db: string): Promise<Set<string>> {
  const log = await SegmentLog.open(logDir(db), { readOnly: true });
  const keys = new Set<string>();
  for await (const events of log.readFrom(1)) for (const event of events) keys.add(event.key);
  await log.close();
  return keys;
}
