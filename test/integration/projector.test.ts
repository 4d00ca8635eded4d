// The writer and the projector on real LMDB files: group commit, read-your-writes, and
// exactly-once projection across a crash between the log append and the index commit.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { isMkvError } from '../../src/errors.js';
import type { EventInput } from '../../src/events/event.js';
import { IndexStore } from '../../src/index/index-store.js';
import { parseHeader, readBlock } from '../../src/log/avro-container.js';
import { SegmentLog } from '../../src/log/segment-log.js';
import { listSegments } from '../../src/log/segments.js';
import { openStore } from '../../src/db/store.js';
import { indexDir, logDir } from '../../src/db/paths.js';
import { removeDir, tempDir } from '../helpers/cluster.js';

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));
function newDb(): string {
  const dir = tempDir('mkv-db-');
  dirs.push(dir);
  return dir;
}

const cause = { origin: 'api', client: null };
function write(key: string, size: number): EventInput[] {
  return [
    { key, cause, change: { type: 'WriteStarted', volumes: ['v:1'] } },
    { key, cause, change: { type: 'WriteCommitted', volumes: ['v:1'], size, md5: 'ff' } },
  ];
}

function countBlocks(db: string): number {
  let blocks = 0;
  for (const segment of listSegments(logDir(db))) {
    const bytes = readFileSync(segment.path);
    const header = parseHeader(bytes);
    for (let offset = header.end; offset < bytes.length; blocks++) {
      const scan = readBlock(bytes, offset, header.sync);
      assert.ok(scan.ok);
      offset = scan.block.end;
    }
  }
  return blocks;
}

describe('writer and projector', () => {
  test('concurrent appends share fsyncs (group commit) and are readable when they resolve', async () => {
    const db = newDb();
    const store = await openStore(db);
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const events = await store.writer.append(write(`/k${i}`, i));
        // Read your writes: resolved means projected.
        assert.equal(store.index.get(`/k${i}`)?.state, 'live');
        return events;
      }),
    );
    const seqs = results
      .flat()
      .map((event) => event.seq)
      .sort((a, b) => a - b);
    assert.deepEqual(
      seqs,
      Array.from({ length: 400 }, (_, i) => i + 1),
    );
    assert.equal(store.index.checkpoint, 400);
    await store.close();
    const blocks = countBlocks(db);
    assert.ok(blocks < 200, `200 concurrent appends took ${blocks} blocks; group commit should need far fewer`);
  });

  test('events appended but not projected (a crash in between) are applied once on open', async () => {
    const db = newDb();
    const store = await openStore(db);
    await store.writer.append(write('/a', 1));
    await store.close();
    // The crash: the log has events the index never saw.
    const log = await SegmentLog.open(logDir(db));
    await log.append([...write('/b', 2), { key: '/a', cause, change: { type: 'KeyUnlinked' } }]);
    await log.close();

    for (let reopen = 0; reopen < 2; reopen++) {
      const reopened = await openStore(db);
      assert.equal(reopened.index.checkpoint, 5);
      assert.equal(reopened.index.get('/a')?.state, 'unlinked');
      assert.equal(reopened.index.get('/b')?.size, 2);
      assert.deepEqual(
        reopened.index.historyOf('/a').map((e) => e.change.type),
        ['WriteStarted', 'WriteCommitted', 'KeyUnlinked'],
      );
      assert.deepEqual(
        reopened.index.historyOf('/b').map((e) => e.seq),
        [3, 4],
      );
      await reopened.close();
    }
  });

  test('an index ahead of its log refuses to open, naming the rebuild', async () => {
    const db = newDb();
    const store = await openStore(db);
    await store.writer.append(write('/a', 1));
    await store.close();
    removeDir(logDir(db));
    await assert.rejects(openStore(db), (error) => isMkvError(error, 'MKV_INDEX_AHEAD') && /mkv rebuild/.test(error.message));
  });

  test('apply refuses a gap in seq rather than skip events', async () => {
    const db = newDb();
    const index = IndexStore.open(indexDir(db));
    assert.throws(
      () => index.apply([{ seq: 2, time: 0, key: '/x', cause, change: { type: 'KeyDeleted', retained: false } }]),
      /expected seq 1/,
    );
    await index.close();
  });

  test('only KeyDeleted and WriteAborted remove a key; every other change keeps or makes it', async () => {
    const db = newDb();
    const store = await openStore(db);
    const changes: EventInput['change'][] = [
      { type: 'KeyUnlinked' },
      { type: 'KeyLinked' },
      { type: 'KeyRelocated', volumes: ['w:2'] },
      { type: 'KeyDiscovered', volumes: ['w:2', 'v:1'], size: null, md5: null },
      { type: 'ReplicaRepaired', volume: 'v:1', source: 'w:2' },
    ];
    for (const [i, change] of changes.entries()) {
      await store.writer.append(write(`/keep/${i}`, 5));
      // Applied in its own batch, so the record comes from LMDB, not from the batch.
      await store.writer.append([{ key: `/keep/${i}`, cause, change }]);
      const record = store.index.get(`/keep/${i}`);
      assert.ok(record, `${change.type} keeps the key`);
      assert.equal(record.size, 5, `${change.type} keeps the size`);
      assert.equal(record.md5, 'ff', `${change.type} keeps the md5`);
    }
    await store.close();
  });

  test('several events of one key in one batch evolve in order', async () => {
    const db = newDb();
    const store = await openStore(db);
    await store.writer.append([
      ...write('/x', 1),
      { key: '/x', cause, change: { type: 'KeyUnlinked' } },
      { key: '/x', cause, change: { type: 'KeyLinked' } },
      { key: '/y', cause, change: { type: 'WriteStarted', volumes: ['v:1'] } },
      { key: '/y', cause, change: { type: 'WriteAborted', reason: 'test' } },
    ]);
    assert.equal(store.index.get('/x')?.state, 'live');
    assert.equal(store.index.get('/y'), undefined);
    assert.equal(store.index.historyOf('/y').length, 2);
    assert.deepEqual(store.index.list({ prefix: '/', states: ['live'] }), { keys: ['/x'], next: '' });
    await store.close();
  });
});
