// mkv verify: scrub the replicas of every key; --deep reads and hashes them; --repair rewrites bad ones.
import { existsSync } from 'node:fs';
import { IndexStore } from '../index/index-store.js';
import { scrub } from '../ops/scrub.js';
import { createLogger } from '../logger.js';
import { VolumeClient } from '../volumes/client.js';
import { openStore } from '../db/store.js';
import { indexDir } from '../db/paths.js';
import { UsageError, type FlagSpecs, type FlagValues } from './args.js';
import { secretOption, serverFlags } from './server.js';

export const verifyFlags: FlagSpecs = {
  log: { type: 'string', default: '', help: 'the log on NATS JetStream (nats://host:port[,...][/STREAM]) instead of DB/log; DB holds this tool\'s own index of it' },
  db: { type: 'string', help: 'the database directory (--repair needs the master stopped)' },
  deep: { type: 'boolean', default: false, help: 'read every replica and check its md5' },
  repair: { type: 'boolean', default: false, help: 'rewrite missing and corrupt replicas from a good one' },
  concurrency: { type: 'integer', default: 16, help: 'keys checked at once' },
  voltimeout: serverFlags.voltimeout!,
  'volume-secret-file': serverFlags['volume-secret-file']!,
  v: serverFlags.v!,
};

export async function verifyCommand(flags: FlagValues): Promise<void> {
  const db = flags.db as string | undefined;
  if (!db) throw new UsageError('--db is required');
  if (!existsSync(indexDir(db))) throw new UsageError(`${indexDir(db)} does not exist`);
  const client = new VolumeClient({ headTimeoutMs: flags.voltimeout as number, ...secretOption(flags) });
  // Checking only reads the index (the master may run); repairing appends events, so it takes the db.
  const store = flags.repair ? await openStore(db, { logger: createLogger({ verbose: flags.v as boolean }), purpose: 'mkv verify --repair', ...(flags.log ? { logUrl: flags.log as string } : {}) }) : undefined;
  const index = store?.index ?? IndexStore.open(indexDir(db), { readOnly: true });
  try {
    const report = await scrub(index, client, {
      deep: flags.deep as boolean,
      concurrency: flags.concurrency as number,
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
