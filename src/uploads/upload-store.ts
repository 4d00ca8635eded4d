// Multipart uploads on disk, under the master's data directory (so they survive a restart and
// sit on a disk the operator chose, not /tmp):
//
//   <db>/uploads/<uploadId>/upload.json     { key, initiated, initiator, the value's headers, checksum algorithm and type }
//   <db>/uploads/<uploadId>/part-00001      the part's bytes (written aside, fsync'd, renamed)
//   <db>/uploads/<uploadId>/part-00001.json { size, md5, checksum, modified }
//   <db>/uploads/<uploadId>/completed.json  { etag, checksum }: completed (its parts are gone), so
//                                           that a repeated CompleteMultipartUpload answers as the
//                                           first did; removed with the directory, as an abandoned
//                                           upload is (mkv uploads --abort-older-than)
import { createHash, randomBytes } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDigest, type ChecksumAlgorithm } from '../checksums.js';
import { MkvError } from '../errors.js';
import type { Checksum } from '../events/event.js';
import { deadBody, watchBodyRate } from '../keys/slow-body.js';
import type { ValueSource } from '../keys/store-value.js';

export interface Upload {
  uploadId: string;
  key: string;
  initiated: string;
  /** The Content-Type, user metadata and object headers CreateMultipartUpload gave the value. */
  contentType: string | null;
  metadata: Record<string, string>;
  headers: Record<string, string>;
  /** Who began it (the access key, or "anonymous"): its Initiator and Owner. */
  initiator: string;
  /** The checksum CreateMultipartUpload asked each part to have (x-amz-checksum-algorithm), and how the value's is formed from them. */
  checksumAlgorithm: ChecksumAlgorithm | null;
  checksumType: 'COMPOSITE' | 'FULL_OBJECT' | null;
}

/** What an upload's value, its parts and headers, is given when it begins. */
export type UploadValue = Pick<Upload, 'contentType' | 'metadata' | 'headers' | 'initiator' | 'checksumAlgorithm' | 'checksumType'>;

export interface StoredPart {
  number: number;
  size: number;
  md5: string;
  /** The part's checksum (base64): of the upload's algorithm, else the one the part came with, if any. */
  checksum: { algorithm: ChecksumAlgorithm; value: string } | null;
  /** When it was uploaded (ISO 8601). */
  modified: string;
}

/** What a completed upload answered, kept so that completing it again answers the same. */
export interface Completion {
  etag: string;
  checksum: Checksum | null;
  /** The seq of the event that committed the value (S3's version id with --retain); absent in what older builds kept. */
  seq?: number;
}

const UPLOAD_ID = /^[0-9a-f]{32}$/;
const MAX_PART_NUMBER = 10_000;

function partName(number: number): string {
  return `part-${String(number).padStart(5, '0')}`;
}

export class UploadStore {
  constructor(readonly dir: string) {}

  private uploadDir(uploadId: string): string {
    if (!UPLOAD_ID.test(uploadId)) throw new MkvError('MKV_NO_SUCH_UPLOAD', 'no such upload');
    return join(this.dir, uploadId);
  }

  create(key: string, value: Partial<UploadValue> = {}): Upload {
    const uploadId = randomBytes(16).toString('hex');
    const dir = join(this.dir, uploadId);
    mkdirSync(dir, { recursive: true });
    const initiated = new Date().toISOString();
    const upload: Upload = {
      uploadId,
      key,
      initiated,
      contentType: null,
      metadata: {},
      headers: {},
      initiator: 'anonymous',
      checksumAlgorithm: null,
      checksumType: null,
      ...value,
    };
    writeFileSync(join(dir, 'upload.json'), JSON.stringify({ ...upload, uploadId: undefined }));
    return upload;
  }

  /** The upload in progress, checked to belong to `key`; a completed one is NoSuchUpload too. */
  get(uploadId: string, key?: string): Upload {
    const upload = this.read(uploadId, key);
    if (existsSync(join(this.uploadDir(uploadId), 'completed.json')))
      throw new MkvError('MKV_NO_SUCH_UPLOAD', 'no such upload (it was completed)');
    return upload;
  }

  private read(uploadId: string, key?: string): Upload {
    const file = join(this.uploadDir(uploadId), 'upload.json');
    if (!existsSync(file)) throw new MkvError('MKV_NO_SUCH_UPLOAD', 'no such upload (completed, aborted or never created)');
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Partial<Upload> & { key: string; initiated: string };
    if (key !== undefined && saved.key !== key) throw new MkvError('MKV_NO_SUCH_UPLOAD', 'no such upload for this key');
    return {
      uploadId,
      key: saved.key,
      initiated: saved.initiated,
      contentType: saved.contentType ?? null,
      metadata: saved.metadata ?? {},
      headers: saved.headers ?? {},
      initiator: saved.initiator ?? 'anonymous',
      checksumAlgorithm: saved.checksumAlgorithm ?? null,
      checksumType: saved.checksumType ?? null,
    };
  }

  /** The uploads in progress (with `completed`, the completed ones kept for a repeated completion too), by key, then age. */
  list(options: { completed?: boolean } = {}): Array<Upload & { completed: boolean }> {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((name) => UPLOAD_ID.test(name))
      .flatMap((uploadId) => {
        try {
          const completed = existsSync(join(this.dir, uploadId, 'completed.json'));
          return completed && !options.completed ? [] : [{ ...this.read(uploadId), completed }];
        } catch {
          return [];
        }
      })
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.initiated < b.initiated ? -1 : 1));
  }

  /**
   * Marks an upload completed with what its completion answered, then drops its parts (the value
   * is on the volumes now). A crash in between leaves parts a repeated completion does not need.
   */
  complete(uploadId: string, completion: Completion): void {
    const dir = this.uploadDir(uploadId);
    const file = join(dir, 'completed.json');
    writeFileSync(`${file}.tmp`, JSON.stringify(completion));
    renameSync(`${file}.tmp`, file);
    for (const name of readdirSync(dir)) if (name.startsWith('part-')) rmSync(join(dir, name), { force: true });
  }

  /** What a completed upload of `key` answered; undefined if it was not completed (or is not `key`'s). */
  completion(uploadId: string, key: string): Completion | undefined {
    try {
      this.read(uploadId, key);
      return JSON.parse(readFileSync(join(this.uploadDir(uploadId), 'completed.json'), 'utf8')) as Completion;
    } catch {
      return undefined;
    }
  }

  /**
   * Streams a part to disk, under the body timeout (`windowMs`); resolves with its size, md5 (the
   * part's ETag) and checksum: of `algorithm` (the upload's), computed here, else the one the part
   * came with (checked as it arrived, ValueSource.checksum). A failure says what went wrong,
   * never where the part was being written.
   */
  async writePart(
    uploadId: string,
    number: number,
    source: ValueSource,
    windowMs: number,
    algorithm: ChecksumAlgorithm | null = null,
  ): Promise<StoredPart> {
    const { body } = source;
    const dir = this.uploadDir(uploadId);
    if (!Number.isInteger(number) || number < 1 || number > MAX_PART_NUMBER) {
      throw new MkvError('MKV_BAD_QUERY', `partNumber must be an integer from 1 to ${MAX_PART_NUMBER}`);
    }
    const dead = deadBody(body);
    if (dead) throw this.partFailure(uploadId, dead);
    const file = join(dir, partName(number));
    const temporary = `${file}.tmp-${randomBytes(6).toString('hex')}`;
    const hash = createHash('md5');
    const digest = algorithm ? createDigest(algorithm) : undefined;
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      digest?.update(chunk);
      size += chunk.length;
    });
    // Through a PassThrough, so that giving up on a slow body does not destroy the request (and
    // its socket) before the 400 is sent.
    const passage = new PassThrough();
    body.pipe(passage);
    // A body that fails its checks (auth/body-check.ts, aws-chunked) ends the part at once: pipe() does not pass errors on.
    body.once('error', (error) => passage.destroy(error));
    const stopWatching = watchBodyRate(body, windowMs, (error) => {
      body.unpipe(passage);
      passage.destroy(error);
    });
    try {
      await pipeline(passage, createWriteStream(temporary));
      // A source of known length that ended short (a volume's answer cut off) is no part.
      if (source.length !== undefined && size !== source.length)
        throw new MkvError('MKV_SHORT_BODY', `the part's body ended after ${size} of ${source.length} bytes`);
      const handle = await open(temporary, 'r');
      await handle.sync();
      await handle.close();
      const carried = source.checksum?.() ?? null;
      const checksum =
        algorithm && digest
          ? { algorithm, value: digest.digest().toString('base64') }
          : carried && { algorithm: carried.algorithm as ChecksumAlgorithm, value: carried.value };
      const part: StoredPart = { number, size, md5: hash.digest('hex'), checksum, modified: new Date().toISOString() };
      // The bytes first, then their description: a crash in between leaves a description that
      // does not match the client's ETag (so completing fails), never a wrong part that does.
      renameSync(temporary, file);
      writeFileSync(`${temporary}.json`, JSON.stringify({ ...part, number: undefined }));
      renameSync(`${temporary}.json`, `${file}.json`);
      return part;
    } catch (error) {
      rmSync(temporary, { force: true });
      throw this.partFailure(uploadId, error);
    } finally {
      stopWatching();
    }
  }

  /** Why writing a part failed, in the client's terms. */
  private partFailure(uploadId: string, error: unknown): MkvError {
    if (error instanceof MkvError) return error;
    if (!existsSync(join(this.uploadDir(uploadId), 'upload.json'))) {
      return new MkvError('MKV_NO_SUCH_UPLOAD', 'the upload was completed or aborted while this part arrived');
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT')
      return new MkvError('MKV_UPLOADS_FULL', "the disk that holds the master's multipart uploads is full");
    if (code === undefined || code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE')
      return new MkvError('MKV_SHORT_BODY', "the part's body ended early");
    return new MkvError('MKV_INTERNAL', `writing a part failed (${code})`, { cause: error });
  }

  /** Whether part `number` of the upload has been written, or is being written now. */
  hasPart(uploadId: string, number: number): boolean {
    const name = partName(number);
    return readdirSync(this.uploadDir(uploadId)).some((file) => file === `${name}.json` || file.startsWith(`${name}.tmp-`));
  }

  parts(uploadId: string): StoredPart[] {
    const dir = this.uploadDir(uploadId);
    return readdirSync(dir)
      .map((name) => /^part-(\d{5})$/.exec(name))
      .filter((match): match is RegExpExecArray => match !== null && existsSync(join(dir, `${match[0]}.json`)))
      .map((match) => {
        const meta = JSON.parse(readFileSync(join(dir, `${match[0]}.json`), 'utf8')) as Omit<StoredPart, 'number'>;
        return { number: Number(match[1]), size: meta.size, md5: meta.md5, checksum: meta.checksum ?? null, modified: meta.modified ?? '' };
      })
      .sort((a, b) => a.number - b.number);
  }

  /** The chosen parts, one after another, as one stream. */
  concatenate(uploadId: string, numbers: number[]): Readable {
    const dir = this.uploadDir(uploadId);
    return Readable.from(
      (async function* () {
        for (const number of numbers) yield* createReadStream(join(dir, partName(number)), { highWaterMark: 1 << 20 });
      })(),
      { objectMode: false },
    );
  }

  /**
   * Removes every upload of a key under `prefix` (a bucket's "/name/"), in progress or kept
   * completed: none comes back under a bucket of that name created later. Returns how many.
   */
  removeUnder(prefix: string): number {
    const uploads = this.list({ completed: true }).filter((upload) => upload.key.startsWith(prefix));
    for (const upload of uploads) this.remove(upload.uploadId);
    return uploads.length;
  }

  remove(uploadId: string): void {
    rmSync(this.uploadDir(uploadId), { recursive: true, force: true });
  }
}
