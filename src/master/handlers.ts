// The handlers of the minikeyvalue API other than PUT (put.ts): GET/HEAD, DELETE, UNLINK, LINK,
// and the GET operations ?list, ?unlinked, ?history.
import type { Context } from 'koa';
import { MkvError } from '../errors.js';
import { eventToJson, type EventInput } from '../events/event.js';
import type { KeyRecord, KeyState } from '../index/evolve.js';
import { rebalanceKey } from '../ops/rebalance.js';
import { keyToPath, keyToVolumes, needsRebalance } from '../placement.js';
import { volumeUrl } from '../volumes/client.js';
import type { MasterDeps } from './app.js';
import { apiCause, refuseInFlightElsewhere, tellSeq } from './put.js';
import { withKeyLock, writeKey } from '../writer/writer.js';

/** A copy in random order (Fisher–Yates): replicas are tried in random order, as the original did. */
export function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

function notFound(): MkvError {
  return new MkvError('MKV_NOT_FOUND', 'no such key');
}

/** Sets a response header: Koa's ctx.set, or node:http's res.setHeader (fast-get.ts). */
export type SetHeader = (name: string, value: string) => void;

/**
 * Where GET/HEAD /key redirects: a replica that a HEAD found holding the blob, or the fallback
 * server for a key not here; undefined when there is none (a 404, the common case of a miss, so
 * no error is built for it). Sets Content-Md5, Key-Balance, Key-Volumes.
 * `rawPath` is the request path as sent, for the fallback's URL.
 */
export async function locateKey(deps: MasterDeps, key: string, rawPath: string, set: SetHeader): Promise<string | undefined> {
  const { config, index, volumes } = deps;
  const record = index.get(key);
  if (record?.md5) set('Content-Md5', record.md5);
  if (!record || record.state !== 'live') {
    return config.fallback ? `http://${config.fallback}${rawPath}` : undefined;
  }
  const targetVolumes = keyToVolumes(key, config.volumes, config.replicas, config.subvolumes);
  set('Key-Balance', needsRebalance(record.volumes, targetVolumes) ? 'unbalanced' : 'balanced');
  set('Key-Volumes', record.volumes.join(','));
  const path = keyToPath(key);
  for (const volume of shuffled(record.volumes)) {
    const head = await volumes.head(volume, path);
    if (head.status === 'found') return volumeUrl(volume, path);
    if (head.status === 'unknown') deps.logger.warn('replica did not answer a HEAD', { key, volume, reason: head.reason });
  }
  return undefined;
}

/** GET/HEAD /key: 302 to a replica that holds the blob. */
export async function getKey(ctx: Context, deps: MasterDeps, key: string): Promise<void> {
  const location = await locateKey(deps, key, ctx.path, (name, value) => ctx.set(name, value));
  if (location === undefined) throw notFound();
  redirect(ctx, location);
}

function redirect(ctx: Context, location: string): void {
  ctx.status = 302;
  ctx.set('Location', location);
  ctx.body = '';
}

/** DELETE /key: unlink (so a failure leaves it listed in ?unlinked), remove every replica, forget it. */
export async function deleteKey(ctx: Context, deps: MasterDeps, key: string): Promise<void> {
  const { config, index, writer, volumes } = deps;
  const cause = apiCause(ctx);
  const decide = (record: KeyRecord | undefined): EventInput[] => {
    if (!record) throw notFound();
    if (record.state === 'pending') refuseInFlightElsewhere(deps, record);
    if (record.state !== 'live') return [];
    if (config.protect) throw new MkvError('MKV_PROTECTED', 'the server runs with --protect: UNLINK the key before you DELETE it');
    return [{ key, cause, change: { type: 'KeyUnlinked' } }];
  };
  await writeKey(writer, index, key, decide, async (decidedOn, unlinked, held) => {
    const record = decidedOn!; // decide refused a missing key
    tellSeq(ctx, unlinked);
    const path = keyToPath(key);
    const removals = await Promise.allSettled(record.volumes.map((volume) => volumes.delete(volume, path)));
    const failed = removals.flatMap((result, i) => (result.status === 'rejected' ? [`${record.volumes[i]}: ${(result.reason as Error).message}`] : []));
    if (failed.length > 0) {
      deps.logger.warn('delete failed on a volume; the key stays unlinked', { key, failed });
      throw new MkvError(
        'MKV_VOLUME_FAILED',
        `removing the blob failed (${failed.join('; ')}); the key stays ${record.state === 'pending' ? 'pending' : 'unlinked'}, DELETE it again to retry`,
      );
    }
    tellSeq(ctx, await held.appendAndUnlock([{ key, cause, change: { type: 'KeyDeleted' } }]));
    ctx.status = 204;
  });
}

/** UNLINK /key (virtual delete) and LINK /key (its undo). */
export async function setLinked(ctx: Context, deps: MasterDeps, key: string, linked: boolean): Promise<void> {
  const { index, writer } = deps;
  await withKeyLock(writer, key, async (held) => {
    const from: KeyState = linked ? 'unlinked' : 'live';
    if (index.get(key)?.state !== from) throw notFound();
    tellSeq(ctx, await held.appendAndUnlock([{ key, cause: apiCause(ctx), change: { type: linked ? 'KeyLinked' : 'KeyUnlinked' } }]));
    ctx.status = 204;
  });
}

/** POST /key?rebalance: move the key to where placement puts it now (204 / 404 / 400). */
export async function rebalanceOne(ctx: Context, deps: MasterDeps, key: string): Promise<void> {
  const { index, writer, volumes, config } = deps;
  await withKeyLock(writer, key, async () => {
    const record = index.get(key);
    if (!record) throw notFound();
    const outcome = await rebalanceKey(key, record, config, volumes, writer, apiCause(ctx));
    if (outcome.status === 'failed') throw new MkvError('MKV_REBALANCE_FAILED', `rebalance failed: ${outcome.reason}`);
    // A key already in place appended nothing: what this master has applied covers it.
    ctx.set('Log-Seq', String(outcome.status === 'moved' ? outcome.seq : index.checkpoint));
    ctx.status = 204;
  });
}

function parseLimit(value: string | null): number | undefined {
  if (value === null || value === '') return undefined;
  if (!/^[1-9][0-9]{0,15}$/.test(value)) throw new MkvError('MKV_BAD_QUERY', `limit must be a positive integer, not ${JSON.stringify(value)}`);
  return Number(value);
}

/**
 * GET /prefix?list (live keys) and GET /prefix?unlinked (unlinked keys, and pending ones: a
 * write that never completed, as the original listed them — DELETE cleans either up).
 */
export function listKeys(ctx: Context, deps: MasterDeps, prefix: string, states: readonly KeyState[], query: URLSearchParams): void {
  const limit = parseLimit(query.get('limit'));
  const start = query.get('start') || undefined;
  const page = deps.index.list({ prefix, states, ...(start !== undefined ? { start } : {}), ...(limit !== undefined ? { limit } : {}) });
  ctx.status = 200;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify({ next: page.next, keys: page.keys });
}

/** GET /key?history: every event of the key, oldest first. */
export function keyHistory(ctx: Context, deps: MasterDeps, key: string): void {
  const events = deps.index.historyOf(key);
  if (events.length === 0) throw notFound();
  ctx.status = 200;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify(events.map(eventToJson));
}
