// The log outlives the build that wrote it: a segment (or a stream message) written with an
// earlier schema is read through avsc's resolver, the fields a newer schema added taking their
// defaults; replay projects it, and the history rows it leaves are this build's encoding.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import avro from 'avsc';
import { catchUp } from '../../src/db/store.js';
import { IndexStore } from '../../src/index/index-store.js';
import { encodeBlock, encodeHeader } from '../../src/log/avro-container.js';
import { decodeMessage, rabinFingerprint } from '../../src/log/jetstream-log.js';
import { SegmentLog } from '../../src/log/segment-log.js';
import { segmentName } from '../../src/log/segments.js';
import { removeDir, repoRoot, tempDir } from '../helpers/cluster.js';

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

/** The schema of the build before S3 object attributes (headers, checksum, parts) were kept. */
const pastJson = JSON.stringify(
  JSON.parse(readFileSync(join(repoRoot, 'schemas/past/event.2026-12-04.before-object-attributes.avsc'), 'utf8')),
);
const pastType = avro.Type.forSchema(JSON.parse(pastJson) as avro.Schema);

const cause = { origin: 'api', client: '127.0.0.1' };
const pastEvents = [
  { seq: 1, time: 1_700_000_000_000, key: '/b/k', cause, change: { 'mkv.WriteStarted': { volumes: ['a:1/sv00'] } } },
  {
    seq: 2,
    time: 1_700_000_000_001,
    key: '/b/k',
    cause,
    change: {
      'mkv.ObjectCommitted': {
        volumes: ['a:1/sv00'],
        size: 5,
        md5: 'ab',
        version: 0,
        etag: null,
        contentType: 'text/plain',
        metadata: { owner: 'old' },
      },
    },
  },
  { seq: 3, time: 1_700_000_000_002, key: '/b/k', cause, change: { 'mkv.KeyUnlinked': {} } },
];

test('a segment written with an earlier schema is read, replayed and shown in its history, the newer fields at their defaults', async () => {
  const dir = tempDir('mkv-evolution-');
  dirs.push(dir);
  const logDir = join(dir, 'log');
  mkdirSync(logDir);
  const sync = randomBytes(16);
  writeFileSync(
    join(logDir, segmentName(1)),
    Buffer.concat([
      encodeHeader(pastJson, sync),
      encodeBlock(
        pastEvents.map((event) => pastType.toBuffer(event)),
        sync,
      ),
    ]),
  );
  const log = await SegmentLog.open(logDir, { readOnly: true });
  const read = [];
  for await (const batch of log.readFrom(1)) read.push(...batch);
  assert.deepEqual(
    read.map((event) => event.change.type),
    ['WriteStarted', 'ObjectCommitted', 'KeyUnlinked'],
  );
  assert.deepEqual(read[1]!.change, {
    type: 'ObjectCommitted',
    volumes: ['a:1/sv00'],
    size: 5,
    md5: 'ab',
    version: 0,
    etag: null,
    contentType: 'text/plain',
    metadata: { owner: 'old' },
    headers: {},
    checksum: null,
    parts: [],
  });
  // Replayed on the planner thread, as a master catching up replays it.
  const index = IndexStore.open(join(dir, 'index'));
  try {
    assert.equal(await catchUp(log, index, { thread: true }), 3);
    const record = index.get('/b/k')!;
    assert.equal(record.state, 'unlinked');
    assert.deepEqual(
      [record.contentType, record.metadata, record.headers, record.checksum, record.parts],
      ['text/plain', { owner: 'old' }, {}, null, []],
    );
    assert.deepEqual(
      index.historyOf('/b/k').map((event) => [event.seq, event.change.type]),
      [
        [1, 'WriteStarted'],
        [2, 'ObjectCommitted'],
        [3, 'KeyUnlinked'],
      ],
    );
  } finally {
    await index.close();
    await log.close();
  }
});

test('a stream message written with an earlier schema is read by its fingerprint; an unknown one is refused', () => {
  const fingerprint = rabinFingerprint(JSON.stringify(pastType.schema()));
  const message = Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprint, pastType.toBuffer({ ...pastEvents[1], seq: 0 })]);
  const event = decodeMessage(message, 42);
  assert.equal(event.seq, 42);
  assert.equal(event.change.type, 'ObjectCommitted');
  assert.deepEqual((event.change as { headers: unknown }).headers, {});
  const unknown = Buffer.from(message);
  unknown[2] = unknown[2]! ^ 0xff;
  assert.throws(() => decodeMessage(unknown, 43), /a schema this build does not know/);
});
