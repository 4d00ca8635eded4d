// mkv uploads: the S3 multipart uploads begun and not completed; --abort-older-than cleans up
// abandoned ones (safe while the master runs: an upload lives only in its directory), and forgets
// completed ones as old (kept so that a repeated CompleteMultipartUpload answers as the first);
// with --dry-run it says which it would abort and aborts none.
import { UploadStore } from '../uploads/upload-store.js';
import { uploadsDir } from '../db/paths.js';
import { defineFlags, type Options } from './args.js';
import { dbFlag, existingDb } from './common-flags.js';

export const uploadsFlags = defineFlags({
  db: dbFlag('the database directory'),
  'abort-older-than': { type: 'duration', help: 'abort the uploads begun longer ago than this, e.g. 24h' },
  'dry-run': { type: 'boolean', default: false, help: 'with --abort-older-than: say which would be aborted, abort none' },
});

export async function uploadsCommand(flags: Options<typeof uploadsFlags>): Promise<void> {
  const store = new UploadStore(uploadsDir(existingDb(flags.db)));
  const maxAge = flags['abort-older-than'];
  const dryRun = flags['dry-run'];
  let aborted = 0;
  for (const upload of store.list({ completed: true })) {
    const old = maxAge !== undefined && Date.now() - Date.parse(upload.initiated) > maxAge;
    if (upload.completed) {
      // Kept only so that completing it again answers as the first time did: forgotten with age.
      if (old && !dryRun) store.remove(upload.uploadId);
      continue;
    }
    const parts = store.parts(upload.uploadId);
    const bytes = parts.reduce((sum, part) => sum + part.size, 0);
    if (old) {
      if (!dryRun) store.remove(upload.uploadId);
      aborted++;
    }
    const mark = old ? (dryRun ? '\twould abort' : '\taborted') : '';
    process.stdout.write(
      `${upload.uploadId}\t${upload.initiated}\t${parts.length} parts\t${bytes} bytes\t${JSON.stringify(upload.key)}${mark}\n`,
    );
  }
  if (maxAge !== undefined) process.stderr.write(`${dryRun ? 'would abort' : 'aborted'} ${aborted} uploads\n`);
}
