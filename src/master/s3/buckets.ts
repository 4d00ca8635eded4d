// Buckets, as S3 answers for them: bucket b is every key "/b/…", and it exists once created
// (the log's BucketCreated) or while it holds a live key (keys/buckets.ts). A bucket that does
// not exist is 404 NoSuchBucket for every request into it.
import { authorize } from '../../auth/authenticate.js';
import { allows } from '../../auth/credentials.js';
import { MkvError } from '../../errors.js';
import { createBucket as create, deleteBucket as remove, listBuckets as list, requireBucket } from '../../keys/buckets.js';
import type { Answer } from '../answer.js';
import type { MasterDeps } from '../deps.js';
import { headerOf, type S3Call } from './call.js';
import { childElements, element, escapeXml, parseXml } from './xml.js';
import { OWNER_ID, person, readXmlBody, xmlAnswer } from './s3.js';

/** The one owner of every bucket here (a single account): ListBuckets' and the ACLs' Owner ID. */

/** x-amz-expected-bucket-owner names another account than the buckets' owner: 403 AccessDenied, as S3. */
export function checkExpectedOwner(call: S3Call): void {
  const expected = headerOf(call, 'x-amz-expected-bucket-owner');
  if (expected !== '' && expected !== OWNER_ID) throw new MkvError('MKV_ACCESS_DENIED', 'the bucket is not owned by the expected owner');
}

function parseMaxBuckets(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 10_000)
    throw new MkvError('MKV_BAD_QUERY', `max-buckets must be an integer from 1 to 10000, not ${JSON.stringify(value)}`);
  return Number(value);
}

/**
 * ListBuckets (GET / of an S3 request): the buckets that exist and that the caller may list,
 * created ones (empty ones too) and those that hold a live key, with max-buckets,
 * continuation-token (the next bucket's name, base64url) and prefix.
 */
export function listBuckets(deps: MasterDeps, call: S3Call): Answer {
  const { identity, query } = call;
  if (!identity.grant?.rights.has('list')) authorize(identity, 'list', '/');
  const limit = parseMaxBuckets(query.get('max-buckets'));
  const token = query.get('continuation-token');
  let start: string | undefined;
  if (token !== null && token !== '') {
    start = Buffer.from(token, 'base64url').toString('utf8');
    if (Buffer.from(start, 'utf8').toString('base64url') !== token)
      throw new MkvError('MKV_BAD_QUERY', 'the continuation-token is not one this server gave');
  }
  const prefix = query.get('prefix') ?? '';
  const listing = list(deps.index, {
    prefix,
    ...(start !== undefined ? { start } : {}),
    ...(limit !== undefined ? { limit } : {}),
    visible: (name) => allows(identity.grant, 'list', `/${name}/`),
  });
  return xmlAnswer('ListAllMyBucketsResult', [
    element('Owner', person()),
    element(
      'Buckets',
      listing.buckets.map(({ name, created }) =>
        element('Bucket', [element('Name', name), element('CreationDate', new Date(created).toISOString())]),
      ),
    ),
    ...(listing.next !== undefined ? [element('ContinuationToken', Buffer.from(listing.next, 'utf8').toString('base64url'))] : []),
    ...(query.has('prefix') ? [element('Prefix', prefix)] : []),
  ]);
}

/** The caller may `right` the bucket, and it exists (else 404 NoSuchBucket). */
export function authorizeBucket(deps: MasterDeps, call: S3Call, right: 'list' | 'write' | 'read' | 'delete'): void {
  authorize(call.identity, right, `/${call.bucket}/`);
  requireBucket(deps.index, call.bucket);
}

/** HeadBucket: 200 when it exists, 404 when not. */
export function headBucket(deps: MasterDeps, call: S3Call): Answer {
  authorizeBucket(deps, call, 'list');
  return { status: 200, headers: { 'Content-Length': '0' } };
}

/** The LocationConstraint of a CreateBucketConfiguration body (null: no body, or none named). */
async function locationOf(deps: MasterDeps, call: S3Call): Promise<string | null> {
  const length = headerOf(call, 'content-length');
  if ((length === '' || length === '0') && headerOf(call, 'transfer-encoding') === '') return null;
  const xml = await readXmlBody(call, deps);
  if (xml.trim() === '') return null;
  const [constraint] = childElements(parseXml(xml, 'CreateBucketConfiguration'), 'LocationConstraint');
  const location = constraint?.text.trim() ?? '';
  if (location === '') return null;
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(location))
    throw new MkvError('MKV_BAD_XML', `${JSON.stringify(location.slice(0, 80))} is not a LocationConstraint`);
  return location;
}

/**
 * CreateBucket: 200, created or already there (S3 in us-east-1, to its owner); 400
 * InvalidBucketName. A LocationConstraint it names is kept for GetBucketLocation.
 */
export async function createBucket(deps: MasterDeps, call: S3Call): Promise<Answer> {
  const { bucket, identity } = call;
  authorize(identity, 'write', `/${bucket}/`);
  const location = await locationOf(deps, call);
  // Without --credentials every caller is the same one: buckets have no owner to tell apart.
  const owner = deps.credentials ? identity.name : null;
  await create(deps, bucket, call.cause, { location, owner });
  return { status: 200, headers: { Location: `/${bucket}` }, body: '' };
}

/** DeleteBucket: 204, its multipart uploads aborted (and completed ones forgotten); 404 NoSuchBucket when it does not exist; 409 BucketNotEmpty while it holds a live key. */
export async function deleteBucket(deps: MasterDeps, call: S3Call): Promise<Answer> {
  const { bucket } = call;
  authorize(call.identity, 'delete', `/${bucket}/`);
  await remove(deps, bucket, call.cause);
  // As S3 does, the bucket's multipart uploads go with it.
  const uploads = deps.uploads.removeUnder(`/${bucket}/`);
  if (uploads > 0) deps.logger.info('DeleteBucket aborted its multipart uploads', { bucket, uploads });
  return { status: 204 };
}

/** GetBucketLocation: the LocationConstraint it was created with, else none (an empty one means us-east-1). */
export function bucketLocation(deps: MasterDeps, call: S3Call): Answer {
  authorizeBucket(deps, call, 'list');
  const location = deps.index.bucket(call.bucket)?.location ?? null;
  return xmlAnswer('LocationConstraint', location === null ? [] : [escapeXml(location)]);
}

/**
 * GetBucketVersioning: Enabled while the server keeps every version (--retain), for every
 * bucket; never enabled otherwise (S3's empty configuration).
 */
export function bucketVersioning(deps: MasterDeps, call: S3Call): Answer {
  authorizeBucket(deps, call, 'list');
  return xmlAnswer('VersioningConfiguration', deps.config.retainMs > 0 ? [element('Status', 'Enabled')] : []);
}

/**
 * PutBucketVersioning: versioning here is the server's --retain, for every bucket. Asking for
 * the state it is in answers 200 (Enabled with --retain; Suspended, as never enabled, without);
 * anything else it cannot do is refused (501), never dropped: MFA delete, turning it on or off
 * for one bucket.
 */
export async function putBucketVersioning(deps: MasterDeps, call: S3Call): Promise<Answer> {
  authorizeBucket(deps, call, 'write');
  const configuration = parseXml(await readXmlBody(call, deps), 'VersioningConfiguration');
  const [status] = childElements(configuration, 'Status');
  const [mfa] = childElements(configuration, 'MfaDelete');
  const asked = status?.text.trim() ?? '';
  if (asked !== 'Enabled' && asked !== 'Suspended' && asked !== '')
    throw new MkvError('MKV_BAD_XML', `Status ${JSON.stringify(asked.slice(0, 32))} is neither Enabled nor Suspended`);
  if (mfa !== undefined && mfa.text.trim() !== 'Disabled') throw new MkvError('MKV_UNKNOWN_OPERATION', 'MFA delete is not supported');
  const enabled = deps.config.retainMs > 0;
  if ((asked === 'Enabled' && !enabled) || (asked === 'Suspended' && enabled))
    throw new MkvError(
      'MKV_UNKNOWN_OPERATION',
      enabled
        ? "versioning is the server's --retain, for every bucket: it cannot be suspended for one"
        : "versioning is the server's --retain, for every bucket: start the server with --retain to keep every version",
    );
  return { status: 200, headers: { 'Content-Length': '0' } };
}
