// Replay on two threads (a planner thread decodes and plans, this thread commits) must build the
// index the one-thread projector builds: every record and every history row, from any
// checkpoint, to any seq, across batch boundaries where a batch reads keys the batch before it
// changed while that batch is still committing.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isMkvError } from '../../src/errors.js';
import type { Change, EventInput } from '../../src/events/event.js';
import { evolve, type KeyRecord } from '../../src/index/evolve.js';
import { IndexStore } from '../../src/index/index-store.js';
import { parseHeader, readBlock } from '../../src/log/avro-container.js';
import { SegmentLog } from '../../src/log/segment-log.js';
import { listSegments } from '../../src/log/segments.js';
import { catchUp } from '../../src/db/store.js';
import { removeDir, tempDir } from '../helpers/cluster.js';

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));
function newDir(): string {
  const dir = tempDir('mkv-replay-thread-');
  dirs.push(dir);
  return dir;
}

/** A log where many events depend on the record before them: 60 keys, each changed ~25 times. */
async function writeLog(dir: string): Promise<SegmentLog> {
  const log = await SegmentLog.open(join(dir, 'log'), { sync: 'none', segmentBytes: 4 * 1024 });
  let random = 7;
  const next = (n: number) => {
    random = (random * 1103515245 + 12345) % 2 ** 31;
    return random % n;
  };
  const changes: ((i: number) => Change)[] = [
    (i) => ({ type: 'WriteStarted', volumes: [`v${i % 3}:1/sv0${i % 7}`] }),
    (i) => ({ type: 'WriteCommitted', volumes: [`v${i % 3}:1/sv0${i % 7}`, 'ünï:2'], size: i, md5: i % 2 ? null : `md5-${i}` }),
    () => ({ type: 'KeyUnlinked' }),
    () => ({ type: 'KeyLinked' }),
    (i) => ({ type: 'KeyRelocated', volumes: [`r${i}:1`] }),
    (i) => ({ type: 'ReplicaRepaired', volume: `r${i}:1`, source: 'v0:1' }),
    (i) => ({ type: 'KeyDiscovered', volumes: [`d${i}:1`], size: i % 2 ? i : null, md5: null }),
    () => ({ type: 'KeyDeleted', retained: false }),
    (i) => ({ type: 'WriteAborted', reason: `reason ${i}` }),
  ];
  for (let i = 0; i < 1500;) {
    const batch: EventInput[] = [];
    for (const size = 1 + next(40); batch.length < size; i++) {
      batch.push({
        key: `/k/${next(60)}/ключ`,
        cause: { origin: 'api', client: i % 2 ? null : '10.0.0.1' },
        change: changes[next(changes.length)]!(i),
      });
    }
    await log.append(batch);
  }
  return log;
}

/** Every record and every key's history, in key order. */
function contents(index: IndexStore): unknown {
  const records = [...index.entries()];
  return { checkpoint: index.checkpoint, records, history: records.map(([key]) => index.historyOf(key)) };
}

/** The records by folding evolve over the log's events, key by key: no plan, no LMDB. */
async function fold(log: SegmentLog, untilSeq = log.lastSeq): Promise<[string, KeyRecord][]> {
  const records = new Map<string, KeyRecord | undefined>();
  for await (const events of log.readFrom(1, untilSeq))
    for (const event of events) records.set(event.key, evolve(records.get(event.key), event));
  const keys = [...records.keys()].filter((key) => records.get(key) !== undefined);
  keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return keys.map((key) => [key, records.get(key)!]);
}

async function replay(
  log: SegmentLog,
  dir: string,
  options: { thread: boolean; batchEvents: number; untilSeq?: number },
): Promise<IndexStore> {
  const index = IndexStore.open(dir);
  const applied = await catchUp(log, index, options);
  assert.equal(applied, options.untilSeq ?? log.lastSeq, 'every event applied once');
  return index;
}

describe('replay on two threads', () => {
  test('builds the index the one-thread projector builds, whatever the batch size', async () => {
    const dir = newDir();
    const log = await writeLog(dir);
    assert.ok(log.listSegments().length > 3, 'the log spans several segments');
    const expected = await replay(log, join(dir, 'one-thread'), { thread: false, batchEvents: 20_000 });
    assert.deepEqual([...expected.entries()], await fold(log), 'the one-thread projector folds evolve over the log');
    const want = contents(expected);
    // Keys that are deleted and written again, unlinked and linked, in and across batches.
    assert.ok((want as { records: unknown[] }).records.length > 10);
    for (const batchEvents of [1, 2, 7, 100, 20_000]) {
      const index = await replay(log, join(dir, `threads-${batchEvents}`), { thread: true, batchEvents });
      assert.deepEqual(contents(index), want, `batches of ${batchEvents}`);
      await index.close();
    }
    await expected.close();
    await log.close();
  });

  test('from a checkpoint inside a block, to a seq inside a block', async () => {
    const dir = newDir();
    const log = await writeLog(dir);
    const untilSeq = 1111;
    const expected = IndexStore.open(join(dir, 'one-thread'));
    await catchUp(log, expected, { thread: false, untilSeq });
    const index = IndexStore.open(join(dir, 'threads'));
    assert.equal(await catchUp(log, index, { thread: false, untilSeq: 333 }), 333);
    assert.equal(await catchUp(log, index, { thread: true, batchEvents: 50, untilSeq }), untilSeq - 333);
    assert.equal(index.checkpoint, untilSeq);
    assert.deepEqual([...index.entries()], await fold(log, untilSeq));
    assert.deepEqual(contents(index), contents(expected));
    await index.close();
    await expected.close();
    await log.close();
  });

  test('a log with a torn tail, read-only: replays up to its last good event', async () => {
    const dir = newDir();
    const written = await writeLog(dir);
    const lastSeq = written.lastSeq;
    await written.close();
    const newest = listSegments(join(dir, 'log')).at(-1)!.path;
    writeFileSync(newest, Buffer.concat([readFileSync(newest), Buffer.from('a torn block')]));
    const log = await SegmentLog.open(join(dir, 'log'), { readOnly: true });
    assert.equal(log.lastSeq, lastSeq);
    const index = IndexStore.open(join(dir, 'threads'));
    assert.equal(await catchUp(log, index, { thread: true, batchEvents: 64 }), lastSeq);
    await index.close();
    await log.close();
  });

  test('a damaged block stops the replay with MKV_CORRUPT_LOG, and the index keeps what was committed', async () => {
    const dir = newDir();
    const written = await writeLog(dir);
    await written.close();
    // Damage the third segment's first block (the CRC no longer matches).
    const segment = listSegments(join(dir, 'log'))[2]!;
    const bytes = readFileSync(segment.path);
    const header = parseHeader(bytes);
    const scan = readBlock(bytes, header.end, header.sync);
    assert.ok(scan.ok);
    const at = scan.block.end - 20;
    bytes[at] = bytes[at]! ^ 0xff;
    writeFileSync(segment.path, bytes);
    const log = await SegmentLog.open(join(dir, 'log'), { readOnly: true });
    const index = IndexStore.open(join(dir, 'threads'));
    await assert.rejects(catchUp(log, index, { thread: true, batchEvents: 10 }), (error) => isMkvError(error, 'MKV_CORRUPT_LOG'));
    assert.ok(
      index.checkpoint > 0 && index.checkpoint < segment.firstSeq,
      `committed up to a batch before the damage (${index.checkpoint})`,
    );
    // What was committed is whole: a one-thread replay to the same seq gives the same index.
    const expected = IndexStore.open(join(dir, 'one-thread'));
    await catchUp(log, expected, { thread: false, untilSeq: index.checkpoint });
    assert.deepEqual(contents(index), contents(expected));
    await index.close();
    await expected.close();
    await log.close();
  });
});
