// The local segment log on real files: append, read back, roll, recover a torn tail, and be
// readable by Apache's own Avro library.
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import type { EventInput, LogEvent } from '../../src/events/event.js';
import { SegmentLog } from '../../src/log/segment-log.js';
import { listSegments } from '../../src/log/segments.js';
import { encodeBlock, parseHeader, walkBlocks } from '../../src/log/avro-container.js';
import { javaAvroSkipReason, pythonAvroSkipReason, readWithJava, readWithPython } from '../helpers/avro-readers.js';
import { removeDir, tempDir } from '../helpers/cluster.js';

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));
function newDir(): string {
  const dir = tempDir('mkv-log-');
  dirs.push(dir);
  return dir;
}

function input(i: number): EventInput {
  return {
    key: `/key-${i}`,
    cause: { origin: 'api', client: '127.0.0.1' },
    change:
      i % 2 === 0
        ? { type: 'WriteStarted', volumes: ['127.0.0.1:1/sv00'] }
        : { type: 'WriteCommitted', volumes: ['127.0.0.1:1/sv00'], size: i, md5: 'aa' },
  };
}

async function readAll(log: SegmentLog, from = 1): Promise<LogEvent[]> {
  const events: LogEvent[] = [];
  for await (const batch of log.readFrom(from)) events.push(...batch);
  return events;
}

describe('segment log', () => {
  test('appends number events densely and read back in order', async () => {
    const dir = newDir();
    const log = await SegmentLog.open(dir);
    const first = await log.append([input(0), input(1)]);
    const second = await log.append([input(2)]);
    assert.deepEqual(
      first.map((e) => e.seq),
      [1, 2],
    );
    assert.deepEqual(
      second.map((e) => e.seq),
      [3],
    );
    await log.close();
    const reopened = await SegmentLog.open(dir);
    assert.equal(reopened.lastSeq, 3);
    assert.equal(reopened.recovered, undefined);
    const events = await readAll(reopened);
    assert.deepEqual(
      events.map((e) => e.key),
      ['/key-0', '/key-1', '/key-2'],
    );
    assert.deepEqual(
      (await readAll(reopened, 3)).map((e) => e.seq),
      [3],
    );
    assert.deepEqual(events[1]!.change, { type: 'WriteCommitted', volumes: ['127.0.0.1:1/sv00'], size: 1, md5: 'aa' });
    await reopened.close();
  });

  test('rolls to a new segment at the size limit; sealed segments keep their bytes', async () => {
    const dir = newDir();
    const log = await SegmentLog.open(dir, { segmentBytes: 600 });
    for (let i = 0; i < 40; i++) await log.append([input(i)]);
    const segments = listSegments(dir);
    assert.ok(segments.length > 3, `expected several segments, got ${segments.length}`);
    assert.equal(segments[0]!.firstSeq, 1);
    assert.ok(segments.every((segment, i) => i === 0 || segment.firstSeq > segments[i - 1]!.firstSeq));
    const sealed = readFileSync(segments[0]!.path);
    await log.append([input(40)]);
    assert.deepEqual(readFileSync(segments[0]!.path), sealed);
    await log.close();
    const reopened = await SegmentLog.open(dir, { segmentBytes: 600 });
    assert.equal(reopened.lastSeq, 41);
    assert.deepEqual(
      (await readAll(reopened)).map((e) => e.seq),
      Array.from({ length: 41 }, (_, i) => i + 1),
    );
    assert.deepEqual((await readAll(reopened, 20)).map((e) => e.seq)[0], 20);
    await reopened.close();
  });

  test('a torn last block, cut at every byte offset, reopens at the last good block', async () => {
    const dir = newDir();
    const log = await SegmentLog.open(dir);
    await log.append([input(0), input(1)]);
    const [segment] = listSegments(dir);
    const lastBlockStart = statSync(segment!.path).size;
    await log.append([input(2), input(3), input(4)]);
    await log.close();
    const whole = readFileSync(segment!.path);
    for (let cut = lastBlockStart + 1; cut < whole.length; cut++) {
      writeFileSync(segment!.path, whole.subarray(0, cut));
      const reopened = await SegmentLog.open(dir);
      assert.equal(reopened.lastSeq, 2, `cut at ${cut}`);
      assert.ok(reopened.recovered, `cut at ${cut} is reported`);
      assert.equal(reopened.recovered.truncatedAt, lastBlockStart);
      assert.equal(statSync(segment!.path).size, lastBlockStart, 'the torn bytes are truncated');
      // The log goes on after the cut, with the next seq.
      const [next] = await reopened.append([input(9)]);
      assert.equal(next!.seq, 3);
      await reopened.close();
    }
  });

  test('garbage after the last block is reported and truncated, never applied', async () => {
    const dir = newDir();
    const log = await SegmentLog.open(dir);
    await log.append([input(0)]);
    await log.close();
    const [segment] = listSegments(dir);
    const goodSize = statSync(segment!.path).size;
    for (const garbage of [Buffer.from('garbage!'), Buffer.from([0, 0, 0, 7]), Buffer.from([0x02, 0x10, 1, 2, 3])]) {
      appendFileSync(segment!.path, garbage);
      const reopened = await SegmentLog.open(dir);
      assert.equal(reopened.lastSeq, 1);
      assert.equal(reopened.recovered?.droppedBytes, garbage.length);
      assert.equal(statSync(segment!.path).size, goodSize);
      assert.equal((await readAll(reopened)).length, 1);
      await reopened.close();
    }
  });

  test('zeros an older writer reserved after the last block: not reported; a writer cuts them and lays empty blocks instead', async () => {
    const dir = newDir();
    const log = await SegmentLog.open(dir);
    await log.append([input(0)]);
    await log.close();
    const [segment] = listSegments(dir);
    const goodSize = statSync(segment!.path).size;
    appendFileSync(segment!.path, Buffer.alloc(100_000));
    assert.deepEqual(
      (await readAll(await SegmentLog.open(dir, { readOnly: true }))).map((event) => event.seq),
      [1],
      'a reader stops at the zeros',
    );
    const reopened = await SegmentLog.open(dir);
    assert.equal(reopened.recovered, undefined);
    assert.equal(reopened.lastSeq, 1);
    assert.equal(statSync(segment!.path).size, goodSize, 'the zeros are cut');
    await reopened.append([input(1)]);
    assert.ok(statSync(segment!.path).size > goodSize + 64 * 1024, 'a reserve of empty blocks is laid');
    assert.deepEqual(
      (await readAll(await SegmentLog.open(dir, { readOnly: true }))).map((event) => event.seq),
      [1, 2],
      'a reader passes over the empty blocks',
    );
    await reopened.close();
    assert.ok(statSync(segment!.path).size < goodSize + 1000, 'closed: cut to its last block');
  });

  test('the newest segment is written into empty blocks reserved ahead; a sealed one is cut to its last block', async () => {
    const dir = newDir();
    const log = await SegmentLog.open(dir, { segmentBytes: 4096 });
    for (let i = 0; i < 60; i++) await log.append([input(i)]);
    const segments = listSegments(dir);
    assert.ok(segments.length >= 2);
    const blocksEnd = (path: string) => {
      const buffer = readFileSync(path);
      let end = parseHeader(buffer).end;
      for (const step of walkBlocks(buffer, parseHeader(buffer))) if (step.ok) end = step.block.end;
      return { end, length: buffer.length };
    };
    const newest = blocksEnd(segments.at(-1)!.path);
    assert.ok(newest.length > newest.end, 'the newest segment has space reserved past its last block');
    for (const sealed of segments.slice(0, -1)) {
      const { end, length } = blocksEnd(sealed.path);
      assert.equal(length, end, `${sealed.path} is cut to its last block`);
    }
    assert.deepEqual(
      (await readAll(await SegmentLog.open(dir, { readOnly: true }))).map((event) => event.seq),
      Array.from({ length: 60 }, (_, i) => i + 1),
    );
    await log.close();
    const closed = blocksEnd(segments.at(-1)!.path);
    assert.equal(closed.length, closed.end, 'closed: the newest is cut too');
  });

  test('a corrupt block in the middle of the newest segment drops it and everything after', async () => {
    const dir = newDir();
    const first = await SegmentLog.open(dir);
    await first.append([input(0)]);
    await first.close();
    const sizeAfterFirst = statSync(listSegments(dir)[0]!.path).size;
    const log = await SegmentLog.open(dir);
    await log.append([input(1)]);
    await log.append([input(2)]);
    await log.close();
    const path = listSegments(dir)[0]!.path;
    const bytes = readFileSync(path);
    bytes[sizeAfterFirst + 6]! ^= 0xff;
    writeFileSync(path, bytes);
    const reopened = await SegmentLog.open(dir);
    assert.equal(reopened.lastSeq, 1);
    assert.equal(reopened.recovered!.truncatedAt, sizeAfterFirst);
    await reopened.close();
  });

  test('refuses to be re-entered: the writer serialises appends, bytes never interleave', async () => {
    const dir = newDir();
    const log = await SegmentLog.open(dir);
    // The writer serialises appends; the log refuses to be re-entered rather than interleave bytes.
    const firstAppend = log.append([input(0)]);
    await assert.rejects(log.append([input(1)]), /not re-entrant/);
    assert.equal((await firstAppend)[0]!.seq, 1);
    assert.equal((await log.append([input(1)]))[0]!.seq, 2);
    await log.close();
  });

  for (const [reader, read, skip] of [
    ['Python', readWithPython, pythonAvroSkipReason()],
    ['Java', readWithJava, javaAvroSkipReason()],
  ] as const) {
    test(
      `Apache's ${reader} reader reads every segment at every instant: live with its reserve, as kill -9 leaves it, closed`,
      { skip },
      async () => {
        const dir = newDir();
        const log = await SegmentLog.open(dir, { segmentBytes: 400 });
        // Blocks of every length modulo the reserve's grid, so every filler is written.
        for (let i = 0; i < 60; i++) await log.append(Array.from({ length: 1 + (i % 5) }, (_, j) => input(i * 10 + j)));
        const count = log.lastSeq;
        const all = Array.from({ length: count }, (_, i) => i + 1);
        const paths = () => listSegments(dir).map((segment) => segment.path);
        assert.ok(paths().length > 1);
        // Live, which is also what kill -9 leaves: every append is on disk with the reserve after it.
        assert.deepEqual(read(paths()), { seqs: all }, 'live');
        // A torn append: half a block written over the reserve. A reader stops there, never hangs.
        const newest = paths().at(-1)!;
        const live = readFileSync(newest);
        const torn = dir + '-torn.avro';
        dirs.push(torn);
        const block = encodeBlock([Buffer.alloc(300, 7)], parseHeader(live).sync);
        let end = parseHeader(live).end;
        for (const step of walkBlocks(live, parseHeader(live))) if (step.ok) end = step.block.end;
        writeFileSync(
          torn,
          Buffer.concat([live.subarray(0, end), block.subarray(0, block.length >> 1), live.subarray(end + (block.length >> 1))]),
        );
        const tornRead = read([torn]);
        assert.ok(!/hung/.test(tornRead.error ?? ''), `a torn tail does not hang the reader: ${tornRead.error}`);
        const inTorn = all.filter((seq) => seq >= listSegments(dir).at(-1)!.firstSeq);
        assert.deepEqual(tornRead.seqs, inTorn.slice(0, tornRead.seqs.length), 'what it reads before stopping is what was written');
        await log.close();
        assert.deepEqual(read(paths()), { seqs: all }, 'closed');
      },
    );
  }
});
