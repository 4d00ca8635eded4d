// mkv history --db DIR KEY: every event of a key, oldest first (read from the index; works
// while the master runs).
import { existsSync } from 'node:fs';
import { eventToJson, type LogEvent } from '../events/event.js';
import { IndexStore } from '../index/index-store.js';
import { SegmentLog } from '../log/segment-log.js';
import { indexDir, logDir } from '../db/paths.js';
import { defineFlags, UsageError, type Options } from './args.js';
import { dbFlag, existingDb } from './common-flags.js';

export const historyFlags = defineFlags({
  db: dbFlag('the database directory'),
  json: { type: 'boolean', default: false, help: 'one JSON object per line' },
});

async function historyOf(db: string, key: string): Promise<LogEvent[]> {
  if (existsSync(indexDir(db))) {
    const index = IndexStore.open(indexDir(db), { readOnly: true });
    try {
      return index.historyOf(key);
    } finally {
      await index.close();
    }
  }
  // No index (yet): the log has it all.
  const log = await SegmentLog.open(logDir(db), { readOnly: true });
  const events: LogEvent[] = [];
  for await (const batch of log.readFrom(1)) for (const event of batch) if (event.key === key) events.push(event);
  await log.close();
  return events;
}

export function describeEvent(event: LogEvent): string {
  const change = event.change;
  const details: string[] = [];
  if ('volumes' in change) details.push(`volumes=${change.volumes.join(',')}`);
  if ('size' in change && change.size !== null) details.push(`size=${change.size}`);
  if ('md5' in change && change.md5 !== null) details.push(`md5=${change.md5}`);
  if ('reason' in change) details.push(`reason=${JSON.stringify(change.reason)}`);
  if ('source' in change) details.push(`volume=${change.volume} source=${change.source}`);
  const who = [event.cause.origin, event.cause.client, event.cause.who].filter(Boolean).join(' ');
  return `${event.seq}\t${new Date(event.time).toISOString()}\t${change.type}\t${details.join(' ')}\tby ${who}`;
}

export async function historyCommand(flags: Options<typeof historyFlags>, positional: string[]): Promise<void> {
  const { db } = flags;
  if (positional.length !== 1) throw new UsageError('give one KEY (with its leading slash, e.g. /wehave)');
  const key = positional[0]!;
  const events = await historyOf(existingDb(db), key);
  if (events.length === 0) {
    process.stderr.write(`no events for ${key}\n`);
    process.exitCode = 1;
    return;
  }
  for (const event of events) process.stdout.write((flags.json ? JSON.stringify(eventToJson(event)) : describeEvent(event)) + '\n');
}
