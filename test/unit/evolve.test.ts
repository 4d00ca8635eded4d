// evolve: every event on a record, as a table; then overwrites, several in flight at once, and
// the logs written before they could overlap.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BlobVersion, Change, KeyStateName, ObjectState, ProjectedEvent } from '../../src/events/event.js';
import { evolve, inFlight, keyRecord, toState, type KeyRecord } from '../../src/index/evolve.js';
import { decodeRecord, recordBound, writeRecord } from '../../src/index/record.js';

function fold(changes: Change[]): KeyRecord | undefined {
  let record: KeyRecord | undefined;
  for (const [i, change] of changes.entries()) {
    const event: ProjectedEvent = { seq: i + 1, time: 1_700_000_000_000 + i, key: '/b/k', change };
    record = evolve(record, event);
  }
  return record;
}

const committed = (version: number, volumes = ['v1']): Change => ({
  type: 'ObjectCommitted',
  volumes,
  size: 1,
  md5: null,
  version,
  etag: null,
  contentType: null,
  metadata: {},
  headers: {},
  checksum: null,
  parts: [],
});
const started = (abandons: number[] | null): Change => ({ type: 'OverwriteStarted', volumes: ['v1'], abandons });
const versions = (record: KeyRecord | undefined) => ({
  value: record?.version,
  inFlight: record ? inFlight(record).map((blob) => blob.version) : [],
  stale: record?.stale.map((blob) => blob.version),
});

/** The record's bytes in the index read back as the same record. */
function roundTrip(record: KeyRecord): KeyRecord {
  const buffer = Buffer.alloc(recordBound(record));
  return decodeRecord(buffer.subarray(0, writeRecord(record, buffer, 0)));
}

describe('evolve: overwrites in flight', () => {
  test('two at once: the last to commit wins, the other stays in flight until it commits', () => {
    // 1 the value, 2 and 3 two overwrites, 4 commits 3, 5 commits 2.
    const changes = [committed(0), started([]), started([]), committed(3)];
    assert.deepEqual(versions(fold(changes)), { value: 3, inFlight: [2], stale: [0] });
    const record = fold([...changes, committed(2)])!;
    assert.deepEqual(versions(record), { value: 2, inFlight: [], stale: [0, 3] });
    assert.deepEqual(roundTrip(record), record);
  });

  test('one aborted by version leaves the other in flight; the index keeps both', () => {
    const record = fold([committed(0), started([]), started([]), started([]), { type: 'OverwriteAborted', reason: 'x', version: 3 }])!;
    assert.deepEqual(versions(record), { value: 0, inFlight: [2, 4], stale: [] });
    assert.deepEqual(roundTrip(record), record);
  });

  test('an overwrite gives up only those it abandons', () => {
    const record = fold([committed(0), started([]), started([]), started([2])]);
    assert.deepEqual(versions(record), { value: 0, inFlight: [3, 4], stale: [2] });
  });

  test('logs written before overwrites could overlap read as they did', () => {
    // OverwriteStarted without abandons gave up every earlier one; OverwriteAborted without a version, all.
    assert.deepEqual(versions(fold([committed(0), started(null), started(null)])), { value: 0, inFlight: [3], stale: [2] });
    const aborted = fold([committed(0), started([]), started([]), { type: 'OverwriteAborted', reason: 'x', version: 0 }]);
    assert.deepEqual(versions(aborted), { value: 0, inFlight: [], stale: [] });
  });
});

/** A record as the table below says it: its state, where its value is, its size, and its other blobs. */
function summary(record: KeyRecord | undefined): string {
  if (!record) return 'none';
  const blobs = (list: BlobVersion[]) => list.map((blob) => `${blob.version}@${blob.volumes.join('+')}`).join(',');
  const inflight = inFlight(record);
  return (
    `${record.state} v${record.version}@${record.volumes.join('+')} size ${record.size ?? '?'}` +
    (record.stale.length ? ` stale ${blobs(record.stale)}` : '') +
    (inflight.length ? ` writing ${blobs(inflight)}` : '') +
    ` seq ${record.seq}`
  );
}

const T = 1_700_000_000_000;
const base = (state: KeyStateName, fields: Partial<KeyRecord> = {}): KeyRecord =>
  keyRecord({ state, volumes: ['a', 'b'], seq: 5, time: T, size: 3, md5: 'm', ...fields });
const live = base('live');
const object = (fields: Partial<ObjectState>): ObjectState => toState(keyRecord({ ...base('live'), ...fields }));

test('evolve, event by event: (record before, event at seq 9) → record after', () => {
  const cases: Array<[string, KeyRecord | undefined, Change, string]> = [
    ['WriteStarted, new key', undefined, { type: 'WriteStarted', volumes: ['a', 'b'] }, 'pending v0@a+b size ? seq 9'],
    [
      'WriteStarted over an overwritten value: its blob is stale',
      base('unlinked', { version: 4 }),
      { type: 'WriteStarted', volumes: ['c'] },
      'pending v0@c size ? stale 4@a+b seq 9',
    ],
    [
      'WriteCommitted',
      base('pending', { size: null }),
      { type: 'WriteCommitted', volumes: ['a', 'b'], size: 7, md5: 'x' },
      'live v0@a+b size 7 seq 9',
    ],
    ['WriteAborted: the key is gone', base('pending'), { type: 'WriteAborted', reason: 'volume down' }, 'none'],
    [
      'WriteUndone: the record before the write, as it was',
      base('pending'),
      { type: 'WriteUndone', reason: 'x', restored: object({ state: 'unlinked', version: 2, volumes: ['c'] }) },
      'unlinked v2@c size 3 seq 9',
    ],
    ['KeyUnlinked', live, { type: 'KeyUnlinked' }, 'unlinked v0@a+b size 3 seq 9'],
    ['KeyUnlinked of no key', undefined, { type: 'KeyUnlinked' }, 'none'],
    ['KeyLinked', base('unlinked'), { type: 'KeyLinked' }, 'live v0@a+b size 3 seq 9'],
    ['DeleteStarted', live, { type: 'DeleteStarted' }, 'deleting v0@a+b size 3 seq 9'],
    ['KeyDeleted', base('deleting'), { type: 'KeyDeleted', retained: false }, 'none'],
    [
      'KeyDeleted, retained (--retain): no value, every blob kept as stale',
      base('live', { version: 4, stale: [{ version: 2, volumes: ['c'] }] }),
      { type: 'KeyDeleted', retained: true },
      'deleted v0@ size ? stale 2@c,4@a+b seq 9',
    ],
    [
      'KeyDeleted, retained, of an unlinked key',
      base('unlinked'),
      { type: 'KeyDeleted', retained: true },
      'deleted v0@ size ? stale 0@a+b seq 9',
    ],
    [
      'StaleRemoved of a deleted key, not its last blob',
      base('deleted', {
        volumes: [],
        size: null,
        stale: [
          { version: 0, volumes: ['a'] },
          { version: 4, volumes: ['b'] },
        ],
      }),
      { type: 'StaleRemoved', version: 0 },
      'deleted v0@ size ? stale 4@b seq 9',
    ],
    [
      'StaleRemoved of a deleted key, its last blob: the record stays for its delete marker',
      base('deleted', { volumes: [], size: null, stale: [{ version: 0, volumes: ['a'] }] }),
      { type: 'StaleRemoved', version: 0 },
      'deleted v0@ size ? seq 9',
    ],
    [
      'MarkerRemoved, no state: the key is gone',
      base('deleted', { volumes: [], size: null }),
      { type: 'MarkerRemoved', marker: 4, state: null },
      'none',
    ],
    [
      'MarkerRemoved of an older marker: the record it names',
      live,
      { type: 'MarkerRemoved', marker: 4, state: object({ stale: [{ version: 2, volumes: ['c'] }] }) },
      'live v0@a+b size 3 stale 2@c seq 9',
    ],
    [
      'VersionRestored: the record it names (a marker the latest again: deleted)',
      base('live', { version: 7 }),
      {
        type: 'VersionRestored',
        version: 4,
        state: toState(base('deleted', { volumes: [], size: null, stale: [{ version: 7, volumes: ['a', 'b'] }] })),
      },
      'deleted v0@ size ? stale 7@a+b seq 9',
    ],
    [
      'ObjectCommitted of an overwrite made stale, then a version restored (another master): its blob is the value, not stale',
      base('live', { version: 3, stale: [{ version: 8, volumes: ['c'] }], writing: null }),
      committed(8, ['c']),
      'live v8@c size 1 stale 3@a+b seq 9',
    ],
    [
      'ObjectCommitted of an overwrite a retained DELETE made stale: its blob is the value, not stale',
      base('deleted', {
        volumes: [],
        size: null,
        stale: [
          { version: 0, volumes: ['a'] },
          { version: 8, volumes: ['c'] },
        ],
      }),
      committed(8, ['c']),
      'live v8@c size 1 stale 0@a seq 9',
    ],
    [
      'ObjectCommitted over a deleted key: live, its kept blobs stay stale',
      base('deleted', { volumes: [], size: null, stale: [{ version: 0, volumes: ['a'] }], writing: { version: 8, volumes: ['c'] } }),
      committedAt(8, ['c']),
      'live v8@c size 1 stale 0@a seq 9',
    ],
    ['KeyRelocated (rebalance)', live, { type: 'KeyRelocated', volumes: ['c', 'd'] }, 'live v0@c+d size 3 seq 9'],
    [
      'ReplicaRepaired: the record unchanged but its seq',
      live,
      { type: 'ReplicaRepaired', volume: 'b', source: 'a' },
      'live v0@a+b size 3 seq 9',
    ],
    [
      'StaleRemoved',
      base('live', { version: 6, stale: [{ version: 0, volumes: ['a'] }] }),
      { type: 'StaleRemoved', version: 0 },
      'live v6@a+b size 3 seq 9',
    ],
    [
      'OverwriteStarted beside a live value',
      live,
      { type: 'OverwriteStarted', volumes: ['c'], abandons: [] },
      'live v0@a+b size 3 writing 9@c seq 9',
    ],
    ['OverwriteStarted of no key', undefined, { type: 'OverwriteStarted', volumes: ['c'], abandons: [] }, 'none'],
    [
      'OverwriteAborted of the one in flight',
      base('live', { writing: { version: 8, volumes: ['c'] } }),
      { type: 'OverwriteAborted', reason: 'x', version: 8 },
      'live v0@a+b size 3 seq 9',
    ],
    [
      'ObjectCommitted of the one in flight: the value before is stale',
      base('live', { writing: { version: 8, volumes: ['c'] } }),
      committedAt(8, ['c']),
      'live v8@c size 1 stale 0@a+b seq 9',
    ],
    [
      'KeyDiscovered, a key the log never named',
      undefined,
      { type: 'KeyDiscovered', volumes: ['a'], size: 4, md5: null },
      'live v0@a size 4 seq 9',
    ],
    [
      'KeyDiscovered, a known key: its state and size kept',
      base('unlinked'),
      { type: 'KeyDiscovered', volumes: ['c'], size: 99, md5: null },
      'unlinked v0@c size 3 seq 9',
    ],
    [
      'ObjectDiscovered, another version than the value: stale',
      live,
      { type: 'ObjectDiscovered', volumes: ['c'], size: 4, version: 7 },
      'live v0@a+b size 3 stale 7@c seq 9',
    ],
    ['ObjectDiscovered, a new key', undefined, { type: 'ObjectDiscovered', volumes: ['c'], size: 4, version: 7 }, 'live v7@c size 4 seq 9'],
    [
      'KeySnapshot: stamped as it was when compacted',
      undefined,
      { type: 'KeySnapshot', state: 'live', volumes: ['a'], size: 2, md5: null, lastSeq: 3, lastTime: T },
      'live v0@a size 2 seq 3',
    ],
    [
      'ObjectSnapshot',
      undefined,
      { type: 'ObjectSnapshot', state: object({ version: 4 }), lastSeq: 4, lastTime: T },
      'live v4@a+b size 3 seq 4',
    ],
    [
      "BucketCreated: a bucket's, the key record untouched",
      live,
      { type: 'BucketCreated', location: null, owner: null },
      'live v0@a+b size 3 seq 5',
    ],
  ];
  for (const [name, before, change, after] of cases) {
    const event: ProjectedEvent = { seq: 9, time: T + 9, key: '/b/k', change };
    const record = evolve(before, event);
    assert.equal(summary(record), after, name);
    if (record) assert.deepEqual(roundTrip(record), record, `${name}: the index keeps it whole`);
  }
});

function committedAt(version: number, volumes: string[]): Change {
  return { ...committed(version), volumes } as Change;
}
