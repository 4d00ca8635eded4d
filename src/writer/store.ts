// Opening a database directory: the log in <db>/log, the index in <db>/index, and the replay
// that brings the index up to the log after a crash (from checkpoint + 1 to the end).
import { join } from 'node:path';
import { MkvError } from '../errors.js';
import { IndexStore } from '../index/index-store.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { SegmentLog, type SyncMode } from '../log/segment-log.js';
import { LocalWriter } from './writer.js';

export interface StoreOptions {
  sync?: SyncMode;
  segmentBytes?: number;
  logger?: Logger;
}

export interface Store {
  log: SegmentLog;
  index: IndexStore;
  writer: LocalWriter;
  close(): Promise<void>;
}

export function logDir(db: string): string {
  return join(db, 'log');
}

export function indexDir(db: string): string {
  return join(db, 'index');
}

/** Applies log events after the index's checkpoint; returns how many. */
export async function catchUp(log: SegmentLog, index: IndexStore, batchEvents = 10_000): Promise<number> {
  const checkpoint = index.checkpoint;
  if (checkpoint > log.lastSeq) {
    throw new MkvError(
      'MKV_INDEX_AHEAD',
      `the index has applied seq ${checkpoint} but the log ends at ${log.lastSeq}; ` +
        `the log lost events the index saw. Rebuild the index from the log: mkv rebuild --db DIR --from-log`,
    );
  }
  let applied = 0;
  let pending: Parameters<IndexStore['apply']>[0] = [];
  for await (const events of log.readFrom(checkpoint + 1)) {
    pending.push(...events);
    if (pending.length >= batchEvents) {
      await index.apply(pending);
      applied += pending.length;
      pending = [];
    }
  }
  await index.apply(pending);
  return applied + pending.length;
}

export async function openStore(db: string, options: StoreOptions = {}): Promise<Store> {
  const logger = options.logger ?? silentLogger;
  const log = await SegmentLog.open(logDir(db), { ...options, logger });
  const index = IndexStore.open(indexDir(db));
  try {
    const replayed = await catchUp(log, index);
    if (replayed > 0) logger.warn('index caught up with the log', { events: replayed, lastSeq: log.lastSeq });
  } catch (error) {
    await index.close();
    await log.close();
    throw error;
  }
  const writer = new LocalWriter(log, index);
  return {
    log,
    index,
    writer,
    async close() {
      await writer.close();
      await log.close();
      await index.close();
    },
  };
}
