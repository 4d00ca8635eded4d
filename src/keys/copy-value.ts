// Copying a live value to a key (S3's CopyObject): the source's bytes, from one of its replicas,
// stored under the target as any value is (keys/store-value.ts), with the source's attributes or
// new ones. A key copied onto itself with new attributes and no checksum asked keeps its bytes
// where they are and changes only its attributes (rclone sets a file's time so); asked for a
// checksum, or with --retain (each copy a version of its own), it is copied whole, as an
// overwrite of itself.
import { digesting, type ChecksumAlgorithm } from '../checksums.js';
import { MkvError } from '../errors.js';
import type { Cause, Checksum } from '../events/event.js';
import type { KeyRecord } from '../index/evolve.js';
import type { KeyDeps } from './deps.js';
import type { Key } from './key-limits.js';
import { openValue } from './read-value.js';
import { replaceMetadata, storeValue, type S3Value, type StoreOptions } from './store-value.js';
import { etagOf } from './write-condition.js';

export interface Copy {
  source: Key;
  /** The source's record: live, its conditions met. */
  record: KeyRecord;
  /** The attributes the copy is given (x-amz-metadata-directive: REPLACE); none: the source's. */
  attributes?: Pick<S3Value, 'contentType' | 'metadata' | 'headers'>;
  /** A checksum the copy is to be given, computed as it is copied. */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** The source is an earlier version of its key (S3 ?versionId): its bytes are copied, onto its own key too. */
  earlierVersion?: boolean;
}

/** The copy's ETag (quoted, as S3 answers it) and the checksum it was given (none when only its attributes changed). */
export interface Copied {
  etag: string;
  checksum: Checksum | null;
  /** The seq of the event that committed the copy; null when only the attributes changed (the value is the same). */
  seq: number | null;
}

export async function copyValue(
  deps: KeyDeps,
  target: Key,
  copy: Copy,
  cause: Cause,
  options: Pick<StoreOptions, 'mayReplace' | 'condition' | 'clientGone'> = {},
): Promise<Copied> {
  const { source, record, attributes, checksumAlgorithm, earlierVersion } = copy;
  const ontoItself = source === target && !checksumAlgorithm && !earlierVersion;
  if (ontoItself && !attributes)
    throw new MkvError('MKV_BAD_REQUEST', 'copying an object onto itself changes nothing without x-amz-metadata-directive: REPLACE');
  // With --retain a copy is a version of its own, as on S3: the bytes are copied, the old version kept.
  if (ontoItself && attributes && deps.config.retainMs === 0) {
    // New attributes replace the old, which are gone after: as any write that destroys, it needs delete.
    if (options.mayReplace === false) throw new MkvError('MKV_ACCESS_DENIED', `replacing the metadata of ${target} needs the delete right`);
    await replaceMetadata(deps, target, attributes, cause, options.condition);
    return { etag: etagOf(record), checksum: null, seq: null };
  }
  const value = await openValue(deps, source, record);
  const digest = checksumAlgorithm && digesting(value, checksumAlgorithm);
  let written;
  try {
    written = await storeValue(
      deps,
      target,
      {
        body: digest ? digest.body : value,
        length: record.size ?? undefined,
        ...(digest ? { checksum: () => ({ algorithm: checksumAlgorithm, value: digest.value(), type: 'FULL_OBJECT' as const }) } : {}),
      },
      cause,
      {
        ...options,
        s3: {
          ...(attributes ?? { contentType: record.contentType, metadata: record.metadata, headers: record.headers }),
          // A whole value's checksum holds for its copy; a multipart one's (of its parts) does not.
          ...(digest ? {} : { checksum: record.checksum?.type === 'FULL_OBJECT' ? record.checksum : null }),
        },
      },
    );
  } catch (error) {
    // Refused before its bytes were read (the target's condition, the delete right): the
    // replica's response is let go, not left open.
    value.destroy();
    throw error;
  }
  return { etag: `"${written.md5 ?? ''}"`, checksum: written.checksum, seq: written.seq };
}
