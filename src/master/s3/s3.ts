// What S3's handlers read from a request alike: the attributes a write gives its value (its
// Content-Type, x-amz-meta-*, object headers), its version id, its copy source, its write
// conditions and rights, its XML document; and the XML answer they give.
import { parseVersionId } from './versions.js';
import { isUtf8 } from 'node:buffer';
import { authorize } from '../../auth/authenticate.js';
import { allows } from '../../auth/credentials.js';
import { MkvError } from '../../errors.js';
import { checkedKey, type Key } from '../../keys/key-limits.js';
import { readSmallBody } from '../../keys/slow-body.js';
import type { S3Value, StoreOptions } from '../../keys/store-value.js';
import type { Answer } from '../answer.js';
import type { MasterDeps } from '../deps.js';
import { requestBody } from '../request-body.js';
import { decodeKey } from '../request-key.js';
import { clientGoneOf, headerOf, type S3Call } from './call.js';
import { writeConditionOf } from './conditions.js';
import { document, element, MAX_XML_BYTES } from './xml.js';

/** The one owner S3 clients are shown of every bucket, object and upload: this store has no accounts. */
export const OWNER_ID = 'mkv';

/** An <Owner>'s, <Initiator>'s or <Grantee>'s <ID> and <DisplayName>: `name`, or the owner. */
export function person(name = OWNER_ID): string[] {
  return [element('ID', name), element('DisplayName', name)];
}

/** The object headers S3 keeps with a value and serves back on GET and HEAD, by lower-case name. */
export const OBJECT_HEADERS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'] as const;

/**
 * The object headers a PUT (or CreateMultipartUpload, a copy with REPLACE) gives its value.
 * Content-Encoding is kept without aws-chunked, which only frames the request's body.
 */
export function objectHeadersOf(call: S3Call): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of OBJECT_HEADERS) {
    let value = headerOf(call, name);
    if (name === 'content-encoding')
      value = value
        .split(',')
        .map((coding) => coding.trim())
        .filter((coding) => coding !== '' && coding.toLowerCase() !== 'aws-chunked')
        .join(', ');
    if (value === '') continue;
    if (value.length > 1024) throw new MkvError('MKV_BAD_REQUEST', `the ${name} header is longer than 1024 characters`);
    headers[name] = value;
  }
  return headers;
}

/** What a request gives the value it writes: its Content-Type, user metadata and object headers. */
export function valueAttributesOf(call: S3Call): Pick<S3Value, 'contentType' | 'metadata' | 'headers'> {
  return { contentType: contentTypeOf(call), metadata: metadataOf(call), headers: objectHeadersOf(call) };
}

/** The Content-Type a PUT gives its value, kept and served back; none: S3's default. */
export function contentTypeOf(call: S3Call): string | null {
  const type = headerOf(call, 'content-type');
  if (type === '') return null;
  if (type.length > 1024) throw new MkvError('MKV_BAD_REQUEST', 'the Content-Type is longer than 1024 characters');
  return type;
}

/** S3 keeps at most 2 KB of user metadata a value. */
const MAX_METADATA_BYTES = 2048;

/** The user metadata a PUT gives its value: its x-amz-meta-* headers, by lower-case name. */
export function metadataOf(call: S3Call): Record<string, string> {
  const metadata: Record<string, string> = {};
  let bytes = 0;
  for (const [name, value] of Object.entries(call.headers)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    // node:http reads a header one char a byte. A value whose bytes are UTF-8 (what botocore and
    // the JavaScript SDK send) is kept as the text they encode; any other as its bytes (latin-1).
    const raw = Array.isArray(value) ? value.join(',') : value;
    const sent = /[\x80-\xff]/.test(raw) ? Buffer.from(raw, 'latin1') : undefined;
    const text = sent && isUtf8(sent) ? sent.toString('utf8') : raw;
    metadata[name.slice('x-amz-meta-'.length)] = text;
    bytes += Buffer.byteLength(name) - 'x-amz-meta-'.length + Buffer.byteLength(text);
  }
  if (bytes > MAX_METADATA_BYTES)
    throw new MkvError(
      'MKV_METADATA_TOO_LARGE',
      `Your metadata headers exceed the maximum allowed metadata size: ${bytes} bytes of x-amz-meta-*, S3 allows ${MAX_METADATA_BYTES}`,
    );
  return metadata;
}

/**
 * Refuses a version other than the current one. No key has versions here (yet): its value is
 * its one version, "null", as S3 names the object of a bucket that never had versioning.
 */
export function checkVersionId(versionId: string | null | undefined): void {
  if (versionId !== undefined && versionId !== null && versionId !== 'null')
    throw new MkvError('MKV_BAD_QUERY', 'Invalid version id specified');
}

/** Whether the request may replace a value its key holds: that destroys it, so it needs the delete right as well as write. */
export function mayReplace(call: S3Call): boolean {
  return allows(call.identity.grant, 'delete', call.key);
}

/** How a write of the request's key goes: whether it may replace a value, its If-Match / If-None-Match, and whether its client is still there. */
export function writeOptionsOf(call: S3Call): Pick<StoreOptions, 'mayReplace' | 'condition' | 'clientGone'> {
  return { mayReplace: mayReplace(call), condition: writeConditionOf(call.headers), clientGone: clientGoneOf(call) };
}

/**
 * The key a copy reads (x-amz-copy-source: [/]bucket/key[?versionId=…], percent-encoded), once
 * the request may read it: CopyObject and UploadPartCopy alike.
 */
export function copySourceOf(call: S3Call): { key: Key; versionId: string | null } {
  const [path, query] = headerOf(call, 'x-amz-copy-source').split('?', 2) as [string, string | undefined];
  const checked = checkedKey(decodeKey(path.startsWith('/') ? path : `/${path}`));
  const versionId = new URLSearchParams(query ?? '').get('versionId');
  if (versionId !== null) parseVersionId(versionId);
  authorize(call.identity, 'read', checked);
  return { key: checked, versionId };
}

/**
 * A client's XML document (DeleteObjects, CompleteMultipartUpload): at most MAX_XML_BYTES, under
 * the body timeout, and checked as any body is (the sha256 it was signed with, its Content-MD5)
 * before anything is done with it.
 */
export async function readXmlBody(call: S3Call, deps: MasterDeps, options: { checksumHeaders?: boolean } = {}): Promise<string> {
  const tooLarge = () => new MkvError('MKV_BAD_XML', `the XML body is larger than ${MAX_XML_BYTES} bytes`);
  const { body } = requestBody(call.message, { allowEmpty: true, ...options });
  return (await readSmallBody(body, MAX_XML_BYTES, deps.config.bodyTimeoutMs, tooLarge)).toString('utf8');
}

/** 200 with an XML document of `root` holding `children`. */
export function xmlAnswer(root: string, children: string[], headers: Record<string, string> = {}): Answer {
  return { status: 200, headers, type: 'application/xml', body: document(root, children) };
}
