// Replay benchmark: a log of N events (default 1,000,000: half WriteStarted, half WriteCommitted,
// on N/2 keys) replayed into a fresh LMDB index, as `mkv rebuild --from-log` does.
//
//   npm run build && node dist/tools/bench/replay.js [events=1000000]
//
// Target (issue 6): 1,000,000 events in 5 s or less.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventInput } from '../../src/events/event.js';
import { IndexStore } from '../../src/index/index-store.js';
import { SegmentLog } from '../../src/log/segment-log.js';
import { catchUp } from '../../src/db/store.js';

/** Writes a log of `total` events, replays it into a fresh index; returns the replay's seconds. */
export async function benchReplay(total: number): Promise<{ events: number; seconds: number; writeSeconds: number }> {
  const root = mkdtempSync(join(tmpdir(), 'mkv-bench-replay-'));
  try {
    const log = await SegmentLog.open(join(root, 'log'), { sync: 'none' });
    const cause = { origin: 'api', client: '10.0.0.7' };
    const volumes = ['10.0.0.1:3001/sv03', '10.0.0.2:3001/sv07', '10.0.0.3:3001/sv01'];
    let written = Date.now();
    for (let i = 0; i < total / 2;) {
      const batch: EventInput[] = [];
      for (; batch.length < 10_000 && i < total / 2; i++) {
        const key = `/bench/${String(i).padStart(9, '0')}/video.mp4`;
        batch.push({ key, cause, change: { type: 'WriteStarted', volumes } });
        batch.push({ key, cause, change: { type: 'WriteCommitted', volumes, size: 1 << 20, md5: 'd41d8cd98f00b204e9800998ecf8427e' } });
      }
      await log.append(batch);
    }
    written = Date.now() - written;
    const index = IndexStore.open(join(root, 'index'));
    const started = process.hrtime.bigint();
    const applied = await catchUp(log, index);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await index.close();
    await log.close();
    return { events: applied, seconds, writeSeconds: written / 1000 };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 1_000_000);
  const result = await benchReplay(total);
  console.log(
    `replay: ${result.events} events (${total / 2} keys) in ${result.seconds.toFixed(2)} s = ${Math.round(result.events / result.seconds)} events/s ` +
      `(target: 1,000,000 in ≤ 5 s); writing the log took ${result.writeSeconds.toFixed(2)} s`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
