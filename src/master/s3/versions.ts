// S3 versioning on --retain: a value's version id is the seq of the event that made it the
// key's value (its ?history seq, the native ?version), a delete marker's the seq of its
// KeyDeleted (retained). "null" names the key's value now, as S3 names the object of a bucket
// that never had versioning.
import { MkvError } from '../../errors.js';
import type { KeyRecord } from '../../index/evolve.js';
import { currentVersion, markerKept, versionRecord, versionsOf } from '../../keys/versions.js';
import type { MasterDeps } from '../deps.js';

/** A version id as S3 clients send it back: a seq, or "null". */
export function parseVersionId(versionId: string): number | 'null' {
  if (versionId === 'null') return 'null';
  if (!/^[1-9][0-9]{0,15}$/.test(versionId)) throw new MkvError('MKV_BAD_QUERY', 'Invalid version id specified');
  return Number(versionId);
}

/**
 * The record a read serves (GetObject, HeadObject, a copy's source): the key's value, or with a
 * version id that version's, and the id to answer with (x-amz-version-id: with --retain only).
 */
export function recordToRead(
  deps: MasterDeps,
  key: string,
  versionId: string | null | undefined,
): { record: KeyRecord | undefined; versionId: string | undefined } {
  const wanted = versionId === null || versionId === undefined ? 'null' : parseVersionId(versionId);
  const versioned = deps.config.retainMs > 0;
  if (wanted === 'null') {
    const record = deps.index.get(key);
    if (!versioned || (record?.state !== 'live' && record?.state !== 'deleted')) return { record, versionId: undefined };
    const found = versionsOf(deps.index.historyOf(key));
    if (record.state === 'deleted') {
      // Its latest version is a delete marker: S3 says so on the 404.
      const marker = found.markers.at(-1);
      throw new MkvError('MKV_NOT_FOUND', 'The specified key does not exist.', {
        headers: { 'x-amz-delete-marker': 'true', ...(marker ? { 'x-amz-version-id': String(marker.seq) } : {}) },
      });
    }
    const current = currentVersion(found, record);
    return { record, versionId: current ? String(current.seq) : 'null' };
  }
  const found = versionsOf(deps.index.historyOf(key));
  const marker = found.markers.find((candidate) => candidate.seq === wanted && markerKept(candidate, deps.config.retainMs));
  if (marker)
    throw new MkvError('MKV_DELETE_MARKER', 'The specified method is not allowed against this resource: the version is a delete marker', {
      headers: {
        'x-amz-delete-marker': 'true',
        'x-amz-version-id': String(marker.seq),
        'Last-Modified': new Date(marker.time).toUTCString(),
      },
    });
  const version = found.versions.find((candidate) => candidate.seq === wanted);
  if (!version?.held) throw new MkvError('MKV_NO_SUCH_VERSION', 'The specified version does not exist.');
  return { record: versionRecord(version), versionId: String(wanted) };
}
