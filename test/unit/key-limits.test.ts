// What can be a key, whichever way it came in (a path, a copy source, a DeleteObjects document,
// a file on a volume): checkedKey is the one check, as a table.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isMkvError } from '../../src/errors.js';
import { checkedKey } from '../../src/keys/key-limits.js';

/** The check's verdict: "ok", or the refusal's code. */
function verdict(text: string): string {
  try {
    checkedKey(text);
    return 'ok';
  } catch (error) {
    if (!isMkvError(error)) throw error;
    return error.code;
  }
}

test('checkedKey: a key fits the index and a volume file name, and holds no character that cannot be one', () => {
  const cases: Array<[string, string, string]> = [
    ['a plain key', '/b/k', 'ok'],
    ['UTF-8 beyond the BMP', '/b/\u{1f600}', 'ok'],
    ['a dot inside a name', '/b/.hidden/a.b', 'ok'],
    ['a NUL', '/b/\u0000', 'MKV_BAD_KEY'],
    ['a newline (a forged log line)', '/b/a\nb', 'MKV_BAD_KEY'],
    ['DEL', '/b/\u007f', 'MKV_BAD_KEY'],
    ['a lone high surrogate', '/b/\ud800', 'MKV_BAD_KEY'],
    ['a lone low surrogate', '/b/\udc00x', 'MKV_BAD_KEY'],
    ['a "." segment', '/b/./k', 'MKV_BAD_KEY'],
    ['a ".." segment', '/b/../k', 'MKV_BAD_KEY'],
    ['a trailing ".."', '/b/..', 'MKV_BAD_KEY'],
    ['177 bytes: every name fits', `/${'a'.repeat(176)}`, 'ok'],
    ['one name too long for a file system', `/${'a'.repeat(400)}`, 'MKV_KEY_TOO_LONG'],
    ['past the index limit', `/${'abcdefghi/'.repeat(300)}`, 'MKV_KEY_TOO_LONG'],
  ];
  for (const [name, key, expected] of cases) assert.equal(verdict(key), expected, name);
});
