// evolve's overwrites: several in flight at once, and the logs written before they could overlap.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Change, ProjectedEvent } from '../../src/events/event.js';
import { evolve, inFlight, type KeyRecord } from '../../src/index/evolve.js';
import { decodeRecord, recordBound, writeRecord } from '../../src/index/record.js';

function fold(changes: Change[]): KeyRecord | undefined {
  let record: KeyRecord | undefined;
  for (const [i, change] of changes.entries()) {
    const event: ProjectedEvent = { seq: i + 1, time: 1_700_000_000_000 + i, key: '/b/k', change };
    record = evolve(record, event);
  }
  return record;
}

const committed = (version: number): Change => ({
  type: 'ObjectCommitted',
  volumes: ['v1'],
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
