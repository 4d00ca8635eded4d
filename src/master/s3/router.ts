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
import { authorize } from '../../auth/authenticate.js';
import { checksumAlgorithmOf } from '../../auth/body-check.js';
import { MkvError } from '../../errors.js';
import { requireBucket } from '../../keys/buckets.js';
import { applyAnswer, type Answer } from '../answer.js';
import type { MasterDeps } from '../deps.js';
import {
  bucketLocation,
  bucketVersioning,
  checkExpectedOwner,
  createBucket,
  deleteBucket,
  headBucket,
  listBuckets,
  putBucketVersioning,
} from './buckets.js';
import { headerOf, s3CallOf, type S3Call } from './call.js';
import { listObjectVersions, listObjectsV1, listObjectsV2 } from './list.js';
import { objectAttributes } from './attributes.js';
import { tagging } from './tagging.js';
import { abortUpload, completeUpload, createUpload, listParts, listUploads, uploadPart } from './multipart.js';
import { aclOf, deleteObject, deleteObjects, getObject, putObject } from './objects.js';

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
  // Conditions on size and times: a DeleteObject's are checked (objects.ts), any other never taken for met.
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

const DELETE_CONDITIONS = /^x-amz-if-match-(last-modified-time|size)$/;

function isDeleteObject(call: S3Call): boolean {
  return call.method === 'DELETE' && call.objectKey !== '' && !call.query.has('uploadId') && !call.query.has('tagging');
}

/** Refuses a request whose headers ask for something this store does not do (UNSUPPORTED_HEADERS). */
function refuseUnsupportedHeaders(call: S3Call): void {
  for (const name in call.headers) {
    if (!name.startsWith('x-amz-')) continue;
    if (name === 'x-amz-sdk-checksum-algorithm' || name === 'x-amz-checksum-algorithm') checksumAlgorithmOf(headerOf(call, name));
    if (DELETE_CONDITIONS.test(name) && isDeleteObject(call)) continue;
    for (const [pattern, allowed, what] of UNSUPPORTED_HEADERS) {
      if (!pattern.test(name) || (allowed && allowed.test(headerOf(call, name).trim()))) continue;
      throw new MkvError('MKV_UNKNOWN_OPERATION', `${what} ${what.endsWith('s') ? 'are' : 'is'} not offered by this store (${name})`);
    }
  }
}

function notImplemented(call: S3Call): MkvError {
  return new MkvError(
    'MKV_UNKNOWN_OPERATION',
    `${call.method} ${call.path}?${call.querystring} is not an S3 operation this store implements`,
  );
}

/** Answers an S3 request on Koa's context: the one place the S3 half writes a response. */
export async function answerS3(ctx: Context, deps: MasterDeps): Promise<void> {
  applyAnswer(ctx, await routeS3(deps, s3CallOf(ctx)));
}

/** The S3 operation a call is, and its answer. */
export async function routeS3(deps: MasterDeps, call: S3Call): Promise<Answer> {
  const { method, query, key, bucket, objectKey } = call;
  if (key === '/') {
    if (method === 'GET' || method === 'HEAD') return listBuckets(deps, call);
    throw notImplemented(call);
  }
  if (UNSUPPORTED.some((name) => query.has(name))) throw notImplemented(call);
  refuseUnsupportedHeaders(call);
  checkExpectedOwner(call);
  if (query.has('tagging')) return tagging(deps, call);
  if (query.has('acl')) {
    // Reading an ACL is answered (the owner may do everything; the credentials file says who is);
    // setting one is refused unless it grants no one else anything.
    if (method === 'GET') {
      requireBucket(deps.index, bucket);
      return aclOf(call);
    }
    const length = headerOf(call, 'content-length');
    if (method !== 'PUT' || headerOf(call, 'x-amz-acl') === '' || (length !== '' && length !== '0')) throw notImplemented(call);
    // A canned ACL that grants no one else anything (refuseUnsupportedHeaders let it by) changes nothing.
    authorize(call.identity, 'write', objectKey === '' ? `/${bucket}/` : key);
    requireBucket(deps.index, bucket);
    return { status: 200, body: '' };
  }
  if (objectKey === '') return routeBucket(deps, call);
  // Into a bucket that exists, else 404 NoSuchBucket (the caller was admitted to do what it asks
  // there: handler.ts). An upload begun in a bucket deleted since can still be aborted.
  if (!(method === 'DELETE' && query.has('uploadId'))) requireBucket(deps.index, bucket);
  switch (method) {
    case 'GET':
    case 'HEAD':
      if (query.has('uploadId') || query.has('attributes')) {
        if (method === 'HEAD') throw notImplemented(call);
        return query.has('uploadId') ? listParts(deps, call) : objectAttributes(deps, call);
      }
      return getObject(deps, call);
    case 'PUT':
      return query.has('uploadId') ? uploadPart(deps, call) : putObject(deps, call);
    case 'POST':
      if (query.has('uploads')) return createUpload(deps, call);
      if (query.has('uploadId')) return completeUpload(deps, call);
      throw notImplemented(call);
    case 'DELETE':
      return query.has('uploadId') ? abortUpload(deps, call) : deleteObject(deps, call);
    default:
      throw notImplemented(call);
  }
}

/** A request of a bucket itself ("/b", "/b/"). */
function routeBucket(deps: MasterDeps, call: S3Call): Answer | Promise<Answer> {
  const { method, query, bucket } = call;
  if (method === 'GET') {
    requireBucket(deps.index, bucket);
    // A sub-resource first, as S3 routes: it is what a Signature Version 2 signs, list-type is not.
    if (query.has('uploads')) return listUploads(deps, call);
    if (query.has('location')) return bucketLocation(deps, call);
    if (query.has('versioning')) return bucketVersioning(deps, call);
    if (query.has('versions')) return listObjectVersions(deps, call);
    if (query.get('list-type') === '2') return listObjectsV2(deps, call);
    return listObjectsV1(deps, call);
  }
  if (method === 'HEAD') return headBucket(deps, call);
  if (method === 'PUT' && call.querystring === '') return createBucket(deps, call);
  if (method === 'PUT' && query.has('versioning')) {
    requireBucket(deps.index, bucket);
    return putBucketVersioning(deps, call);
  }
  if (method === 'DELETE' && call.querystring === '') return deleteBucket(deps, call);
  if (method === 'POST' && query.has('delete')) {
    requireBucket(deps.index, bucket);
    return deleteObjects(deps, call);
  }
  throw notImplemented(call);
}
