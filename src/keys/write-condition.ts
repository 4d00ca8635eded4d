// What a write may ask of the value a key holds when it commits (S3's conditional writes:
// PutObject or CompleteMultipartUpload with If-None-Match or If-Match): checked against the
// key's record under its lock, which a conditional write holds to its commit (it does not
// overlap other overwrites), so the value it was checked on is the one it replaces.
//
//   If-None-Match: * and the key holds a value → 412; If-None-Match: ETags that name its value
//   → 412; If-Match and no value → 404 NoSuchKey, another ETag → 412
import { MkvError } from '../errors.js';
import type { KeyRecord } from '../index/evolve.js';

/** A value's S3 ETag, quoted: a multipart upload's, else the md5 (none with --md5sum false). */
export function etagOf(record: KeyRecord): string {
  return `"${record.etag ?? record.md5 ?? ''}"`;
}

/** Whether an If-Match / If-None-Match list names this ETag (or is "*"). */
export function namesEtag(list: string, etag: string): boolean {
  return list.split(',').some((item) => {
    const tag = item.trim().replace(/^W\//, '');
    return tag === '*' || tag === etag || `"${tag}"` === etag;
  });
}

/** What a write asks of the value the key holds when it commits: nothing, none at all, one of these ETags, or none of them. */
export type WriteCondition = { kind: 'absent' } | { kind: 'match' | 'none-match'; etags: string } | undefined;

/** Throws unless the key's record (live, or none) meets a write's condition. */
export function checkWriteCondition(condition: WriteCondition, record: KeyRecord | undefined): void {
  if (!condition) return;
  const live = record?.state === 'live' ? record : undefined;
  const failed = () => new MkvError('MKV_PRECONDITION_FAILED', 'At least one of the pre-conditions you specified did not hold');
  if (condition.kind === 'absent') {
    if (live) throw failed();
    return;
  }
  if (condition.kind === 'none-match') {
    if (live && namesEtag(condition.etags, etagOf(live))) throw failed();
    return;
  }
  if (!live) throw new MkvError('MKV_NOT_FOUND', 'The specified key does not exist.');
  if (!namesEtag(condition.etags, etagOf(live))) throw failed();
}
