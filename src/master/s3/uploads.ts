// Multipart uploads on disk, under the master's data directory (so they survive a restart and
// sit on a disk the operator chose, not /tmp):
//
//   <db>/uploads/<uploadId>/upload.json     { key, initiated }
//   <db>/uploads/<uploadId>/part-00001      the part's bytes (written aside, fsync'd, renamed)
//   <db>/uploads/<uploadId>/part-00001.json { size, md5 }
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
import { MkvError } from '../../errors.js';
import { deadBody, watchBodyRate } from '../../keys/slow-body.js';
import type { ValueSource } from '../../keys/store-value.js';

export interface Upload {
  uploadId: string;
  key: string;
  initiated: string;
  /** The Content-Type, user metadata and object headers CreateMultipartUpload gave the value. */
  contentType: string | null;
  metadata: Record<string, string>;
  headers: Record<string, string>;
}

export interface Part {
  number: number;
  size: number;
  md5: string;
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

  create(
    key: string,
    value: Pick<Upload, 'contentType' | 'metadata' | 'headers'> = { contentType: null, metadata: {}, headers: {} },
  ): Upload {
    const uploadId = randomBytes(16).toString('hex');
    const dir = join(this.dir, uploadId);
    mkdirSync(dir, { recursive: true });
    const initiated = new Date().toISOString();
    writeFileSync(join(dir, 'upload.json'), JSON.stringify({ key, initiated, ...value }));
    return { uploadId, key, initiated, ...value };
  }

  /** The upload, checked to belong to `key`. */
  get(uploadId: string, key?: string): Upload {
    const file = join(this.uploadDir(uploadId), 'upload.json');
    if (!existsSync(file)) throw new MkvError('MKV_NO_SUCH_UPLOAD', 'no such upload (completed, aborted or never created)');
    const saved = JSON.parse(readFileSync(file, 'utf8')) as {
      key: string;
      initiated: string;
      contentType?: string | null;
      metadata?: Record<string, string>;
      headers?: Record<string, string>;
    };
    if (key !== undefined && saved.key !== key) throw new MkvError('MKV_NO_SUCH_UPLOAD', 'no such upload for this key');
    return {
      uploadId,
      key: saved.key,
      initiated: saved.initiated,
      contentType: saved.contentType ?? null,
      metadata: saved.metadata ?? {},
      headers: saved.headers ?? {},
    };
  }

  list(): Upload[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((name) => UPLOAD_ID.test(name))
      .flatMap((uploadId) => {
        try {
          return [this.get(uploadId)];
        } catch {
          return [];
        }
      })
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.initiated < b.initiated ? -1 : 1));
  }

  /**
   * Streams a part to disk, under the body timeout (`windowMs`); resolves with its size and md5
   * (the part's ETag). A failure says what went wrong, never where the part was being written.
   */
  async writePart(uploadId: string, number: number, source: ValueSource, windowMs: number): Promise<Part> {
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
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      hash.update(chunk);
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
      const handle = await open(temporary, 'r');
      await handle.sync();
      await handle.close();
      const part = { number, size, md5: hash.digest('hex') };
      // The bytes first, then their description: a crash in between leaves a description that
      // does not match the client's ETag (so completing fails), never a wrong part that does.
      renameSync(temporary, file);
      writeFileSync(`${temporary}.json`, JSON.stringify({ size: part.size, md5: part.md5 }));
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

  parts(uploadId: string): Part[] {
    const dir = this.uploadDir(uploadId);
    return readdirSync(dir)
      .map((name) => /^part-(\d{5})$/.exec(name))
      .filter((match): match is RegExpExecArray => match !== null && existsSync(join(dir, `${match[0]}.json`)))
      .map((match) => {
        const meta = JSON.parse(readFileSync(join(dir, `${match[0]}.json`), 'utf8')) as { size: number; md5: string };
        return { number: Number(match[1]), ...meta };
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

  remove(uploadId: string): void {
    rmSync(this.uploadDir(uploadId), { recursive: true, force: true });
  }
}
