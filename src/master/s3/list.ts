// ListObjectsV2: GET /bucket?list-type=2 with prefix, delimiter (CommonPrefixes), max-keys,
// continuation-token, start-after, encoding-type=url. The object key "k" of bucket "b" is the
// mkv key "/b/k"; only live keys are listed.
import type { Context } from 'koa';
import { MkvError } from '../../errors.js';
import { prefixEnd } from '../../index/index-store.js';
import { authorize, identityOf } from '../../auth/authenticate.js';
import type { MasterDeps } from '../deps.js';
import { document, element } from './xml.js';

function parseMaxKeys(value: string | null): number {
  if (value === null || value === '') return 1000;
  if (!/^\d{1,10}$/.test(value)) throw new MkvError('MKV_BAD_QUERY', `max-keys must be a non-negative integer, not ${JSON.stringify(value)}`);
  return Math.min(Number(value), 1000);
}

function encodeToken(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

function decodeToken(token: string): string {
  const key = Buffer.from(token, 'base64url').toString('utf8');
  if (encodeToken(key) !== token) throw new MkvError('MKV_BAD_QUERY', 'the continuation-token is not one this server gave');
  return key;
}

/** The smallest byte string after every key that starts with `prefix`. */
function after(prefix: string): Buffer | undefined {
  return prefixEnd(Buffer.from(prefix, 'utf8'));
}

export function listObjectsV2(ctx: Context, deps: MasterDeps, bucket: string, query: URLSearchParams): void {
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') ?? '';
  const maxKeys = parseMaxKeys(query.get('max-keys'));
  const token = query.get('continuation-token');
  const startAfter = query.get('start-after') ?? '';
  const urlEncoded = query.get('encoding-type') === 'url';
  const encode = (text: string) => (urlEncoded ? encodeURIComponent(text).replace(/%2F/g, '/') : text);

  const root = `/${bucket}/`;
  const base = root + prefix;
  authorize(identityOf(ctx.req), 'list', base);
  let start: Buffer = Buffer.from(base, 'utf8');
  const bump = (candidate: Buffer) => {
    if (Buffer.compare(candidate, start) > 0) start = candidate;
  };
  if (startAfter) bump(Buffer.concat([Buffer.from(root + startAfter, 'utf8'), Buffer.from([0])]));
  if (token) bump(Buffer.from(decodeToken(token), 'utf8'));
  const end = after(base);

  const contents: string[] = [];
  const commonPrefixes: string[] = [];
  let count = 0;
  let next: string | undefined;
  // Walk the keys; a delimiter folds a run of keys into one CommonPrefix and jumps past it.
  scan: for (;;) {
    for (const [key, record] of deps.index.range(start, end)) {
      if (record.state !== 'live') continue;
      const objectKey = key.slice(root.length);
      const cut = delimiter ? objectKey.indexOf(delimiter, prefix.length) : -1;
      if (count === maxKeys) {
        next = key;
        break scan;
      }
      count++;
      if (cut === -1) {
        contents.push(
          element('Contents', [
            element('Key', encode(objectKey)),
            element('LastModified', new Date(record.time).toISOString()),
            element('ETag', `"${record.md5 ?? ''}"`),
            element('Size', record.size ?? 0),
            element('StorageClass', 'STANDARD'),
          ]),
        );
        continue;
      }
      const common = objectKey.slice(0, cut + delimiter.length);
      commonPrefixes.push(element('CommonPrefixes', [element('Prefix', encode(common))]));
      const skip = after(root + common);
      if (!skip || (end && Buffer.compare(skip, end) >= 0)) break scan;
      start = skip;
      continue scan;
    }
    break;
  }
  ctx.status = 200;
  ctx.type = 'application/xml';
  ctx.body = document('ListBucketResult', [
    element('Name', bucket),
    element('Prefix', encode(prefix)),
    ...(delimiter ? [element('Delimiter', encode(delimiter))] : []),
    element('MaxKeys', maxKeys),
    element('KeyCount', count),
    element('IsTruncated', next !== undefined),
    ...(token ? [element('ContinuationToken', token)] : []),
    ...(next !== undefined ? [element('NextContinuationToken', encodeToken(next))] : []),
    ...(startAfter ? [element('StartAfter', encode(startAfter))] : []),
    ...(urlEncoded ? [element('EncodingType', 'url')] : []),
    ...contents,
    ...commonPrefixes,
  ]);
}
