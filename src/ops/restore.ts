// mkv restore --unlinked-since TIME: LINK every key unlinked since then (its blob is still on
// the volumes), recorded as KeyLinked events.
import type { EventInput } from '../events/event.js';
import { openStore } from '../db/store.js';

export async function restoreUnlinked(db: string, since: number, options: { dryRun?: boolean } = {}): Promise<string[]> {
  // A dry run reads the index beside a running master, taking no lock.
  const store = await openStore(db, { purpose: 'mkv restore', readOnly: options.dryRun ?? false });
  try {
    const restored: string[] = [];
    const batch: EventInput[] = [];
    for (const [key, record] of store.index.entries()) {
      if (record.state !== 'unlinked') continue;
      const last = store.index.historyOf(key).at(-1);
      if (last?.change.type !== 'KeyUnlinked' || last.time < since) continue;
      restored.push(key);
      batch.push({ key, cause: { origin: 'restore', client: null }, change: { type: 'KeyLinked' } });
    }
    if (!options.dryRun) {
      for (let i = 0; i < batch.length; i += 1000) await store.writer.append(batch.slice(i, i + 1000));
    }
    return restored;
  } finally {
    await store.close();
  }
}
