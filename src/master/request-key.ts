// From a request path to a key: the percent-decoded path with its leading slash, as Go's URL.Path.
import { MkvError } from '../errors.js';

/** The key is the percent-decoded path with its leading slash, as Go's URL.Path. */
export function decodeKey(rawPath: string): string {
  let key: string;
  try {
    key = decodeURIComponent(rawPath);
  } catch {
    throw new MkvError('MKV_BAD_KEY', 'the key is not valid percent-encoded UTF-8');
  }
  // NUL, other control characters and DEL end up in logs, terminals and file listings.
  if (/[\u0000-\u001f\u007f]/.test(key)) throw new MkvError('MKV_BAD_KEY', 'the key contains a control character');
  return key;
}
