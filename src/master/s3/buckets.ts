// Buckets, as S3 answers for a store where a bucket is a key prefix: bucket b is every key
// "/b/…". Every bucket exists (HeadBucket 200, CreateBucket a no-op), ListBuckets names those
// that hold a key, and DeleteBucket succeeds on one that holds no live key, as S3's does on an
// empty bucket.
import type { Context } from 'koa';
import { authorize, identityOf } from '../../auth/authenticate.js';
import { allows } from '../../auth/credentials.js';
import { MkvError } from '../../errors.js';
import { prefixEnd } from '../../index/index-store.js';
import type { MasterDeps } from '../deps.js';
import { element } from './xml.js';
import { xmlResponse } from './s3.js';

/** ListBuckets (GET / of an S3 request): the buckets that hold a live key, that the caller may list. */
export function listBuckets(ctx: Context, deps: MasterDeps): void {
  const identity = identityOf(ctx.req);
  if (!identity.grant?.rights.has('list')) authorize(identity, 'list', '/');
  const buckets: string[] = [];
  let from: Buffer | undefined = Buffer.from('/');
  // One live key per bucket: after the first, jump past the bucket's prefix. Unlinked keys, and
  // keys a DELETE has begun, are not in a listing, so they make no bucket either.
  while (from) {
    let next: Buffer | undefined;
    for (const [key, record] of deps.index.range(from)) {
      if (record.state !== 'live') continue;
      const slash = key.indexOf('/', 1);
      if (slash === -1) {
        next = Buffer.concat([Buffer.from(key), Buffer.from([0])]); // a key outside any bucket
        break;
      }
      const bucket = key.slice(1, slash);
      if (allows(identity.grant, 'list', `/${bucket}/`))
        buckets.push(element('Bucket', [element('Name', bucket), element('CreationDate', new Date(record.modified).toISOString())]));
      next = prefixEnd(Buffer.from(`/${bucket}/`));
      break;
    }
    from = next;
  }
  xmlResponse(ctx, 'ListAllMyBucketsResult', [
    element('Owner', [element('ID', 'mkv'), element('DisplayName', 'mkv')]),
    element('Buckets', buckets),
  ]);
}

/** HeadBucket: every bucket exists. */
export function headBucket(ctx: Context, bucket: string): void {
  authorize(identityOf(ctx.req), 'list', `/${bucket}/`);
  ctx.status = 200;
}

/** CreateBucket: nothing to create, a bucket is a key prefix. */
export function createBucket(ctx: Context, bucket: string): void {
  authorize(identityOf(ctx.req), 'write', `/${bucket}/`);
  ctx.status = 200;
  ctx.set('Location', `/${bucket}`);
  ctx.body = '';
}

/** DeleteBucket: 204 when no live key is in the bucket, 409 BucketNotEmpty otherwise. */
export function deleteBucket(ctx: Context, deps: MasterDeps, bucket: string): void {
  authorize(identityOf(ctx.req), 'delete', `/${bucket}/`);
  if (deps.index.list({ prefix: `/${bucket}/`, states: ['live'], limit: 1 }).keys.length > 0) {
    throw new MkvError('MKV_BUCKET_NOT_EMPTY', 'The bucket you tried to delete is not empty');
  }
  ctx.status = 204;
}

/** GetBucketLocation: the default region (an empty LocationConstraint means us-east-1). */
export function bucketLocation(ctx: Context, bucket: string): void {
  authorize(identityOf(ctx.req), 'list', `/${bucket}/`);
  xmlResponse(ctx, 'LocationConstraint', []);
}

/** GetBucketVersioning: versioning was never enabled. */
export function bucketVersioning(ctx: Context, bucket: string): void {
  authorize(identityOf(ctx.req), 'list', `/${bucket}/`);
  xmlResponse(ctx, 'VersioningConfiguration', []);
}
