// mkv uploads: the S3 multipart uploads begun and not completed; --abort-older-than cleans up
// abandoned ones (safe while the master runs: an upload lives only in its directory), and forgets
// completed ones as old (kept so that a repeated CompleteMultipartUpload answers as the first).
import { UploadStore } from '../master/s3/uploads.js';
import { uploadsDir } from '../db/paths.js';
import { defineFlags, type Options } from './args.js';
import { dbFlag, existingDb } from './common-flags.js';

export const uploadsFlags = defineFlags({
  db: dbFlag('the database directory'),
  'abort-older-than': { type: 'duration', help: 'abort the uploads begun longer ago than this, e.g. 24h' },
});

export async function uploadsCommand(flags: Options<typeof uploadsFlags>): Promise<void> {
  const store = new UploadStore(uploadsDir(existingDb(flags.db)));
  const maxAge = flags['abort-older-than'];
  let aborted = 0;
  for (const upload of store.list({ completed: true })) {
    const old = maxAge !== undefined && Date.now() - Date.parse(upload.initiated) > maxAge;
    if (upload.completed) {
      // Kept only so that completing it again answers as the first time did: forgotten with age.
      if (old) store.remove(upload.uploadId);
      continue;
    }
    const parts = store.parts(upload.uploadId);
    const bytes = parts.reduce((sum, part) => sum + part.size, 0);
    if (old) {
      store.remove(upload.uploadId);
      aborted++;
    }
    process.stdout.write(
      `${upload.uploadId}\t${upload.initiated}\t${parts.length} parts\t${bytes} bytes\t${upload.key}${old ? '\taborted' : ''}\n`,
    );
  }
  if (maxAge !== undefined) process.stderr.write(`aborted ${aborted} uploads\n`);
}
