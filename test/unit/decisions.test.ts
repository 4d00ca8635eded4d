// How a write and a DELETE begin on a key's record, as tables (in the style of the Go original's
// placement vectors): for each record and request, the events that begin it or the refusal.
// The domain layer decides; these are its decisions, without a log, an index or a volume.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isMkvError } from '../../src/errors.js';
import { keyRecord, type KeyRecord, type KeyState } from '../../src/index/evolve.js';
import type { KeyDeps } from '../../src/keys/deps.js';
import type { Decision } from '../../src/keys/key-write.js';
import { decideDelete, decideLink } from '../../src/keys/remove.js';
import { decideStore } from '../../src/keys/store-value.js';
import type { WriteCondition } from '../../src/keys/write-condition.js';

const cause = { origin: 'api', client: null };
const TARGETS = ['v1', 'v2'];
const NOW = Date.now();

function deps(options: { protect?: boolean; sharedLog?: boolean; retain?: boolean } = {}): Pick<KeyDeps, 'writer' | 'config'> {
  return {
    writer: { sharedLog: options.sharedLog ?? false },
    config: { protect: options.protect ?? false, pendingGraceMs: 3_600_000, retainMs: options.retain ? 86_400_000 : 0 },
  } as unknown as Pick<KeyDeps, 'writer' | 'config'>;
}

/** A key deleted with --retain: no value, its blob kept. */
const DELETED = record('deleted', { volumes: [], stale: [{ version: 0, volumes: TARGETS }] });

function record(state: KeyState, fields: Partial<KeyRecord> = {}): KeyRecord {
  return keyRecord({ state, volumes: ['v1', 'v2'], seq: 7, time: NOW, md5: '0123456789abcdef0123456789abcdef', size: 3, ...fields });
}

/** A decision as a word: the first event's type (or "nothing"), or the refusal's code. */
function outcome(decision: Decision): string {
  if (isMkvError(decision)) return decision.code;
  return decision[0]?.change.type ?? 'nothing';
}

const ETAG = '"0123456789abcdef0123456789abcdef"';
const OTHER = '"ffffffffffffffffffffffffffffffff"';

test('a write: where it begins (in the key path, beside the value) or why it is refused', () => {
  const cases: Array<
    [
      string,
      KeyRecord | undefined,
      { s3?: boolean; mayReplace?: boolean; condition?: WriteCondition; shared?: boolean; retain?: boolean },
      string,
    ]
  > = [
    ['new key, native PUT', undefined, {}, 'WriteStarted'],
    ['new key, S3 PutObject', undefined, { s3: true }, 'WriteStarted'],
    ['live, native PUT', record('live'), {}, 'MKV_EXISTS'],
    ['live, S3 PutObject', record('live'), { s3: true }, 'OverwriteStarted'],
    ['live, S3, key without delete', record('live'), { s3: true, mayReplace: false }, 'MKV_ACCESS_DENIED'],
    ['unlinked, native PUT over it in place', record('unlinked'), {}, 'WriteStarted'],
    ['unlinked, native PUT, key without delete', record('unlinked'), { mayReplace: false }, 'MKV_ACCESS_DENIED'],
    ['unlinked, S3 PutObject beside it', record('unlinked'), { s3: true }, 'OverwriteStarted'],
    ['unlinked overwritten before, native PUT beside it', record('unlinked', { version: 12 }), {}, 'OverwriteStarted'],
    ['pending (its master died), taken over', record('pending'), { s3: true }, 'WriteStarted'],
    ['pending on a shared log, young: maybe in flight elsewhere', record('pending'), { s3: true, shared: true }, 'MKV_KEY_LOCKED'],
    [
      'pending on a shared log, past --pending-grace: taken over',
      record('pending', { time: NOW - 2 * 3_600_000 }),
      { s3: true, shared: true },
      'WriteStarted',
    ],
    ['deleting', record('deleting'), { s3: true }, 'MKV_DELETING'],
    ['If-None-Match * on a live key', record('live'), { s3: true, condition: { kind: 'absent' } }, 'MKV_PRECONDITION_FAILED'],
    ['If-None-Match * on a new key', undefined, { s3: true, condition: { kind: 'absent' } }, 'WriteStarted'],
    ['If-None-Match * over an unlinked value', record('unlinked'), { s3: true, condition: { kind: 'absent' } }, 'OverwriteStarted'],
    ['If-Match its ETag', record('live'), { s3: true, condition: { kind: 'match', etags: ETAG } }, 'OverwriteStarted'],
    ['If-Match another ETag', record('live'), { s3: true, condition: { kind: 'match', etags: OTHER } }, 'MKV_PRECONDITION_FAILED'],
    ['If-Match on a new key', undefined, { s3: true, condition: { kind: 'match', etags: '*' } }, 'MKV_NOT_FOUND'],
    ['If-None-Match its ETag', record('live'), { s3: true, condition: { kind: 'none-match', etags: ETAG } }, 'MKV_PRECONDITION_FAILED'],
    ['If-None-Match another ETag', record('live'), { s3: true, condition: { kind: 'none-match', etags: OTHER } }, 'OverwriteStarted'],
    ['--retain: new key, native PUT, in the key path', undefined, { retain: true }, 'WriteStarted'],
    ['--retain: unlinked, native PUT beside it (kept)', record('unlinked'), { retain: true }, 'OverwriteStarted'],
    ['deleted with --retain, native PUT beside its kept blob', DELETED, {}, 'OverwriteStarted'],
    ['deleted with --retain, S3 PutObject beside it', DELETED, { s3: true, retain: true }, 'OverwriteStarted'],
    ['deleted with --retain, a key that may not delete: nothing is replaced', DELETED, { mayReplace: false }, 'OverwriteStarted'],
    ['If-None-Match * on a deleted key', DELETED, { s3: true, condition: { kind: 'absent' } }, 'OverwriteStarted'],
    ['If-Match on a deleted key', DELETED, { s3: true, condition: { kind: 'match', etags: '*' } }, 'MKV_NOT_FOUND'],
  ];
  for (const [name, at, request, expected] of cases) {
    const decision = decideStore(
      deps({ sharedLog: request.shared ?? false, retain: request.retain ?? false }),
      '/b/k',
      at,
      TARGETS,
      cause,
      request.s3 ?? false,
      request.mayReplace ?? true,
      request.condition,
    );
    assert.equal(outcome(decision), expected, name);
  }
});

test('an overwrite gives up the ones its record names in flight, unless they may be in flight on another master', () => {
  const writing = record('live', { writing: { version: 9, volumes: TARGETS }, overwrites: [{ version: 11, volumes: TARGETS }] });
  const here = decideStore(deps(), '/b/k', writing, TARGETS, cause, true, true, undefined);
  assert.ok(!isMkvError(here));
  assert.deepEqual(here[0]!.change, { type: 'OverwriteStarted', volumes: TARGETS, abandons: [9, 11] });
  const shared = decideStore(deps({ sharedLog: true }), '/b/k', writing, TARGETS, cause, true, true, undefined);
  assert.ok(!isMkvError(shared));
  assert.deepEqual(shared[0]!.change, { type: 'OverwriteStarted', volumes: TARGETS, abandons: [] });
});

test('a DELETE: where it begins or why it is refused', () => {
  const cases: Array<[string, KeyRecord | undefined, { protect?: boolean; shared?: boolean; retain?: boolean }, string]> = [
    ['no key', undefined, {}, 'MKV_NOT_FOUND'],
    ['live', record('live'), {}, 'DeleteStarted'],
    ['live, --protect', record('live'), { protect: true }, 'MKV_PROTECTED'],
    ['unlinked, --protect: the way to delete it', record('unlinked'), { protect: true }, 'DeleteStarted'],
    ['pending (its master died): its blobs go', record('pending'), {}, 'nothing'],
    ['pending on a shared log, young', record('pending'), { shared: true }, 'MKV_KEY_LOCKED'],
    [
      'pending on a shared log, past --pending-grace: its blobs go',
      record('pending', { time: NOW - 2 * 3_600_000 }),
      { shared: true },
      'nothing',
    ],
    ['deleting: finished', record('deleting'), {}, 'nothing'],
    ['live, --retain: one event, its blob kept', record('live'), { retain: true }, 'KeyDeleted'],
    ['unlinked, --retain', record('unlinked'), { retain: true }, 'KeyDeleted'],
    ['live, --retain --protect', record('live'), { retain: true, protect: true }, 'MKV_PROTECTED'],
    ['pending, --retain: its blobs go (never a value)', record('pending'), { retain: true }, 'nothing'],
    ['deleted with --retain: no key', DELETED, { retain: true }, 'MKV_NOT_FOUND'],
  ];
  for (const [name, at, options, expected] of cases) {
    const decision = decideDelete(
      deps({ protect: options.protect ?? false, sharedLog: options.shared ?? false, retain: options.retain ?? false }),
      '/b/k',
      at,
      cause,
    );
    assert.equal(outcome(decision), expected, name);
  }
});

test('UNLINK and LINK: the one event, or why not', () => {
  const cases: Array<[string, KeyRecord | undefined, 'UNLINK' | 'LINK', string]> = [
    ['UNLINK a live key', record('live'), 'UNLINK', 'KeyUnlinked'],
    ['UNLINK an unlinked key', record('unlinked'), 'UNLINK', 'MKV_NOT_FOUND'],
    ['UNLINK no key', undefined, 'UNLINK', 'MKV_NOT_FOUND'],
    ['UNLINK a pending write', record('pending'), 'UNLINK', 'MKV_NOT_FOUND'],
    ['LINK an unlinked key', record('unlinked'), 'LINK', 'KeyLinked'],
    ['LINK a live key', record('live'), 'LINK', 'MKV_NOT_FOUND'],
    ['LINK a key being deleted', record('deleting'), 'LINK', 'MKV_DELETING'],
    ['LINK no key', undefined, 'LINK', 'MKV_NOT_FOUND'],
    ['UNLINK a key deleted with --retain', DELETED, 'UNLINK', 'MKV_NOT_FOUND'],
    ['LINK a key deleted with --retain', DELETED, 'LINK', 'MKV_NOT_FOUND'],
  ];
  for (const [name, at, verb, expected] of cases) assert.equal(outcome(decideLink('/b/k', at, verb === 'LINK', cause)), expected, name);
});
