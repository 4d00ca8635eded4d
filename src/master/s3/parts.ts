// A value's parts, as a multipart upload left them (its record keeps each part's size and
// checksum): which bytes GET or HEAD ?partNumber=N answer with.
import { MkvError } from '../../errors.js';
import type { Part } from '../../events/event.js';
import type { KeyRecord } from '../../index/evolve.js';

const MAX_PART_NUMBER = 10_000;

/** A part number from a query or a document: an integer from 1 to 10,000, else InvalidArgument. */
export function partNumberOf(text: string | null): number {
  if (text === null || !/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > MAX_PART_NUMBER)
    throw new MkvError('MKV_BAD_QUERY', `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`);
  return Number(text);
}

/**
 * GET or HEAD ?partNumber=N of a value: the bytes of its part N (a multipart upload's), or the
 * whole value as its one part; a part it does not have is InvalidPart (as ceph's s3-tests hold).
 * Undefined: no partNumber asked.
 */
export function partOf(
  record: KeyRecord,
  query: URLSearchParams,
  rangeHeader: string,
): { number: number; count: number; start: number; end: number; part: Part | undefined } | undefined {
  if (!query.has('partNumber')) return undefined;
  const number = partNumberOf(query.get('partNumber'));
  if (rangeHeader !== '') throw new MkvError('MKV_BAD_REQUEST', 'Cannot specify both Range header and partNumber query parameter');
  const size = record.size ?? 0;
  if (record.parts.length === 0) {
    if (number !== 1) throw new MkvError('MKV_INVALID_PART', `The value has one part; part ${number} does not exist`);
    return { number, count: 1, start: 0, end: size - 1, part: undefined };
  }
  if (number > record.parts.length)
    throw new MkvError('MKV_INVALID_PART', `The value has ${record.parts.length} parts; part ${number} does not exist`);
  const start = record.parts.slice(0, number - 1).reduce((sum, part) => sum + part.size, 0);
  const part = record.parts[number - 1]!;
  return { number, count: record.parts.length, start, end: start + part.size - 1, part };
}
