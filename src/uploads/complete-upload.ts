// Completing a multipart upload: the parts a client names, checked as S3 checks them, streamed in
// order from disk to every replica as one value (keys/store-value.ts), whose record keeps each
// part's size and checksum; then the upload is marked completed, its parts gone.
//
//   parts named ─ chosenParts (order, ETags, checksums, sizes) ─▶ part files, in order
//     ─ (FULL_OBJECT: a CRC of every byte, checked against one stated) ─▶ replicas
//     ─▶ ObjectCommitted with the multipart ETag ─▶ completed.json
//
// A completion repeated while the first is under way waits for it; repeated after, it answers
// as the first did while the key holds that upload's value.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { checksumCheck, type DigestCheck } from '../auth/body-check.js';
import { compositeChecksum, digesting, type ChecksumAlgorithm } from '../checksums.js';
import { MkvError } from '../errors.js';
import type { Cause, Checksum, Part as ValuePart } from '../events/event.js';
import type { KeyDeps } from '../keys/deps.js';
import type { Key } from '../keys/key-limits.js';
import { storeValue, type StoreOptions } from '../keys/store-value.js';
import { etagOf } from '../keys/write-condition.js';
import type { Completion, StoredPart, UploadStore } from './upload-store.js';

/** S3's smallest part, but for the last: a smaller one is EntityTooSmall when the upload completes. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;

/** A part CompleteMultipartUpload names: its number, ETag and the checksums it says the part has. */
export interface RequestedPart {
  number: number;
  etag: string;
  checksums: Array<{ algorithm: ChecksumAlgorithm; value: string }>;
}

/** What a completion asks, beyond the parts: the value's size and checksum as the client states them. */
export interface CompletionAsk {
  uploadId: string;
  key: Key;
  parts: RequestedPart[];
  /** x-amz-mp-object-size: the size the client expects the value to have. */
  expectedSize?: number;
  /** The value's checksum as a header states it (x-amz-checksum-ALGORITHM). */
  stated?: { name: string; value: string };
}

export type UploadDeps = KeyDeps & { uploads: UploadStore };

/**
 * The stored parts the request names, checked as S3 does: ascending, each uploaded with that
 * ETag and those checksums (InvalidPart), each but the last at least 5 MiB (EntityTooSmall).
 */
export function chosenParts(requested: RequestedPart[], stored: Map<number, StoredPart>): StoredPart[] {
  const chosen: StoredPart[] = [];
  for (let i = 0; i < requested.length; i++) {
    const { number } = requested[i]!;
    if (!Number.isInteger(number) || number <= (chosen.at(-1)?.number ?? 0))
      throw new MkvError('MKV_INVALID_PART', 'the parts must be listed in ascending order, each once');
    // A part named twice in a row (a client that uploaded it twice at once, and listed both
    // answers) counts once, by the answer of the upload that finished last: the part stored.
    // ceph's RGW takes it so (s3-tests' test_multipart_resend_first_finishes_last).
    let same = i;
    while (requested[same + 1]?.number === number) same++;
    const named = requested.slice(i, same + 1);
    i = same;
    const part = stored.get(number);
    const match = named.find(({ etag }) => part?.md5 === etag);
    if (!part || !match) throw new MkvError('MKV_INVALID_PART', `part ${number} was not uploaded with ETag ${named[0]!.etag}`);
    for (const { algorithm, value } of match.checksums) {
      if (part.checksum?.algorithm !== algorithm || part.checksum.value !== value)
        throw new MkvError('MKV_INVALID_PART', `part ${number} was not uploaded with the ${algorithm.toUpperCase()} checksum ${value}`);
    }
    chosen.push(part);
  }
  chosen.slice(0, -1).forEach((part) => {
    if (part.size < MIN_PART_BYTES)
      throw new MkvError(
        'MKV_ENTITY_TOO_SMALL',
        `Your proposed upload is smaller than the minimum allowed size: part ${part.number} is ${part.size} bytes, and every part but the last must be at least ${MIN_PART_BYTES}`,
      );
  });
  return chosen;
}

/** S3's ETag of a multipart value: the md5 of its parts' md5s, then "-" and the number of parts. */
export function multipartEtag(parts: readonly Pick<StoredPart, 'md5'>[]): string {
  const partsMd5 = createHash('md5');
  for (const part of parts) partsMd5.update(Buffer.from(part.md5, 'hex'));
  return `${partsMd5.digest('hex')}-${parts.length}`;
}

function badDigest(algorithm: string): MkvError {
  return new MkvError('MKV_BAD_DIGEST', `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`);
}

/** The completions under way in this process, by upload id: one that arrives meanwhile waits for it, then answers as it did. */
const completing = new Map<string, Promise<Completion>>();

/** Completes an upload (or answers as its completion did); the value's ETag (unquoted) and checksum. */
export async function completeUpload(
  deps: UploadDeps,
  ask: CompletionAsk,
  cause: Cause,
  options: Pick<StoreOptions, 'mayReplace' | 'condition' | 'clientGone'> = {},
): Promise<Completion> {
  const earlier = completing.get(ask.uploadId);
  if (earlier) await earlier.catch(() => undefined);
  const completion = completeOnce(deps, ask, cause, options);
  completing.set(ask.uploadId, completion);
  try {
    return await completion;
  } finally {
    if (completing.get(ask.uploadId) === completion) completing.delete(ask.uploadId);
  }
}

async function completeOnce(
  deps: UploadDeps,
  ask: CompletionAsk,
  cause: Cause,
  options: Pick<StoreOptions, 'mayReplace' | 'condition' | 'clientGone'>,
): Promise<Completion> {
  const { uploadId, key, stated } = ask;
  const completed = deps.uploads.completion(uploadId, key);
  if (completed) return completedBefore(deps, ask, completed);
  const upload = deps.uploads.get(uploadId, key);
  const parts = chosenParts(ask.parts, new Map(deps.uploads.parts(uploadId).map((part) => [part.number, part])));
  const length = parts.reduce((sum, part) => sum + part.size, 0);
  if (ask.expectedSize !== undefined && ask.expectedSize !== length)
    throw new MkvError('MKV_BAD_REQUEST', `x-amz-mp-object-size is ${ask.expectedSize}, but the parts named hold ${length} bytes`);
  const etag = multipartEtag(parts);
  const { checksumAlgorithm: algorithm, checksumType: type } = upload;
  if (stated && (!algorithm || stated.name !== `x-amz-checksum-${algorithm}`))
    throw new MkvError('MKV_BAD_REQUEST', `${stated.name} is not the checksum this upload was created with (${algorithm ?? 'none'})`);
  const concatenated = deps.uploads.concatenate(
    uploadId,
    parts.map((part) => part.number),
  );
  let written;
  try {
    let body: Readable = concatenated;
    let checksum: Checksum | null | undefined = null;
    let fullObject: (() => Checksum) | undefined;
    if (algorithm && type === 'COMPOSITE') {
      checksum = {
        algorithm,
        value: compositeChecksum(
          algorithm,
          parts.map((part) => part.checksum!.value),
        ),
        type,
      };
      if (stated && stated.value !== checksum.value) throw badDigest(algorithm);
    } else if (algorithm && type === 'FULL_OBJECT') {
      // A CRC of every byte, computed as the parts stream to the replicas; one stated is checked
      // there, the last bytes held back until it matches (body-check.ts), so a wrong one stores nothing.
      checksum = undefined;
      const computed = digesting(body, algorithm);
      body = computed.body;
      if (stated) {
        let check: DigestCheck;
        try {
          check = checksumCheck(stated.name, stated.value);
        } catch {
          throw badDigest(algorithm);
        }
        body.on('error', (error) => check.destroy(error));
        body = body.pipe(check);
      }
      fullObject = () => ({ algorithm, value: computed.value(), type });
    }
    const valueParts: ValuePart[] = parts.map((part) => ({
      size: part.size,
      etag: part.md5,
      checksum: algorithm && part.checksum?.algorithm === algorithm ? part.checksum.value : null,
    }));
    written = await storeValue(deps, key, { body, length, ...(fullObject ? { checksum: fullObject } : {}) }, cause, {
      ...options,
      s3: {
        contentType: upload.contentType,
        metadata: upload.metadata,
        headers: upload.headers,
        etag,
        ...(checksum !== undefined ? { checksum } : {}),
        parts: valueParts,
      },
    });
  } catch (error) {
    // Refused before the parts were read whole: their files are let go, not left open.
    concatenated.destroy();
    throw error;
  }
  const completion = { etag, checksum: written.checksum, seq: written.seq };
  deps.uploads.complete(uploadId, completion);
  return completion;
}

/**
 * An upload already completed: S3 answers as it did the first time while the key holds that
 * upload's value and the same parts are named; after that, as for any upload that is gone.
 */
function completedBefore(deps: UploadDeps, ask: CompletionAsk, completed: Completion): Completion {
  const record = deps.index.get(ask.key);
  if (!record || record.state !== 'live' || etagOf(record) !== `"${completed.etag}"`)
    throw new MkvError('MKV_NO_SUCH_UPLOAD', 'no such upload (it was completed, and the key holds another value since)');
  const same = ask.parts.length === record.parts.length && ask.parts.every((part, i) => part.etag === record.parts[i]!.etag);
  if (!same) throw new MkvError('MKV_NO_SUCH_UPLOAD', 'no such upload (it was completed with other parts)');
  return completed;
}
