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

/**
 * What an S3 DELETE asks of the value it removes: If-Match (ETags, or *), x-amz-if-match-size,
 * x-amz-if-match-last-modified-time (to the second, as Last-Modified says it). Every one given must hold.
 */
export interface DeleteCondition {
  etags?: string;
  size?: number;
  modified?: number;
}

/** Throws unless the record (of the key, or of the version a DELETE names) meets a DELETE's condition: 404 no value, 412 another. */
export function checkDeleteCondition(condition: DeleteCondition | undefined, record: KeyRecord | undefined): void {
  if (!condition) return;
  if (condition.etags !== undefined) checkWriteCondition({ kind: 'match', etags: condition.etags }, record);
  if (record?.state !== 'live') throw new MkvError('MKV_NOT_FOUND', 'The specified key does not exist.');
  const { size, modified } = condition;
  if (
    (size !== undefined && record.size !== size) ||
    (modified !== undefined && Math.floor(record.modified / 1000) !== Math.floor(modified / 1000))
  )
    throw new MkvError('MKV_PRECONDITION_FAILED', 'At least one of the pre-conditions you specified did not hold');
}

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
