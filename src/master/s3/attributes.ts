// GetObjectAttributes (GET /b/k?attributes, x-amz-object-attributes: ETag, Checksum, ObjectParts,
// StorageClass, ObjectSize): what the key's record knows of its value, without reading a byte of it.
import { authorize } from '../../auth/authenticate.js';
import { MkvError } from '../../errors.js';
import type { Answer } from '../answer.js';
import type { MasterDeps } from '../deps.js';
import { headerOf, type S3Call } from './call.js';
import { xmlAnswer } from './s3.js';
import { recordToRead } from './versions.js';
import { element } from './xml.js';

const ATTRIBUTES = ['ETag', 'Checksum', 'ObjectParts', 'StorageClass', 'ObjectSize'];

function count(text: string, name: string, fallback: number): number {
  if (text === '') return fallback;
  if (!/^\d{1,10}$/.test(text)) throw new MkvError('MKV_BAD_QUERY', `${name} must be a non-negative integer`);
  return Number(text);
}

export function objectAttributes(deps: MasterDeps, call: S3Call): Answer {
  const { key } = call;
  authorize(call.identity, 'read', key);
  const asked = headerOf(call, 'x-amz-object-attributes')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  if (asked.length === 0) throw new MkvError('MKV_BAD_QUERY', 'x-amz-object-attributes names no attribute');
  const unknown = asked.find((name) => !ATTRIBUTES.includes(name));
  if (unknown !== undefined) throw new MkvError('MKV_BAD_QUERY', `Invalid attribute name specified: ${unknown}`);
  const maxParts = Math.min(count(headerOf(call, 'x-amz-max-parts'), 'x-amz-max-parts', 1000), 1000);
  const marker = count(headerOf(call, 'x-amz-part-number-marker'), 'x-amz-part-number-marker', 0);
  // ?versionId: a version --retain keeps (s3/versions.ts).
  const { record, versionId } = recordToRead(deps, key, call.query.get('versionId'));
  if (!record || record.state !== 'live') throw new MkvError('MKV_NOT_FOUND', 'The specified key does not exist.');
  const children: string[] = [];
  if (asked.includes('ETag')) children.push(element('ETag', record.etag ?? record.md5 ?? ''));
  if (asked.includes('Checksum') && record.checksum)
    children.push(
      element('Checksum', [
        element(`Checksum${record.checksum.algorithm.toUpperCase()}`, record.checksum.value),
        element('ChecksumType', record.checksum.type),
      ]),
    );
  if (asked.includes('ObjectParts') && record.parts.length > 0) {
    const numbered = record.parts.map((part, i) => ({ ...part, number: i + 1 })).filter((part) => part.number > marker);
    const page = numbered.slice(0, maxParts);
    const algorithm = record.checksum?.algorithm.toUpperCase();
    children.push(
      element('ObjectParts', [
        element('PartsCount', record.parts.length),
        element('PartNumberMarker', marker),
        element('NextPartNumberMarker', page.at(-1)?.number ?? marker),
        element('MaxParts', maxParts),
        element('IsTruncated', numbered.length > page.length),
        ...page.map((part) =>
          element('Part', [
            element('PartNumber', part.number),
            element('Size', part.size),
            ...(part.checksum !== null && algorithm ? [element(`Checksum${algorithm}`, part.checksum)] : []),
          ]),
        ),
      ]),
    );
  }
  if (asked.includes('StorageClass')) children.push(element('StorageClass', 'STANDARD'));
  if (asked.includes('ObjectSize')) children.push(element('ObjectSize', record.size ?? 0));
  return xmlAnswer('GetObjectAttributesResponse', children, {
    'Last-Modified': new Date(record.modified).toUTCString(),
    ...(versionId !== undefined ? { 'x-amz-version-id': versionId } : {}),
  });
}
