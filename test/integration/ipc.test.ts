// The writer across the IPC seam (serveWriter ⇄ RemoteWriter) on a real segment log and LMDB
// index, over a channel pair that delivers each message asynchronously, as a pipe does.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isMkvError, MkvError } from '../../src/errors.js';
import type { EventInput } from '../../src/events/event.js';
import { keyRecord, type KeyRecord } from '../../src/index/evolve.js';
import { IndexStore } from '../../src/index/index-store.js';
import { SegmentLog } from '../../src/log/segment-log.js';
import { RemoteWriter, serveWriter, type Channel } from '../../src/writer/ipc.js';
import { recordSeq } from '../../src/writer/writer.js';
import { LocalWriter } from '../../src/writer/local-writer.js';
import { beginWrite, type Decision } from '../../src/keys/key-write.js';
import { removeDir, tempDir } from '../helpers/cluster.js';

/** Two ends of a channel; `sent` counts the messages (IPC writes) each end sent. */
function channelPair(): { primary: Channel; worker: Channel; sent: { primary: number; worker: number } } {
  const sent = { primary: 0, worker: 0 };
  const primaryEvents = new EventEmitter();
  const workerEvents = new EventEmitter();
  const end = (own: EventEmitter, other: EventEmitter, name: 'primary' | 'worker'): Channel => ({
    send(message) {
      sent[name]++;
      const copy = JSON.parse(JSON.stringify(message)) as unknown; // what the real channel does to it
      setImmediate(() => other.emit('message', copy));
      return true;
    },
    on: (event, listener) => own.on(event, listener),
    off: (event, listener) => own.off(event, listener),
    connected: true,
  });
  return { primary: end(primaryEvents, workerEvents, 'primary'), worker: end(workerEvents, primaryEvents, 'worker'), sent };
}

describe('the writer over IPC', () => {
  let root: string;
  let log: SegmentLog;
  let index: IndexStore;
  let local: LocalWriter;
  before(async () => {
    root = tempDir('mkv-ipc-');
    log = await SegmentLog.open(join(root, 'log'), { sync: 'none' });
    index = IndexStore.open(join(root, 'index'));
    local = new LocalWriter(log, index);
  });
  after(async () => {
    await local.close();
    await index.close();
    await log.close();
    removeDir(root);
  });

  const cause = { origin: 'api', client: null };

  test('calls made in one turn go out as one message, and replies a group commit resolves come back together', async () => {
    const { primary, worker, sent } = channelPair();
    const service = serveWriter(primary, local);
    let refreshes = 0;
    const remote = new RemoteWriter(worker, () => refreshes++);
    const appends = Array.from({ length: 20 }, (_, i) =>
      remote.append([{ key: `/batch/${i}`, cause, change: { type: 'WriteStarted', volumes: ['v1'] } }]),
    );
    const events = (await Promise.all(appends)).flat();
    assert.equal(sent.worker, 1, 'twenty calls, one message');
    assert.ok(sent.primary < 20, `twenty replies in ${sent.primary} messages`);
    assert.ok(refreshes <= sent.primary, 'one snapshot refresh per message, not per reply');
    assert.deepEqual(
      events.map((event) => event.key),
      Array.from({ length: 20 }, (_, i) => `/batch/${i}`),
    );
    const seqs = events.map((event) => event.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
    );
    assert.equal(new Set(seqs).size, 20);
    for (const event of events) assert.equal(index.get(event.key)?.state, 'pending', 'readable once answered');
    await remote.close();
    await service.release();
  });

  test('two locks of one key in one message: the first wins, the second is MKV_KEY_LOCKED; a worker that goes releases its locks', async () => {
    const { primary, worker } = channelPair();
    const service = serveWriter(primary, local);
    const remote = new RemoteWriter(worker, () => undefined);
    const [first, second] = await Promise.allSettled([remote.lock('/contested'), remote.lock('/contested')]);
    assert.equal(first.status, 'fulfilled');
    assert.equal(second.status, 'rejected');
    assert.ok(isMkvError(second.reason, 'MKV_KEY_LOCKED'));
    assert.deepEqual([...service.locked], ['/contested']);
    remote.disconnected();
    await service.release();
    await local.lock('/contested'); // free again
    await local.unlock('/contested');
  });

  const started = (key: string): EventInput => ({ key, cause, change: { type: 'WriteStarted', volumes: ['v1'] } });

  test('lockAndAppend: the lock and the first append in one message; a key that changed since it was read is locked and nothing appended', async () => {
    const { primary, worker, sent } = channelPair();
    const service = serveWriter(primary, local);
    const remote = new RemoteWriter(worker, () => undefined);

    const before = sent.worker;
    const events = await remote.lockAndAppend('/cas/fresh', recordSeq(index.get('/cas/fresh')), [started('/cas/fresh')]);
    assert.equal(sent.worker - before, 1, 'one message for the lock and the append');
    assert.equal(events?.length, 1);
    assert.equal(index.get('/cas/fresh')?.state, 'pending');
    assert.ok(service.locked.has('/cas/fresh'));
    await assert.rejects(remote.lockAndAppend('/cas/fresh', recordSeq(index.get('/cas/fresh')), [started('/cas/fresh')]), (error) =>
      isMkvError(error, 'MKV_KEY_LOCKED'),
    );

    const seen = recordSeq(index.get('/cas/moved')); // what the worker read: no record
    await local.append([started('/cas/moved')]); // then someone else wrote the key
    const checkpoint = index.checkpoint;
    assert.equal(await remote.lockAndAppend('/cas/moved', seen, [started('/cas/moved')]), undefined);
    assert.equal(index.checkpoint, checkpoint, 'nothing appended');
    assert.ok(service.locked.has('/cas/moved'), "the lock is the worker's");
    await assert.rejects(local.lock('/cas/moved'), (error) => isMkvError(error, 'MKV_KEY_LOCKED'));

    await remote.unlock('/cas/fresh');
    remote.disconnected();
    await service.release(); // a worker that goes releases what it locked
    await local.lock('/cas/moved');
    await local.unlock('/cas/moved');
  });

  test('lockAndAppend: an append that fails releases the lock', async () => {
    const broken = { key: '/cas/broken', cause, change: { type: 'NoSuchChange' } } as unknown as EventInput;
    await assert.rejects(local.lockAndAppend('/cas/broken', 0, [broken]));
    await local.lock('/cas/broken'); // not left locked
    await local.unlock('/cas/broken');
  });

  /** A PUT's decision: refuse a live key, else start the write. */
  const decidePut = (record: KeyRecord | undefined): Decision =>
    record?.state === 'live' ? new MkvError('MKV_EXISTS', 'the key exists') : [started('/cas/put')];
  /** The index as a worker with an old snapshot reads it: the first read answers `stale`. */
  const readingFirst = (stale: KeyRecord | undefined) => {
    let reads = 0;
    return { reads: () => reads, get: (key: string) => (reads++ === 0 ? stale : index.get(key)) };
  };

  test('beginWrite: a write decided on a stale read is decided again under the lock (403, nothing appended)', async () => {
    const { primary, worker } = channelPair();
    const service = serveWriter(primary, local);
    const remote = new RemoteWriter(worker, () => undefined);
    await local.append([
      started('/cas/put'),
      { key: '/cas/put', cause, change: { type: 'WriteCommitted', volumes: ['v1'], size: 1, md5: null } },
    ]);
    const checkpoint = index.checkpoint;
    const reader = readingFirst(undefined); // it read the key before it was written
    await assert.rejects(beginWrite(remote, reader, '/cas/put', decidePut), (error) => isMkvError(error, 'MKV_EXISTS'));
    assert.equal(reader.reads(), 2, 'read again under the lock');
    assert.equal(index.checkpoint, checkpoint, 'nothing appended');
    assert.equal(service.locked.size, 0, 'the lock is released');
    remote.disconnected();
    await service.release();
  });

  test('beginWrite: a refusal on the read before the lock is decided again under it, and the write goes ahead', async () => {
    await local.append([{ key: '/cas/put', cause, change: { type: 'KeyDeleted', retained: false } }]);
    const reader = readingFirst(keyRecord({ state: 'live', volumes: ['v1'], size: 1, seq: 1, time: 0 })); // read before the DELETE
    const write = await beginWrite(local, reader, '/cas/put', decidePut);
    assert.equal(write.record, undefined, 'the write knows the record it was decided on');
    assert.deepEqual(
      write.started.map((event) => event.change.type),
      ['WriteStarted'],
    );
    assert.equal(index.get('/cas/put')?.state, 'pending');
    await assert.rejects(local.lock('/cas/put'), (error) => isMkvError(error, 'MKV_KEY_LOCKED'), 'held until released');
    await write.release();
    await local.lock('/cas/put');
    await local.unlock('/cas/put');
  });
});
