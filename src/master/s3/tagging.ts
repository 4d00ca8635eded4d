// Tagging: this store keeps no tags, so every object's tag set is empty and every bucket has
// none. Reading them says so (the aws cli reads a source's tags to copy them when it copies an
// object of over 8 MiB); removing them has nothing to remove; setting them is refused (501), never
// taken and dropped.
//
//   GET    /b/k?tagging   200 <Tagging><TagSet/></Tagging>     (read right, a live key)
//   GET    /b?tagging     404 NoSuchTagSet                       (list right), as S3 answers a bucket without tags
//   DELETE ?tagging       204                                    (write right)
//   PUT    ?tagging       501 NotImplemented
import { authorize } from '../../auth/authenticate.js';
import { MkvError } from '../../errors.js';
import { requireBucket } from '../../keys/buckets.js';
import type { Answer } from '../answer.js';
import type { MasterDeps } from '../deps.js';
import type { S3Call } from './call.js';
import { xmlAnswer } from './s3.js';
import { recordToRead } from './versions.js';

export function tagging(deps: MasterDeps, call: S3Call): Answer {
  const { bucket, objectKey, identity } = call;
  const target = objectKey === '' ? `/${bucket}/` : `/${bucket}/${objectKey}`;
  // The value (or with ?versionId a version --retain keeps): none has tags.
  const value = (): Record<string, string> => {
    const { record, versionId } = recordToRead(deps, target, call.query.get('versionId'));
    if (record?.state !== 'live') throw new MkvError('MKV_NOT_FOUND', 'The specified key does not exist.');
    return versionId === undefined ? {} : { 'x-amz-version-id': versionId };
  };
  switch (call.method) {
    case 'GET': {
      authorize(identity, objectKey === '' ? 'list' : 'read', target);
      requireBucket(deps.index, bucket);
      if (objectKey === '') throw new MkvError('MKV_NO_TAG_SET', 'There is no tag set associated with the bucket.');
      return xmlAnswer('Tagging', ['<TagSet></TagSet>'], value());
    }
    case 'DELETE':
      authorize(identity, 'write', target);
      requireBucket(deps.index, bucket);
      return { status: 204, headers: objectKey === '' ? {} : value() };
    default:
      throw new MkvError('MKV_UNKNOWN_OPERATION', 'tagging is not offered by this store: no object or bucket can have tags');
  }
}
