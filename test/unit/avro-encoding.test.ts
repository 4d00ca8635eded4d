// The log's bytes are a format other programs read: pin them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { changeBranches, decodeEvent, encodeEvent, type LogEvent } from '../../src/events/event.js';
import { readProjected, skimEvent } from '../../src/events/projected.js';
import { crc32, decodeLong, encodeBlock, encodeHeader, encodeLong, parseHeader, readBlock } from '../../src/log/avro-container.js';

const committed: LogEvent = {
  seq: 1,
  time: 1700000000000,
  key: '/wehave',
  cause: { origin: 'api', client: '127.0.0.1' },
  change: { type: 'WriteCommitted', volumes: ['localhost:3001/sv07'], size: 7, md5: 'df86f5729538f57b0c5312f673abefe4' },
};
const unlinked: LogEvent = {
  seq: 2,
  time: 1700000000001,
  key: '/wehave',
  cause: { origin: 'api', client: null },
  change: { type: 'KeyUnlinked' },
};
const sync = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');

describe('event encoding', () => {
  test('WriteCommitted has fixed bytes', () => {
    assert.equal(
      encodeEvent(committed).toString('hex'),
      '02' + // seq 1
        '80a0abfef962' + // time 1700000000000
        '0e2f776568617665' + // key "/wehave"
        '06617069' + // cause.origin "api"
        '02123132372e302e302e31' + // cause.client: branch string, "127.0.0.1"
        '00' + // cause.who: null (a server without --credentials)
        '02' + // change: branch 1, WriteCommitted
        '02266c6f63616c686f73743a333030312f7376303700' + // volumes: ["localhost:3001/sv07"]
        '0e' + // size 7
        '02406466383666353732393533386635376230633533313266363733616265666534', // md5: branch string, hex
    );
  });

  test('KeyUnlinked has fixed bytes', () => {
    assert.equal(encodeEvent(unlinked).toString('hex'), '0482a0abfef9620e2f77656861766506617069000006');
  });

  test('who made the call: the access key as a string after the client, null absent when decoded', () => {
    const signed: LogEvent = { ...unlinked, cause: { origin: 'api', client: null, who: 'ops' } };
    const bytes = encodeEvent(signed);
    assert.equal(bytes.toString('hex'), '0482a0abfef9620e2f7765686176650661706900' + '0206' + Buffer.from('ops').toString('hex') + '06');
    assert.deepEqual(decodeEvent(bytes).event.cause, { origin: 'api', client: null, who: 'ops' });
    assert.deepEqual(readProjected(bytes, 0).event.change, { type: 'KeyUnlinked' }, "the projector's reader skips it");
    assert.deepEqual(decodeEvent(encodeEvent(unlinked)).event.cause, { origin: 'api', client: null }, 'no who: none in the event');
  });

  test('every change type round-trips', () => {
    const changes: LogEvent['change'][] = [
      { type: 'WriteStarted', volumes: ['a:1/sv00', 'b:2/sv03'] },
      { type: 'WriteCommitted', volumes: ['a:1'], size: 2 ** 40, md5: null },
      { type: 'WriteAborted', reason: 'volume b:2 answered 500' },
      { type: 'KeyUnlinked' },
      { type: 'KeyLinked' },
      { type: 'KeyDeleted', retained: false },
      { type: 'KeyDeleted', retained: true },
      { type: 'DeleteStarted' },
      {
        type: 'WriteUndone',
        reason: 'the request body ended after 10 of 99 bytes',
        restored: {
          state: 'unlinked',
          volumes: ['a:1/sv00'],
          size: 7,
          md5: 'ab',
          version: 0,
          etag: null,
          contentType: null,
          metadata: {},
          modified: 1_700_000_000_000,
          writing: null,
          stale: [],
          headers: {},
          checksum: null,
          parts: [],
          overwrites: [],
        },
      },
      {
        type: 'ObjectCommitted',
        volumes: ['a:1/sv00'],
        size: 0,
        md5: 'd41d8cd98f00b204e9800998ecf8427e',
        version: 42,
        etag: 'abc-3',
        contentType: 'text/plain',
        metadata: { mtime: '1700000000.5' },
        headers: { 'cache-control': 'no-cache', 'content-language': 'fr' },
        checksum: { algorithm: 'crc32c', value: 'yZRlqg==-2', type: 'COMPOSITE' },
        parts: [
          { size: 5242880, etag: '0123456789abcdef0123456789abcdef', checksum: 'AAAAAA==' },
          { size: 1, etag: 'fedcba9876543210fedcba9876543210', checksum: null },
        ],
      },
      { type: 'MetadataReplaced', contentType: null, metadata: { mtime: '1' }, headers: { expires: 'Thu, 01 Dec 2027 16:00:00 GMT' } },
      { type: 'OverwriteStarted', volumes: ['a:1/sv00', 'b:2/sv03'], abandons: null },
      { type: 'OverwriteStarted', volumes: ['a:1/sv00'], abandons: [41, 2 ** 40] },
      { type: 'OverwriteAborted', reason: 'the client went away', version: 0 },
      { type: 'OverwriteAborted', reason: 'a volume refused', version: 2 ** 33 },
      { type: 'StaleRemoved', version: 41 },
      { type: 'ObjectDiscovered', volumes: ['c:3'], size: 5, version: 7 },
      {
        type: 'ObjectSnapshot',
        state: {
          state: 'live',
          volumes: ['a:1'],
          size: 9,
          md5: null,
          version: 12,
          etag: null,
          contentType: 'image/png',
          metadata: { a: 'b' },
          modified: 1_600_000_000_000,
          writing: { version: 13, volumes: ['b:2'] },
          stale: [{ version: 3, volumes: ['c:3'] }],
          headers: { 'content-disposition': 'attachment' },
          checksum: { algorithm: 'sha256', value: 'AAAA', type: 'FULL_OBJECT' },
          parts: [],
          overwrites: [{ version: 14, volumes: ['a:1', 'c:3'] }],
        },
        lastSeq: 77,
        lastTime: 1_700_000_000_000,
      },
      { type: 'KeyRelocated', volumes: ['c:3'] },
      { type: 'KeyDiscovered', volumes: ['c:3'], size: null, md5: null },
      { type: 'KeyDiscovered', volumes: ['c:3'], size: 5, md5: 'ab' },
      { type: 'ReplicaRepaired', volume: 'c:3/sv01', source: 'a:1/sv00' },
      { type: 'KeySnapshot', state: 'unlinked', volumes: ['a:1'], size: 9, md5: null, lastSeq: 77, lastTime: 1_700_000_000_000 },
      { type: 'BucketCreated', location: null, owner: null },
      { type: 'BucketCreated', location: 'eu-west-1', owner: 'ops' },
      { type: 'BucketDeleted' },
      { type: 'BucketSnapshot', created: 1_600_000_000_000, lastSeq: 78, location: 'default', owner: 'anonymous' },
      {
        type: 'VersionRestored',
        version: 41,
        state: {
          state: 'live',
          volumes: ['a:1/sv00'],
          size: 7,
          md5: 'ab',
          version: 41,
          etag: null,
          contentType: 'video/mp4',
          metadata: {},
          modified: 1_600_000_000_000,
          writing: null,
          stale: [{ version: 0, volumes: ['a:1/sv00'] }],
          headers: {},
          checksum: null,
          parts: [],
          overwrites: [],
        },
      },
      { type: 'MarkerRemoved', marker: 43, state: null },
      {
        type: 'MarkerRemoved',
        marker: 44,
        state: {
          state: 'deleted',
          volumes: [],
          size: null,
          md5: null,
          version: 0,
          etag: null,
          contentType: null,
          metadata: {},
          modified: 1_600_000_000_000,
          writing: null,
          stale: [{ version: 41, volumes: ['a:1/sv00'] }],
          headers: {},
          checksum: null,
          parts: [],
          overwrites: [],
        },
      },
    ];
    for (const [i, change] of changes.entries()) {
      const event: LogEvent = {
        seq: i + 1,
        time: 1_700_000_000_000 + i,
        key: `/k${i}/é`,
        cause: i % 2 === 0 ? { origin: 'rebuild', client: null } : { origin: 'api', client: '::1', who: `key${i}` },
        change,
      };
      const bytes = encodeEvent(event);
      const decoded = decodeEvent(bytes);
      assert.deepEqual({ ...decoded.event, change: { ...decoded.event.change } }, event);
      assert.equal(decoded.end, bytes.length);
      // The projector's reader, from inside a block, reads the same (but the cause it skips).
      const block = Buffer.concat([Buffer.from([1, 2, 3]), bytes, Buffer.from([4])]);
      const projected = readProjected(block, 3);
      assert.deepEqual(
        { ...projected.event, change: { ...projected.event.change } },
        { seq: event.seq, time: event.time, key: event.key, change: event.change },
        change.type,
      );
      assert.equal(projected.end, 3 + bytes.length);
      // mkv audit's skim: what it filters on, and where the event ends.
      assert.deepEqual(
        skimEvent(block, 3),
        { time: event.time, key: event.key, who: event.cause.who ?? null, type: change.type, end: 3 + bytes.length },
        change.type,
      );
    }
    assert.deepEqual(
      new Set(changes.map((change) => change.type)),
      new Set(changeBranches.map((branch) => branch.type)),
      'every branch of the schema is read here',
    );
  });

  test("the projector's reader refuses what is not an event, never reading past it", () => {
    const bytes = encodeEvent(committed);
    for (let cut = 1; cut < bytes.length; cut++) assert.throws(() => readProjected(bytes.subarray(0, cut), 0), `cut at ${cut}`);
  });
});

describe('container file', () => {
  test('CRC-32 check value', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  });

  test('zig-zag longs, past 2^31', () => {
    for (const [value, hex] of [
      [0, '00'],
      [-1, '01'],
      [1, '02'],
      [64, '8001'],
      [1700000000000, '80a0abfef962'],
    ] as const) {
      assert.equal(encodeLong(value).toString('hex'), hex);
      assert.deepEqual(decodeLong(Buffer.from(hex, 'hex'), 0), { value, end: hex.length / 2 });
    }
    assert.equal(decodeLong(Buffer.from('80', 'hex'), 0), undefined, 'a varint cut short');
  });

  test('header bytes: magic, metadata map with schema and codec, sync', () => {
    const header = encodeHeader('"long"', sync);
    assert.equal(
      header.toString('hex'),
      '4f626a01' +
        '04' +
        '166176726f2e736368656d61' +
        '0c226c6f6e6722' +
        '146176726f2e636f646563' +
        '0c736e61707079' +
        '00' +
        sync.toString('hex'),
    );
    const parsed = parseHeader(header);
    assert.equal(parsed.metadata.get('avro.codec')!.toString(), 'snappy');
    assert.equal(parsed.end, header.length);
  });

  test('block bytes: count, size, snappy data, CRC-32 of the raw data, sync', () => {
    const block = encodeBlock([encodeEvent(unlinked)], sync);
    assert.equal(
      block.toString('hex'),
      '02' + // one event
        '38' + // 28 bytes of data
        '1654' +
        '0482a0abfef9620e2f77656861766506617069000006' + // snappy: length 22, one literal
        '02437f09' + // CRC-32 of the 22 raw bytes
        sync.toString('hex'),
    );
    const scan = readBlock(block, 0, sync);
    assert.ok(scan.ok);
    assert.equal(scan.block.count, 1);
    assert.equal(scan.block.end, block.length);
  });

  test('a block with one flipped bit, a wrong sync or a missing byte is refused', () => {
    const block = encodeBlock([encodeEvent(committed), encodeEvent(unlinked)], sync);
    for (let i = 0; i < block.length; i++) {
      const flipped = Buffer.from(block);
      flipped[i]! ^= 0x01;
      assert.equal(readBlock(flipped, 0, sync).ok, false, `bit flip at byte ${i}`);
      assert.equal(readBlock(block.subarray(0, i), 0, sync).ok, false, `cut at byte ${i}`);
    }
  });
});
