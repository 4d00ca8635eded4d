// Replay of a long backlog on two threads. A worker thread reads the segment log, decodes each
// event for the projection and plans each batch's writes (plan.ts); this thread commits the
// plans to the index it holds open, and stays its only writer. The worker plans a batch while
// the one before it commits, so a replay takes about as long as the slower of the two, not the
// sum.
//
// A batch is planned while the batch before it may still be committing: its lookups read what
// that batch made of its keys (`previous`) over the index as committed before it, which the
// worker waits for before planning on.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { ErrorCodes, MkvError, type ErrorCode } from '../errors.js';
import { readProjected } from '../events/projected.js';
import { encodeEvent, type ProjectedEvent } from '../events/event.js';
import { IndexStore } from '../index/index-store.js';
import { PlanBuilder, type Touched } from '../index/plan.js';
import { checkBlockEnd, readBlocks, type Segment } from '../log/segments.js';

interface Job {
  segments: Segment[];
  indexDir: string;
  fromSeq: number;
  untilSeq: number;
  batchEvents: number;
}

type FromPlanner =
  | { kind: 'plan'; firstSeq: number; lastSeq: number; writes: ArrayBuffer; length: number }
  | { kind: 'done' }
  | { kind: 'failed'; code: string; message: string };

/** Sent for each plan committed. */
const COMMITTED = 'committed';

/**
 * Applies the events of the segment log from the index's checkpoint + 1 to `untilSeq`, in
 * batches of `batchEvents`; returns how many. onBatch sees each committed batch.
 */
export function replayThreaded(
  segments: Segment[],
  index: IndexStore,
  untilSeq: number,
  batchEvents: number,
  onBatch?: (events: number) => void,
): Promise<number> {
  const job: Job = { segments, indexDir: index.dir, fromSeq: index.checkpoint + 1, untilSeq, batchEvents };
  const worker = new Worker(new URL(import.meta.url), { workerData: job });
  let applied = 0;
  return new Promise<number>((resolve, reject) => {
    let settled = false;
    const settle = (error: Error | undefined) => {
      if (settled) return;
      settled = true;
      worker.removeAllListeners();
      // The worker ends by itself after 'done'; after a failure it may be mid-batch.
      void worker.terminate().then(() => {
        index.refresh();
        if (error) reject(error);
        else resolve(applied);
      });
    };
    worker.on('message', (message: FromPlanner) => {
      if (message.kind === 'done') return settle(undefined);
      if (message.kind === 'failed')
        return settle(new MkvError(message.code in ErrorCodes ? (message.code as ErrorCode) : 'MKV_INTERNAL', message.message));
      try {
        index.write({ firstSeq: message.firstSeq, lastSeq: message.lastSeq, writes: Buffer.from(message.writes, 0, message.length) });
      } catch (error) {
        return settle(error as Error);
      }
      const events = message.lastSeq - message.firstSeq + 1;
      applied += events;
      onBatch?.(events);
      worker.postMessage(COMMITTED);
    });
    worker.on('error', (error) => settle(error));
    worker.on('exit', (code) => settle(new MkvError('MKV_INTERNAL', `the replay thread exited (code ${code}) before it was done`)));
  });
}

/** The worker: plans batch after batch and hands each over, at most two ahead of the commits. */
async function plan(job: Job): Promise<void> {
  const port = parentPort!;
  const index = IndexStore.attach(job.indexDir);
  let sent = 0;
  let committed = 0;
  let wake: (() => void) | undefined;
  port.on('message', () => {
    committed++;
    wake?.();
  });
  const commitsReach = async (count: number) => {
    while (committed < count) await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
  };

  let previous: Touched | undefined;
  let builder: PlanBuilder | undefined;
  let inBatch = 0;
  const handOver = async () => {
    if (!builder) return;
    const touched = builder.touched();
    const plan = builder.finish();
    builder = undefined;
    inBatch = 0;
    const message: FromPlanner = {
      kind: 'plan',
      firstSeq: plan.firstSeq,
      lastSeq: plan.lastSeq,
      writes: plan.writes.buffer as ArrayBuffer,
      length: plan.writes.length,
    };
    port.postMessage(message, [message.writes]);
    sent++;
    // The next batch reads this one's keys from `previous`, every earlier one's from the index.
    await commitsReach(sent - 1);
    index.refresh();
    previous = touched;
  };

  const { fromSeq, untilSeq } = job;
  try {
    blocks: for await (const block of readBlocks(job.segments, fromSeq, untilSeq)) {
      let position = 0;
      for (let i = 0; i < block.count; i++) {
        const start = position;
        // A segment of this build's schema is read by hand, its bytes kept for the history rows;
        // an older one's through avsc's resolver, each event encoded as this build writes it.
        let event: ProjectedEvent;
        let source: Buffer;
        let from: number;
        let to: number;
        if (block.reader.current) {
          ({ event, end: position } = readProjected(block.records, start));
          [source, from, to] = [block.records, start, position];
        } else {
          const decoded = block.reader.decode(block.records, start);
          event = decoded.event;
          position = decoded.end;
          source = encodeEvent(decoded.event);
          [from, to] = [0, source.length];
        }
        if (event.seq < fromSeq) continue;
        builder ??= new PlanBuilder((key) => index.get(key), previous, 1 << 22);
        builder.add(event, source, from, to);
        // Stop at untilSeq itself: past it the log may be torn (a read-only open keeps its tail).
        if (event.seq >= untilSeq) break blocks;
        if (++inBatch === job.batchEvents) await handOver();
      }
      checkBlockEnd(position, block.records, block.count, block.path, block.offset);
    }
    await handOver();
    await commitsReach(sent);
  } finally {
    await index.close();
  }
  port.postMessage({ kind: 'done' } satisfies FromPlanner);
}

if (!isMainThread && (workerData as Partial<Job> | null)?.indexDir !== undefined) {
  plan(workerData as Job).catch((error: unknown) => {
    parentPort!.postMessage({
      kind: 'failed',
      code: (error as MkvError).code ?? 'MKV_INTERNAL',
      message: (error as Error).message,
    } satisfies FromPlanner);
  });
}
