// The pure parts of S3 multipart upload: the composite checksum (ceph's s3-tests' vectors), the
// copy range, the parts a completion may take, and the bytes GET ?partNumber answers with.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { compositeChecksum, createDigest } from '../../src/checksums.js';
import { MkvError } from '../../src/errors.js';
import { keyRecord } from '../../src/index/evolve.js';
import { copyRangeOf } from '../../src/master/s3/multipart.js';
import { chosenParts, MIN_PART_BYTES } from '../../src/uploads/complete-upload.js';
import { partNumberOf, partOf } from '../../src/master/s3/parts.js';
import type { StoredPart } from '../../src/uploads/upload-store.js';

const MiB = 1024 * 1024;
const code = (expected: string) => (error: unknown) => error instanceof MkvError && error.code === expected;
const base64 = (algorithm: 'sha256' | 'sha1' | 'crc32', data: Buffer) => {
  const digest = createDigest(algorithm);
  digest.update(data);
  return digest.digest().toString('base64');
};

describe('compositeChecksum: the digest of the parts digests, then -N (as S3 and ceph form it)', () => {
  test('one part of 1,024 "A": SHA-256', () => {
    const part = createHash('sha256').update(Buffer.alloc(1024, 'A')).digest('base64');
    assert.equal(part, 'arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0=');
    assert.equal(compositeChecksum('sha256', [part]), 'Ok6Cs5b96ux6+MWQkJO7UBT5sKPBeXBLwvj/hK89smg=-1');
  });

  test('three parts of 5 MiB of "A", "B", "C": SHA-256 and SHA-1', () => {
    const parts = ['A', 'B', 'C'].map((char) => Buffer.alloc(5 * MiB, char));
    const sha256 = parts.map((part) => base64('sha256', part));
    assert.deepEqual(sha256, [
      '275VF5loJr1YYawit0XSHREhkFXYkkPKGuoK0x9VKxI=',
      'mrHwOfjTL5Zwfj74F05HOQGLdUb7E5szdCbxgUSq6NM=',
      'Vw7oB/nKQ5xWb3hNgbyfkvDiivl+U+/Dft48nfJfDow=',
    ]);
    assert.equal(compositeChecksum('sha256', sha256), 'uWBwpe1dxI4Vw8Gf0X9ynOdw/SS6VBzfWm9giiv1sf4=-3');
    const sha1 = parts.map((part) => base64('sha1', part));
    assert.deepEqual(sha1, ['iIaTCGbm+vdVjNqIMF2S0T7ibMk=', 'LS/TJ32bAVKEwRu+sE3X7awh/lk=', '6DDwovUaHwrKNXDMzOGbuvj9kxI=']);
    assert.equal(compositeChecksum('sha1', sha1), 'sizjvY4eud3MrcHdZM3cQ/ol39o=-3');
    // FULL_OBJECT is no composite: the CRC of every byte.
    assert.equal(base64('crc32', Buffer.concat(parts)), 'WgDhBQ==');
  });
});

describe('copyRangeOf: x-amz-copy-source-range', () => {
  test('none: the whole value; bytes=first-last within it', () => {
    assert.equal(copyRangeOf('', 10), undefined);
    assert.deepEqual(copyRangeOf('bytes=0-9', 10), { start: 0, end: 9 });
    assert.deepEqual(copyRangeOf('bytes=3-3', 10), { start: 3, end: 3 });
  });

  test('past the end: InvalidRange; any other form: InvalidArgument', () => {
    assert.throws(() => copyRangeOf('bytes=0-10', 10), code('MKV_INVALID_RANGE'));
    assert.throws(() => copyRangeOf('bytes=0-0', 0), code('MKV_INVALID_RANGE'));
    for (const range of ['0-2', 'bytes=0', 'bytes=hello-world', 'bytes=0-bar', 'bytes=hello-', 'bytes=0-2,3-5', 'bytes=5-2', 'bytes=-3'])
      assert.throws(() => copyRangeOf(range, 10), code('MKV_BAD_QUERY'), range);
  });
});

describe('chosenParts: what CompleteMultipartUpload may take', () => {
  const part = (number: number, size: number, checksum: StoredPart['checksum'] = null): StoredPart => ({
    number,
    size,
    md5: `md5-${number}`,
    checksum,
    modified: '',
  });
  const stored = new Map([
    [1, part(1, MIN_PART_BYTES, { algorithm: 'sha256', value: 'one' })],
    [2, part(2, MIN_PART_BYTES - 1)],
    [3, part(3, 1)],
  ]);
  const ask = (number: number, checksums: Array<{ algorithm: 'sha256' | 'crc32'; value: string }> = []) => ({
    number,
    etag: `md5-${number}`,
    checksums,
  });

  test('every part but the last 5 MiB at least, else EntityTooSmall; the last may be anything', () => {
    assert.deepEqual(
      chosenParts([ask(1), ask(3)], stored).map((chosen) => chosen.number),
      [1, 3],
    );
    assert.deepEqual(
      chosenParts([ask(2)], stored).map((chosen) => chosen.number),
      [2],
    );
    assert.throws(() => chosenParts([ask(1), ask(2), ask(3)], stored), code('MKV_ENTITY_TOO_SMALL'));
  });

  test('a part not uploaded, with another ETag or checksum, or out of order: InvalidPart', () => {
    assert.throws(() => chosenParts([ask(9)], stored), code('MKV_INVALID_PART'));
    assert.throws(() => chosenParts([{ ...ask(1), etag: 'other' }], stored), code('MKV_INVALID_PART'));
    assert.throws(() => chosenParts([ask(3), ask(1)], stored), code('MKV_INVALID_PART'));
    // A part named twice in a row counts once, by the ETag of the part stored (its last upload).
    assert.deepEqual(
      chosenParts([{ ...ask(1), etag: 'an earlier upload of it' }, ask(1), ask(3)], stored).map((chosen) => chosen.number),
      [1, 3],
    );
    assert.throws(
      () =>
        chosenParts(
          [
            { ...ask(1), etag: 'x' },
            { ...ask(1), etag: 'y' },
          ],
          stored,
        ),
      code('MKV_INVALID_PART'),
    );
    assert.throws(() => chosenParts([ask(1, [{ algorithm: 'sha256', value: 'two' }])], stored), code('MKV_INVALID_PART'));
    assert.throws(() => chosenParts([ask(1, [{ algorithm: 'crc32', value: 'one' }])], stored), code('MKV_INVALID_PART'));
    assert.equal(chosenParts([ask(1, [{ algorithm: 'sha256', value: 'one' }])], stored).length, 1);
  });
});

describe('partOf: the bytes of GET ?partNumber=N', () => {
  const multipart = keyRecord({
    state: 'live',
    volumes: [],
    seq: 1,
    time: 0,
    size: 25,
    parts: [
      { size: 10, etag: 'a', checksum: 'x' },
      { size: 10, etag: 'b', checksum: 'y' },
      { size: 5, etag: 'c', checksum: null },
    ],
  });
  const whole = keyRecord({ state: 'live', volumes: [], seq: 1, time: 0, size: 7 });
  const query = (number: string) => new URLSearchParams({ partNumber: number });

  test('none asked: undefined; a multipart value: its part, by offset', () => {
    assert.equal(partOf(multipart, new URLSearchParams(), ''), undefined);
    assert.deepEqual(partOf(multipart, query('1'), ''), { number: 1, count: 3, start: 0, end: 9, part: multipart.parts[0] });
    assert.deepEqual(partOf(multipart, query('3'), ''), { number: 3, count: 3, start: 20, end: 24, part: multipart.parts[2] });
    assert.throws(() => partOf(multipart, query('4'), ''), code('MKV_INVALID_PART'));
  });

  test('a value written whole is its one part; a Range with it, or a number out of 1..10000, is refused', () => {
    assert.deepEqual(partOf(whole, query('1'), ''), { number: 1, count: 1, start: 0, end: 6, part: undefined });
    assert.throws(() => partOf(whole, query('2'), ''), code('MKV_INVALID_PART'));
    assert.throws(() => partOf(whole, query('1'), 'bytes=0-1'), code('MKV_BAD_REQUEST'));
    for (const number of ['0', '10001', '-1', 'x', '', '1.5']) assert.throws(() => partNumberOf(number), code('MKV_BAD_QUERY'), number);
    assert.equal(partNumberOf('10000'), 10000);
  });
});
