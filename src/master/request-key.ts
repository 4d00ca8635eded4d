// From a request path to a key: the percent-decoded path with its leading slash, as Go's URL.Path.
import { MkvError } from '../errors.js';
import { checkKeyCharacters } from '../keys/key-limits.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The key is the percent-decoded path with its leading slash, as Go's URL.Path. Bytes a client
 * sent unencoded (node:http reads them one char each) are UTF-8, as percent-encoded ones are:
 * a path that is not UTF-8 either way is no key (400), never a key of other characters.
 */
export function decodeKey(rawPath: string): string {
  let key: string;
  try {
    const target = /[^\x00-\x7f]/.test(rawPath) ? utf8.decode(Buffer.from(rawPath, 'latin1')) : rawPath;
    key = decodeURIComponent(target);
  } catch {
    throw new MkvError('MKV_BAD_KEY', 'the key is not valid percent-encoded UTF-8');
  }
  checkKeyCharacters(key);
  return key;
}
