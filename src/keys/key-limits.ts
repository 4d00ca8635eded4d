// The limits a key must fit before anything is written, checked once where a key comes in (the
// native API's path, an S3 request's, a copy's source): a Key is a key that fits, and the
// operations that write one take only a Key.
import { MkvError } from '../errors.js';
import { MAX_KEY_BYTES } from '../index/index-store.js';
import { keyToPath } from '../placement.js';

/** File systems allow 255 bytes in one name. */
export const MAX_NAME_BYTES = 255;
/** What an S3 overwrite adds to a blob's name: "~" and a seq of up to 16 digits. */
const VERSION_SUFFIX_BYTES = 17;

declare const fits: unique symbol;

/** A key known to fit: checked as it came in (checkedKey), or read back from the index or the log. */
export type Key = string & { readonly [fits]: true };

/** `text` as a Key, once it fits (else MKV_BAD_KEY, MKV_KEY_TOO_LONG). */
export function checkedKey(text: string): Key {
  checkKeyFits(text);
  return text as Key;
}

/** Throws unless every character of `key` may be in a key (or a prefix of keys): see checkKeyFits. */
export function checkKeyCharacters(key: string): void {
  if (/[\u0000-\u001f\u007f]/.test(key)) throw new MkvError('MKV_BAD_KEY', 'the key contains a control character');
  // A lone surrogate (from an XML document's character reference, say) has no UTF-8.
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(key))
    throw new MkvError('MKV_BAD_KEY', 'the key is not valid Unicode');
}

/**
 * Throws unless the key can be a key: no control character (NUL, the others and DEL end up in
 * logs, terminals and file listings), no "." or ".." path segment (HTTP clients and proxies
 * resolve those away, so such a key could not be read back), and it fits the index (LMDB's
 * key limit) and a file name on a volume.
 */
export function checkKeyFits(key: string): void {
  checkKeyCharacters(key);
  if (/(^|\/)\.\.?(\/|$)/.test(key)) throw new MkvError('MKV_BAD_KEY', 'the key has a "." or ".." path segment');
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) {
    throw new MkvError('MKV_KEY_TOO_LONG', `the key is ${bytes} bytes; the index holds keys of at most ${MAX_KEY_BYTES} bytes`);
  }
  // base64 makes 4 characters of every 3 bytes: up to 177 bytes, the name fits whatever the key,
  // with room for an overwrite's "~N" (17 bytes at most: placement.ts blobPath).
  if (bytes <= 177) return;
  const longest =
    Math.max(
      ...keyToPath(key)
        .split('/')
        .map((name) => Buffer.byteLength(name)),
    ) + VERSION_SUFFIX_BYTES;
  if (longest > MAX_NAME_BYTES) {
    throw new MkvError(
      'MKV_KEY_TOO_LONG',
      `the key's file name on a volume would be ${longest} bytes; file systems allow ${MAX_NAME_BYTES}`,
    );
  }
}
