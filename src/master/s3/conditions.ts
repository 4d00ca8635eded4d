// S3's conditional requests, read from their headers: the If-* of a GET or HEAD and the
// x-amz-copy-source-if-* of a copy's source, checked here against the value's record (its ETag
// and when it was written); If-Match / If-None-Match of a write, which the write checks when it
// commits (keys/write-condition.ts).
//
//   GET, HEAD: If-Match fails → 412; else If-Unmodified-Since fails → 412;
//              If-None-Match matches → 304; else If-Modified-Since not modified → 304
import type { IncomingHttpHeaders } from 'node:http';
import { MkvError } from '../../errors.js';
import type { KeyRecord } from '../../index/evolve.js';
import { etagOf, namesEtag, type WriteCondition } from '../../keys/write-condition.js';

/** HTTP dates compare by the second: a value written at 12:00:00.5 was not modified since 12:00:00. */
function seconds(time: number): number {
  return Math.floor(time / 1000);
}

function date(text: string): number | undefined {
  const time = Date.parse(text);
  return Number.isNaN(time) ? undefined : time;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/**
 * The answer a conditional GET or HEAD gets before the value is read: 'not-modified' (304),
 * or throws 412 PreconditionFailed; undefined: go on. `prefix` reads a copy's source
 * conditions (x-amz-copy-source-if-…), which fail with 412 either way.
 */
export function checkReadConditions(headers: IncomingHttpHeaders, record: KeyRecord, prefix = ''): 'not-modified' | undefined {
  const etag = etagOf(record);
  const modified = seconds(record.modified);
  const ifMatch = header(headers, `${prefix}if-match`);
  const ifNoneMatch = header(headers, `${prefix}if-none-match`);
  const ifModifiedSince = header(headers, `${prefix}if-modified-since`);
  const ifUnmodifiedSince = header(headers, `${prefix}if-unmodified-since`);
  const failed = () => new MkvError('MKV_PRECONDITION_FAILED', 'At least one of the pre-conditions you specified did not hold');
  if (ifMatch !== undefined) {
    if (!namesEtag(ifMatch, etag)) throw failed();
  } else if (ifUnmodifiedSince !== undefined) {
    const since = date(ifUnmodifiedSince);
    if (since !== undefined && modified > seconds(since)) throw failed();
  }
  const notModified = prefix === '' ? 'not-modified' : undefined;
  if (ifNoneMatch !== undefined) {
    if (namesEtag(ifNoneMatch, etag)) {
      if (!notModified) throw failed();
      return notModified;
    }
  } else if (ifModifiedSince !== undefined) {
    const since = date(ifModifiedSince);
    if (since !== undefined && since <= Date.now() && modified <= seconds(since)) {
      if (!notModified) throw failed();
      return notModified;
    }
  }
  return undefined;
}

/** The condition of a PutObject or CompleteMultipartUpload, from its headers: none, If-None-Match (* or ETags), or If-Match. */
export function writeConditionOf(headers: IncomingHttpHeaders): WriteCondition {
  const ifNoneMatch = header(headers, 'if-none-match');
  const ifMatch = header(headers, 'if-match');
  if (ifNoneMatch !== undefined && ifMatch !== undefined)
    throw new MkvError('MKV_BAD_REQUEST', 'If-Match and If-None-Match cannot both be given to a write');
  if (ifNoneMatch !== undefined) return ifNoneMatch.trim() === '*' ? { kind: 'absent' } : { kind: 'none-match', etags: ifNoneMatch };
  for (const name of ['if-modified-since', 'if-unmodified-since']) {
    if (header(headers, name) !== undefined) throw new MkvError('MKV_UNKNOWN_OPERATION', `a write does not take ${name}`);
  }
  return ifMatch === undefined ? undefined : { kind: 'match', etags: ifMatch };
}
