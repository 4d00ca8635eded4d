// Tagging: this store keeps no tags, so every object's tag set is empty and every bucket has
// none. Reading them says so (the aws cli reads a source's tags to copy them when it copies an
// object of over 8 MiB); removing them has nothing to remove; setting them is refused (501), never
// taken and dropped.
//
//   GET    /b/k?tagging   200 <Tagging><TagSet/></Tagging>     (read right, a live key)
//   GET    /b?tagging     404 NoSuchTagSet                       (list right), as S3 answers a bucket without tags
//   DELETE ?tagging       204                                    (write right)
//   PUT    ?tagging       501 NotImplemented
import type { Context } from 'koa';
import { authorize, identityOf } from '../../auth/authenticate.js';
import { MkvError } from '../../errors.js';
import { requireBucket } from '../../keys/buckets.js';
import type { MasterDeps } from '../deps.js';
import { checkVersionId, xmlResponse } from './s3.js';

export function tagging(ctx: Context, deps: MasterDeps, bucket: string, objectKey: string): void {
  const target = objectKey === '' ? `/${bucket}/` : `/${bucket}/${objectKey}`;
  const identity = identityOf(ctx.req);
  // Of the one version a value has here (s3.ts checkVersionId).
  checkVersionId(new URLSearchParams(ctx.querystring).get('versionId') ?? undefined);
  switch (ctx.method) {
    case 'GET':
      authorize(identity, objectKey === '' ? 'list' : 'read', target);
      requireBucket(deps.index, bucket);
      if (objectKey === '') throw new MkvError('MKV_NO_TAG_SET', 'There is no tag set associated with the bucket.');
      if (deps.index.get(target)?.state !== 'live') throw new MkvError('MKV_NOT_FOUND', 'The specified key does not exist.');
      return xmlResponse(ctx, 'Tagging', ['<TagSet></TagSet>']);
    case 'DELETE':
      authorize(identity, 'write', target);
      requireBucket(deps.index, bucket);
      if (objectKey !== '' && deps.index.get(target)?.state !== 'live')
        throw new MkvError('MKV_NOT_FOUND', 'The specified key does not exist.');
      ctx.status = 204;
      return;
    default:
      throw new MkvError('MKV_UNKNOWN_OPERATION', 'tagging is not offered by this store: no object or bucket can have tags');
  }
}
