// Which S3 operation a request is, path style: "/" the service, "/b" or "/b/" bucket b,
// "/b/k" the object k of bucket b (the mkv key "/b/k"), then the method and the query's
// sub-resource. One table, so a request that is none of them is NotImplemented, never a guess.
//
//   GET    /                 ListBuckets
//   GET    /b ?list-type=2   ListObjectsV2     ?uploads ListMultipartUploads   ?location  ?versioning
//   GET    /b                ListObjects (V1)  HEAD /b HeadBucket   PUT /b CreateBucket   DELETE /b DeleteBucket
//   POST   /b?delete         DeleteObjects
//   GET    /b/k, HEAD        GetObject, HeadObject (the bytes, through the master)
//   PUT    /b/k              PutObject         ?partNumber&uploadId UploadPart
//   POST   /b/k ?uploads     CreateMultipartUpload   ?uploadId CompleteMultipartUpload
//   DELETE /b/k              DeleteObject      ?uploadId AbortMultipartUpload
import type { Context } from 'koa';
import { MkvError } from '../../errors.js';
import { checkKeyFits } from '../../keys/key-limits.js';
import type { MasterDeps } from '../deps.js';
import { decodeKey } from '../request-key.js';
import { bucketLocation, bucketVersioning, createBucket, deleteBucket, headBucket, listBuckets } from './buckets.js';
import { listObjectVersions, listObjectsV1, listObjectsV2 } from './list.js';
import { abortUpload, completeUpload, createUpload, listUploads, uploadPart } from './multipart.js';
import { deleteObject, deleteObjects, getObjectDirect, putObject, splitBucket } from './s3.js';

/** Bucket sub-resources S3 has and this store does not. */
const UNSUPPORTED = [
  'acl',
  'policy',
  'cors',
  'lifecycle',
  'tagging',
  'website',
  'logging',
  'notification',
  'replication',
  'encryption',
  'object-lock',
  'accelerate',
  'requestPayment',
  'ownershipControls',
  'publicAccessBlock',
  'intelligent-tiering',
  'analytics',
  'metrics',
  'inventory',
  'retention',
  'legal-hold',
  'torrent',
  'select',
  'restore',
  'attributes',
];

function notImplemented(ctx: Context): MkvError {
  return new MkvError('MKV_UNKNOWN_OPERATION', `${ctx.method} ${ctx.path}?${ctx.querystring} is not an S3 operation this store implements`);
}

export async function answerS3(ctx: Context, deps: MasterDeps): Promise<void> {
  const query = new URLSearchParams(ctx.querystring);
  const method = ctx.method;
  const key = decodeKey(ctx.path);
  if (key === '/') {
    if (method === 'GET' || method === 'HEAD') return listBuckets(ctx, deps);
    throw notImplemented(ctx);
  }
  const { bucket, objectKey } = splitBucket(key);
  if (UNSUPPORTED.some((name) => query.has(name))) throw notImplemented(ctx);
  if (objectKey === '') {
    if (method === 'GET') {
      // A sub-resource first, as S3 routes: it is what a Signature Version 2 signs, list-type is not.
      if (query.has('uploads')) return listUploads(ctx, deps, bucket, query);
      if (query.has('location')) return bucketLocation(ctx, bucket);
      if (query.has('versioning')) return bucketVersioning(ctx, bucket);
      if (query.has('versions')) return listObjectVersions(ctx, deps, bucket, query);
      if (query.get('list-type') === '2') return listObjectsV2(ctx, deps, bucket, query);
      return listObjectsV1(ctx, deps, bucket, query);
    }
    if (method === 'HEAD') return headBucket(ctx, bucket);
    if (method === 'PUT' && ctx.querystring === '') return createBucket(ctx, bucket);
    if (method === 'DELETE' && ctx.querystring === '') return deleteBucket(ctx, deps, bucket);
    if (method === 'POST' && query.has('delete')) return deleteObjects(ctx, deps, bucket);
    throw notImplemented(ctx);
  }
  checkKeyFits(key);
  switch (method) {
    case 'GET':
    case 'HEAD':
      if (query.has('uploadId')) throw notImplemented(ctx); // ListParts
      return getObjectDirect(ctx, deps, key);
    case 'PUT':
      return query.has('uploadId') ? uploadPart(ctx, deps, key, query) : putObject(ctx, deps, key);
    case 'POST':
      if (query.has('uploads')) return createUpload(ctx, deps, key);
      if (query.has('uploadId')) return completeUpload(ctx, deps, key, query);
      throw notImplemented(ctx);
    case 'DELETE':
      return query.has('uploadId') ? abortUpload(ctx, deps, key, query) : deleteObject(ctx, deps, key);
    default:
      throw notImplemented(ctx);
  }
}
