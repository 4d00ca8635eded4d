// Which S3 operation a request is, path style: "/" the service, "/b" or "/b/" bucket b,
// "/b/k" the object k of bucket b (the mkv key "/b/k"), then the method and the query's
// sub-resource. One table, so a request that is none of them is NotImplemented, never a guess.
//
//   GET    /                 ListBuckets
//   GET    /b ?list-type=2   ListObjectsV2     ?uploads ListMultipartUploads   ?location  ?versioning
//   GET    /b                ListObjects (V1)  HEAD /b HeadBucket   PUT /b CreateBucket   DELETE /b DeleteBucket
//   POST   /b?delete         DeleteObjects
//   GET    /b/k, HEAD        GetObject, HeadObject (the bytes, through the master)
//                            ?partNumber a part of it   ?uploadId ListParts   ?attributes GetObjectAttributes
//   PUT    /b/k              PutObject         ?partNumber&uploadId UploadPart (UploadPartCopy with x-amz-copy-source)
//   POST   /b/k ?uploads     CreateMultipartUpload   ?uploadId CompleteMultipartUpload
//   DELETE /b/k              DeleteObject      ?uploadId AbortMultipartUpload
//   ?tagging on /b or /b/k   read as no tags, PUT refused (tagging.ts)
import type { Context } from 'koa';
import { authorize, identityOf } from '../../auth/authenticate.js';
import { MkvError } from '../../errors.js';
import { checkKeyFits } from '../../keys/key-limits.js';
import { checksumAlgorithmOf } from '../../auth/body-check.js';
import type { MasterDeps } from '../deps.js';
import { decodeKey } from '../request-key.js';
import { requireBucket } from '../../keys/buckets.js';
import { bucketLocation, bucketVersioning, checkExpectedOwner, createBucket, deleteBucket, headBucket, listBuckets } from './buckets.js';
import { listObjectVersions, listObjectsV1, listObjectsV2 } from './list.js';
import { objectAttributes } from './attributes.js';
import { tagging } from './tagging.js';
import { abortUpload, completeUpload, createUpload, listParts, listUploads, uploadPart } from './multipart.js';
import { aclOf, deleteObject, deleteObjects, getObjectDirect, putObject, splitBucket } from './s3.js';

/** Bucket sub-resources S3 has and this store does not. */
const UNSUPPORTED = [
  'policy',
  'cors',
  'lifecycle',
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
  'renameObject',
];

/**
 * Headers that ask for what this store does not do: refused (501 NotImplemented), never taken and
 * dropped, so a client never believes its value is encrypted, locked, tagged, public or kept
 * in another storage class. Name → the values that ask for nothing more than this store does.
 */
const UNSUPPORTED_HEADERS: ReadonlyArray<[RegExp, RegExp | undefined, string]> = [
  [/^x-amz-server-side-encryption/, undefined, 'server-side encryption'],
  [/^x-amz-copy-source-server-side-encryption/, undefined, 'server-side encryption'],
  [/^x-amz-object-lock-/, undefined, 'object lock (retention, legal hold)'],
  [/^x-amz-bucket-object-lock-enabled$/, /^false$/i, 'object lock (retention, legal hold)'],
  [/^x-amz-write-offset-bytes$/, undefined, 'appends to an object'],
  // Conditions only S3 Express directory buckets have: never taken for met.
  [/^x-amz-if-match-(last-modified-time|size|initiated-time)$/, undefined, 'conditions on size and times'],
  [/^x-amz-tagging$/, undefined, 'tagging'],
  [/^x-amz-tagging-directive$/, /^COPY$/i, 'tagging'],
  [/^x-amz-storage-class$/, /^STANDARD$/, 'storage classes other than STANDARD'],
  [/^x-amz-website-redirect-location$/, undefined, 'website redirects'],
  // Who may do what is the credentials file's: an ACL that grants no one else anything says no more.
  [/^x-amz-acl$/, /^(private|bucket-owner-full-control|bucket-owner-read)$/, 'ACLs that grant access'],
  [/^x-amz-grant-/, undefined, 'ACLs that grant access'],
  // Who owns what an ACL would say: every value is its bucket's owner's here, as S3's default has it.
  [/^x-amz-object-ownership$/, /^BucketOwnerEnforced$/, 'ACLs that grant access'],
  [/^x-amz-mfa$/, undefined, 'MFA delete'],
];

/** Refuses a request whose headers ask for something this store does not do (UNSUPPORTED_HEADERS). */
function refuseUnsupportedHeaders(ctx: Context): void {
  for (const name in ctx.req.headers) {
    if (!name.startsWith('x-amz-')) continue;
    if (name === 'x-amz-sdk-checksum-algorithm' || name === 'x-amz-checksum-algorithm') checksumAlgorithmOf(ctx.get(name));
    for (const [pattern, allowed, what] of UNSUPPORTED_HEADERS) {
      if (!pattern.test(name) || (allowed && allowed.test(ctx.get(name).trim()))) continue;
      throw new MkvError('MKV_UNKNOWN_OPERATION', `${what} ${what.endsWith('s') ? 'are' : 'is'} not offered by this store (${name})`);
    }
  }
}

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
  refuseUnsupportedHeaders(ctx);
  checkExpectedOwner(ctx);
  // An object's key is checked once, here: the handlers below take it as it fits.
  if (objectKey !== '') checkKeyFits(key);
  if (query.has('tagging')) return tagging(ctx, deps, bucket, objectKey);
  if (query.has('acl')) {
    // Reading an ACL is answered (the owner may do everything; the credentials file says who is);
    // setting one is refused unless it grants no one else anything.
    if (method === 'GET') {
      requireBucket(deps.index, bucket);
      return aclOf(ctx, bucket, objectKey === '' ? 'list' : 'read');
    }
    const document = ctx.get('content-length') !== '' && ctx.get('content-length') !== '0';
    if (method !== 'PUT' || ctx.get('x-amz-acl') === '' || document) throw notImplemented(ctx);
    // A canned ACL that grants no one else anything (refuseUnsupportedHeaders let it by) changes nothing.
    authorize(identityOf(ctx.req), 'write', objectKey === '' ? `/${bucket}/` : key);
    requireBucket(deps.index, bucket);
    ctx.status = 200;
    ctx.body = '';
    return;
  }
  if (objectKey === '') {
    if (method === 'GET') {
      requireBucket(deps.index, bucket);
      // A sub-resource first, as S3 routes: it is what a Signature Version 2 signs, list-type is not.
      if (query.has('uploads')) return listUploads(ctx, deps, bucket, query);
      if (query.has('location')) return bucketLocation(ctx, deps, bucket);
      if (query.has('versioning')) return bucketVersioning(ctx, deps, bucket);
      if (query.has('versions')) return listObjectVersions(ctx, deps, bucket, query);
      if (query.get('list-type') === '2') return listObjectsV2(ctx, deps, bucket, query);
      return listObjectsV1(ctx, deps, bucket, query);
    }
    if (method === 'HEAD') return headBucket(ctx, deps, bucket);
    if (method === 'PUT' && ctx.querystring === '') return createBucket(ctx, deps, bucket);
    if (method === 'DELETE' && ctx.querystring === '') return deleteBucket(ctx, deps, bucket);
    if (method === 'POST' && query.has('delete')) {
      requireBucket(deps.index, bucket);
      return deleteObjects(ctx, deps, bucket);
    }
    throw notImplemented(ctx);
  }
  // Into a bucket that exists, else 404 NoSuchBucket (the caller was admitted to do what it asks
  // there: handler.ts). An upload begun in a bucket deleted since can still be aborted.
  if (!(method === 'DELETE' && query.has('uploadId'))) requireBucket(deps.index, bucket);
  switch (method) {
    case 'GET':
    case 'HEAD':
      if (query.has('uploadId')) {
        if (method === 'HEAD') throw notImplemented(ctx);
        return listParts(ctx, deps, key, query);
      }
      if (query.has('attributes')) {
        if (method === 'HEAD') throw notImplemented(ctx);
        return objectAttributes(ctx, deps, key, query);
      }
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
