// mkv verify: scrub the replicas of every key; --deep reads and hashes them; --repair rewrites bad ones.
import { existsSync } from 'node:fs';
import { IndexStore } from '../index/index-store.js';
import { scrub } from '../ops/verify-replicas.js';
import { indexDir } from '../db/paths.js';
import { defineFlags, UsageError, type Options } from './args.js';
import { dbFlag, existingDb, logAccessFlags, openToolStore, sharedFlags, toolVolumeClient } from './common-flags.js';

export const verifyFlags = defineFlags({
  log: sharedFlags.log,
  ...logAccessFlags,
  db: dbFlag('the database directory (--repair needs the master stopped)'),
  deep: { type: 'boolean', default: false, help: 'read every replica and check its md5' },
  repair: { type: 'boolean', default: false, help: 'rewrite missing and corrupt replicas from a good one' },
  concurrency: { type: 'integer', default: 16, help: 'keys checked at once' },
  voltimeout: sharedFlags.voltimeout,
  'volume-timeout': sharedFlags['volume-timeout'],
  'volume-secret-file': sharedFlags['volume-secret-file'],
  v: sharedFlags.v,
});

export async function verifyCommand(flags: Options<typeof verifyFlags>): Promise<void> {
  const { db } = flags;
  existingDb(db);
  if (!existsSync(indexDir(db)))
    throw new UsageError(`${indexDir(db)} does not exist: start the master on it once (it builds its index from the log)`);
  const client = toolVolumeClient(flags);
  // Checking only reads the index (the master may run); repairing appends events, so it takes the db.
  const store = flags.repair ? await openToolStore(flags, 'mkv verify --repair') : undefined;
  const index = store?.index ?? IndexStore.open(indexDir(db), { readOnly: true });
  try {
    const report = await scrub(index, client, {
      deep: flags.deep,
      concurrency: flags.concurrency,
      ...(store ? { repair: store.writer } : {}),
    });
    for (const finding of report.findings.slice(0, 10_000)) {
      const outcome = finding.repaired ? ' — repaired' : finding.repairError ? ` — not repaired: ${finding.repairError}` : '';
      process.stdout.write(`${finding.problem} ${finding.key} on ${finding.volume}: ${finding.detail}${outcome}\n`);
    }
    if (report.findings.some((finding) => !finding.repaired)) process.exitCode = 1;
  } finally {
    if (store) await store.close();
    else await index.close();
    await client.close();
  }
}
