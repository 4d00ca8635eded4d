// A damaged LMDB file can crash the process that opens it (LMDB trusts its pages; a bad one is
// a segfault, not an exception). So before the master opens its index, a child process opens
// it and reads the checkpoint and the first and last records: if the child dies or fails, the
// index is damaged, and the master rebuilds it from the log instead of serving it.
//
//   node dist/src/index/check-index.js <index dir>   → exit 0 and "ok <checkpoint>", or non-zero
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type IndexHealth = { ok: true; checkpoint: number } | { ok: false; reason: string };

export function checkIndex(dir: string, timeoutMs = 60_000): Promise<IndexHealth> {
  if (!existsSync(dir)) return Promise.resolve({ ok: true, checkpoint: 0 });
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), dir], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (error) => resolve({ ok: false, reason: error.message }));
    child.on('close', (code, signal) => {
      const match = /^ok (\d+)$/m.exec(output);
      if (code === 0 && match) resolve({ ok: true, checkpoint: Number(match[1]) });
      else
        resolve({
          ok: false,
          reason: signal ? `opening it crashed the checking process (${signal})` : output.trim().split('\n').at(-1) || `exit ${code}`,
        });
    });
  });
}

async function main(dir: string): Promise<void> {
  const { IndexStore } = await import('./index-store.js');
  const index = IndexStore.open(dir, { readOnly: true });
  const checkpoint = index.checkpoint;
  if (!Number.isInteger(checkpoint) || checkpoint < 0) throw new Error(`the checkpoint is not a seq (${String(checkpoint)})`);
  // Touch the first records and the key count: the pages a damaged file most often breaks.
  let read = 0;
  for (const entry of index.entries(10)) {
    void entry;
    if (++read === 10) break;
  }
  index.count();
  read = 0;
  for (const entry of index.bucketEntries()) {
    void entry;
    if (++read === 10) break;
  }
  await index.close();
  process.stdout.write(`ok ${checkpoint}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv[2]!).catch((error: unknown) => {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(1);
  });
}
