import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration, parseFlags, parseTime, UsageError } from '../../src/cli/args.js';
import { serverFlags } from '../../src/cli/server.js';

test('the original single-dash flags and the double-dash forms parse alike', () => {
  const single = parseFlags(
    ['-port', '3001', '-volumes', 'a:1,b:2', '-db', '/tmp/x', '-protect', '-md5sum=false', '-voltimeout', '500ms'],
    serverFlags,
  ).flags;
  const double = parseFlags(
    ['--port=3001', '--volumes', 'a:1,b:2', '--db=/tmp/x', '--protect', '--md5sum', 'false', '--voltimeout=500ms'],
    serverFlags,
  ).flags;
  assert.deepEqual(single, double);
  assert.equal(single.port, 3001);
  assert.deepEqual(single.volumes, ['a:1', 'b:2']);
  assert.equal(single.protect, true);
  assert.equal(single.md5sum, false);
  assert.equal(single.voltimeout, 500);
  assert.equal(single.replicas, 3);
  assert.equal(single.subvolumes, 10);
});

test('defaults as the original: 3 replicas, 10 subvolumes, md5sum on, 1s voltimeout', () => {
  const { flags } = parseFlags([], serverFlags);
  assert.equal(flags.replicas, 3);
  assert.equal(flags.subvolumes, 10);
  assert.equal(flags.md5sum, true);
  assert.equal(flags.voltimeout, 1000);
  assert.equal(flags.sync, 'fsync');
});

test('bad flags are usage errors', () => {
  assert.throws(() => parseFlags(['--nope'], serverFlags), UsageError);
  assert.throws(() => parseFlags(['--port', 'abc'], serverFlags), UsageError);
  assert.throws(() => parseFlags(['--port'], serverFlags), UsageError);
  assert.throws(() => parseFlags(['--voltimeout', 'soon'], serverFlags), UsageError);
});

test('Go durations', () => {
  assert.equal(parseDuration('1s'), 1000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('0'), 0);
  // As Go's flags: a number without a unit is no duration (is 24 a day, or 24 seconds?).
  assert.throws(() => parseDuration('24'), /has no unit \(24s, 24m or 24h\?\)/);
  assert.throws(() => parseDuration('1 s'), UsageError);
});

test('times: RFC 3339 or its date, nothing Date.parse would guess at', () => {
  assert.equal(parseTime('2026-12-06T09:00:00Z'), Date.UTC(2026, 11, 6, 9));
  assert.equal(parseTime('2026-12-06T10:00:00.5+01:00'), Date.UTC(2026, 11, 6, 9, 0, 0, 500));
  assert.equal(parseTime('2026-12-06'), Date.UTC(2026, 11, 6));
  // Date.parse takes each of these for a day of 2001, or of some year.
  for (const text of ['5', '-5', '12', 'May 1', '2026', '2026-13-45T99:00:00Z', ''])
    assert.throws(() => parseTime(text), UsageError, JSON.stringify(text));
});

test('volume addresses: host:port each, no scheme, a port in range, none twice', () => {
  const volumes = (list: string) => parseFlags(['--volumes', list], serverFlags).flags.volumes;
  assert.deepEqual(volumes('localhost:3001, 10.0.0.2:80,[::1]:3003'), ['localhost:3001', '10.0.0.2:80', '[::1]:3003']);
  for (const [list, message] of [
    ['http://localhost:3001', /without http:\/\//],
    ['localhost', /is not host:port/],
    ['localhost:3001/sv00', /is not host:port/],
    ['localhost:0', /1 to 65535/],
    ['localhost:70000', /1 to 65535/],
    ['a:1,b:2,A:1', /given twice/],
  ] as const)
    assert.throws(
      () => volumes(list),
      (error: Error) => error instanceof UsageError && message.test(error.message),
      list,
    );
});
