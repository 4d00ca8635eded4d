// The writer across the IPC seam (serveWriter ⇄ RemoteWriter) on a real segment log and LMDB
// index, over a channel pair that delivers each message asynchronously, as a pipe does.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isMkvError } from '../../src/errors.js';
import { IndexStore } from '../../src/index/index-store.js';
import { SegmentLog } from '../../src/log/segment-log.js';
import { RemoteWriter, serveWriter, type Channel } from '../../src/writer/ipc.js';
import { LocalWriter } from '../../src/writer/writer.js';
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
    const appends = Array.from({ length: 20 }, (_, i) => remote.append([{ key: `/batch/${i}`, cause, change: { type: 'WriteStarted', volumes: ['v1'] } }]));
    const events = (await Promise.all(appends)).flat();
    assert.equal(sent.worker, 1, 'twenty calls, one message');
    assert.ok(sent.primary < 20, `twenty replies in ${sent.primary} messages`);
    assert.ok(refreshes <= sent.primary, 'one snapshot refresh per message, not per reply');
    assert.deepEqual(
      events.map((event) => event.key),
      Array.from({ length: 20 }, (_, i) => `/batch/${i}`),
    );
    const seqs = events.map((event) => event.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
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
    assert.ok(isMkvError((second as PromiseRejectedResult).reason, 'MKV_KEY_LOCKED'));
    assert.deepEqual([...service.locked], ['/contested']);
    remote.disconnected();
    await service.release();
    await local.lock('/contested'); // free again
    await local.unlock('/contested');
  });
});
