// Opening a database directory: the log in <db>/log, the index in <db>/index, and the replay
// that brings the index up to the log after a crash (from checkpoint + 1 to the end).
import { existsSync, renameSync } from 'node:fs';
import { MkvError, UsageError } from '../errors.js';
import type { LogEvent } from '../events/event.js';
import { checkIndex } from '../index/check-index.js';
import { IndexStore, tornByRestart } from '../index/index-store.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import type { EventLog } from '../log/event-log.js';
import { SegmentLog, type SyncMode } from '../log/segment-log.js';
import { JetStreamLog } from '../log/jetstream-log.js';
import type { NatsAccess } from '../log/nats-connection.js';
import { lockDb } from './lock.js';
import { indexDir, logDir } from './paths.js';
import { replayThreaded } from './replay-thread.js';
import { JetStreamWriter } from '../writer/jetstream-writer.js';
import { ReadOnlyWriter, type Writer } from '../writer/writer.js';
import { LocalWriter } from '../writer/local-writer.js';

export interface StoreOptions {
  sync?: SyncMode;
  segmentBytes?: number;
  logger?: Logger;
  /** Serve the db as it is: no lock, no tail truncation, no catch-up, every write refused. */
  readOnly?: boolean;
  /** Who holds the db lock, for the message another process gets. */
  purpose?: string;
  /** Skip checking the sealed log segments on open (a huge log; a known damaged segment). */
  skipLogCheck?: boolean;
  /** Told of every block the writer appends (for metrics). */
  onAppend?: (events: number, seconds: number) => void;
  /**
   * The log on NATS JetStream (nats://[USER:PASSWORD@]host:port[,host:port...][/STREAM]) instead of DB/log:
   * several masters share it, each projecting it into its own DB/index.
   */
  logUrl?: string;
  /** With logUrl: the files of its credentials and TLS (the --log-* flags). */
  logAccess?: NatsAccess;
  /** Copies of each event a new JetStream stream keeps. */
  logReplicas?: number;
}

export interface Store {
  log: EventLog;
  index: IndexStore;
  writer: Writer;
  readOnly: boolean;
  close(): Promise<void>;
}

/**
 * Applies log events after the index's checkpoint (up to untilSeq); returns how many.
 * onBatch sees each applied batch (for progress).
 */
export async function catchUp(
  log: EventLog,
  index: IndexStore,
  options: {
    untilSeq?: number;
    batchEvents?: number;
    onBatch?: (events: number) => void;
    /** Plan on a second thread (default: for a backlog of THREAD_BACKLOG events or more of the segment log). */
    thread?: boolean;
  } = {},
): Promise<number> {
  const checkpoint = index.checkpoint;
  if (checkpoint > log.lastSeq) {
    throw new MkvError(
      'MKV_INDEX_AHEAD',
      `the index has applied seq ${checkpoint} but the log ends at ${log.lastSeq}; ` +
        `the log lost events the index saw. Rebuild the index from the log: mkv rebuild --db DIR --from-log`,
    );
  }
  if (checkpoint < log.firstSeq - 1 && log.lastSeq >= log.firstSeq) {
    // A compacted log starts after 1. A new index starts from its base; an older one missed
    // events that only the compaction's snapshot still holds.
    if (checkpoint === 0 && index.count() === 0 && log.base() === log.firstSeq) {
      await index.setCheckpoint(log.firstSeq - 1);
    } else if (log.base() !== log.firstSeq) {
      throw new MkvError(
        'MKV_CORRUPT_LOG',
        `the log ${log.location} starts at seq ${log.firstSeq} but does not say it was compacted: its first events are missing`,
      );
    } else {
      throw new MkvError(
        'MKV_INDEX_AHEAD',
        `the log was compacted up to seq ${log.firstSeq - 1} past this index (checkpoint ${checkpoint}); rebuild it: mkv rebuild --db DIR --from-log`,
      );
    }
  }
  const backlog = (options.untilSeq ?? log.lastSeq) - index.checkpoint;
  if (backlog <= 0) return 0;
  if (log instanceof SegmentLog && (options.thread ?? backlog >= THREAD_BACKLOG)) {
    const batchEvents = options.batchEvents ?? THREAD_BATCH_EVENTS;
    return replayThreaded(log.listSegments(), index, options.untilSeq ?? log.lastSeq, batchEvents, options.onBatch);
  }
  const batchEvents = options.batchEvents ?? 20_000;
  let applied = 0;
  let pending: LogEvent[] = [];
  const flush = () => {
    index.apply(pending);
    applied += pending.length;
    options.onBatch?.(pending.length);
    pending = [];
  };
  for await (const events of log.readFrom(index.checkpoint + 1, options.untilSeq)) {
    for (const event of events) pending.push(event);
    if (pending.length >= batchEvents) flush();
  }
  flush();
  return applied;
}

/** A backlog at least this long is replayed on two threads (replay-thread.ts): below it, starting the thread costs more than it saves (docs/design-figures.md). */
const THREAD_BACKLOG = 50_000;

/**
 * Events per batch of a replay on two threads. A batch's records live until it is committed: in
 * batches of a few thousand they die young, which V8's collector hardly pays for; of 20,000 they
 * outlive the young generation, and the replay took markedly longer (docs/design-figures.md).
 */
const THREAD_BATCH_EVENTS = 4_000;

export async function openStore(db: string, options: StoreOptions = {}): Promise<Store> {
  const logger = options.logger ?? silentLogger;
  const readOnly = options.readOnly ?? false;
  if (readOnly && !existsSync(indexDir(db))) {
    throw new UsageError(`${indexDir(db)} does not exist; build it with mkv rebuild --db ${db} --from-log`);
  }
  const unlock = readOnly ? () => {} : lockDb(db, options.purpose ?? 'mkv server');
  let log: EventLog | undefined;
  let index: IndexStore | undefined;
  try {
    log = options.logUrl
      ? await JetStreamLog.open({
          url: options.logUrl,
          ...(options.logAccess ? { access: options.logAccess } : {}),
          ...(options.logReplicas !== undefined ? { replicas: options.logReplicas } : {}),
        })
      : await SegmentLog.open(logDir(db), { ...options, logger, readOnly, verifySealed: !readOnly && !options.skipLogCheck });
    // A writer whose NATS user may not publish (a reader's credentials) would start and fail every write.
    if (log instanceof JetStreamLog && !readOnly) await log.checkMayAppend();
    if (log instanceof JetStreamLog && !log.serverAuthenticates) {
      logger.warn(
        'the NATS server takes clients without credentials: anyone who reaches it reads every key name and can forge events (README: "The log behind NATS authentication")',
        { log: log.location },
      );
    }
    // Open without fsync when the machine went down: maybe torn, and LMDB cannot tell.
    const torn = tornByRestart(indexDir(db));
    const health = torn ? { ok: false as const, reason: torn } : await checkIndex(indexDir(db));
    if (!health.ok) {
      if (readOnly)
        throw new UsageError(
          `the index in ${indexDir(db)} is damaged (${health.reason}); rebuild it with mkv rebuild --db ${db} --from-log`,
        );
      // The log is the source of truth: set the damaged index aside and replay the log into a new one.
      const aside = `${indexDir(db)}-damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      renameSync(indexDir(db), aside);
      logger.error('the index is damaged: set aside, rebuilding it from the log', { reason: health.reason, aside });
    }
    index = IndexStore.open(indexDir(db), { readOnly });
    if (readOnly) {
      const behind = log.lastSeq - index.checkpoint;
      if (behind > 0) logger.warn('read-only: the index is behind its log; serving it as it is', { behind });
    } else {
      const replayed = await catchUp(log, index);
      if (replayed > 0) logger.warn('index caught up with the log', { events: replayed, lastSeq: log.lastSeq });
    }
  } catch (error) {
    await index?.close();
    await log?.close();
    unlock();
    throw error;
  }
  let writer: Writer;
  if (readOnly) writer = new ReadOnlyWriter(index.checkpoint);
  else if (log instanceof JetStreamLog) {
    const following = new JetStreamWriter(log, index, logger, options.onAppend);
    following.start();
    writer = following;
  } else writer = new LocalWriter(log, index, options.onAppend);
  const openLog = log;
  const openIndex = index;
  return {
    log: openLog,
    index: openIndex,
    writer,
    readOnly,
    async close() {
      await writer.close();
      await openLog.close();
      await openIndex.close();
      unlock();
    },
  };
}
