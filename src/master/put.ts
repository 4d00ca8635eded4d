// PUT /key: stream the body to every replica at once, never holding the value in memory.
//
//   client ──req──┬─ pipe ─▶ PassThrough ─▶ undici PUT ─▶ volume 1
//                 ├─ pipe ─▶ PassThrough ─▶ undici PUT ─▶ volume 2      (pipe waits for the slowest)
//                 ├─ pipe ─▶ PassThrough ─▶ undici PUT ─▶ volume 3
//                 └─ 'data' ─▶ md5, byte count, stall timer
//
// The log names every step: WriteStarted before the first byte leaves, WriteCommitted once all
// replicas answered. A failure removes the partial replicas and appends WriteAborted; if even
// that fails the key stays pending, and a later PUT or DELETE of it cleans up.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import type { Context } from 'koa';
import { MkvError } from '../errors.js';
import type { Cause } from '../events/event.js';
import { keyToPath, keyToVolumes } from '../placement.js';
import type { MasterDeps } from './app.js';
import { checkKeyFits } from './keys.js';

interface Written {
  size: number;
  md5: string | null;
}

function contentLength(request: IncomingMessage): number | undefined {
  const header = request.headers['content-length'];
  if (header === undefined) return undefined;
  // Node's parser has already refused a malformed Content-Length.
  return Number(header);
}

export function apiCause(ctx: Context): Cause {
  return { origin: 'api', client: ctx.request.ip || null };
}

export async function putKey(ctx: Context, deps: MasterDeps, key: string): Promise<void> {
  const { config, index, writer } = deps;
  const length = contentLength(ctx.req);
  const chunked = /\bchunked\b/i.test(ctx.get('transfer-encoding'));
  if (length === 0 || (length === undefined && !chunked)) {
    throw new MkvError('MKV_EMPTY_BODY', 'a PUT needs a body (Content-Length is 0 or missing)');
  }
  checkKeyFits(key);
  await writer.lock(key);
  try {
    if (index.get(key)?.state === 'live') {
      throw new MkvError('MKV_EXISTS', 'the key exists; DELETE or UNLINK it first');
    }
    const targetVolumes = keyToVolumes(key, config.volumes, config.replicas, config.subvolumes);
    const cause = apiCause(ctx);
    await writer.append([{ key, cause, change: { type: 'WriteStarted', volumes: targetVolumes } }]);
    let written: Written;
    try {
      written = await streamToReplicas(ctx.req, deps, targetVolumes, keyToPath(key), length);
      if (written.size === 0) throw new MkvError('MKV_EMPTY_BODY', 'a PUT needs a body (the chunked body was empty)');
    } catch (error) {
      // The client may still be sending: answer and close rather than read a gigabyte for nothing.
      ctx.set('Connection', 'close');
      await abandonWrite(deps, key, targetVolumes, cause, error as Error);
      throw error;
    }
    await writer.append([
      { key, cause, change: { type: 'WriteCommitted', volumes: targetVolumes, size: written.size, md5: written.md5 } },
    ]);
    ctx.status = 201;
    ctx.body = '';
  } finally {
    await writer.unlock(key);
  }
}

function streamToReplicas(
  request: IncomingMessage,
  deps: MasterDeps,
  targetVolumes: string[],
  path: string,
  length: number | undefined,
): Promise<Written> {
  const { config, volumes } = deps;
  return new Promise((resolve, reject) => {
    const hash = config.md5sum ? createHash('md5') : undefined;
    const controller = new AbortController();
    const bodies = targetVolumes.map(() => new PassThrough());
    let size = 0;
    let bodyEnded = false;
    let settled = false;
    let stallTimer: NodeJS.Timeout | undefined;

    const puts = targetVolumes.map((volume, i) =>
      volumes.put(volume, path, bodies[i]!, length, controller.signal).catch((error: Error) => {
        throw error instanceof MkvError && error.code === 'MKV_VOLUME_FAILED'
          ? error
          : new MkvError('MKV_VOLUME_FAILED', `writing the replica on ${volume} failed: ${error.message}`, { cause: error });
      }),
    );

    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(stallTimer);
      controller.abort(error);
      for (const body of bodies) {
        request.unpipe(body);
        body.destroy();
      }
      // Cleanup must not race a replica PUT that is still finishing: wait for all to settle.
      void Promise.allSettled(puts).then(() => reject(error));
    };
    const shortBody = (what: string) =>
      new MkvError(
        'MKV_SHORT_BODY',
        length === undefined ? `the request body ${what} after ${size} bytes` : `the request body ${what} after ${size} of ${length} bytes (Content-Length)`,
      );
    const armStallTimer = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => fail(shortBody(`stalled for ${config.bodyTimeoutMs} ms`)), config.bodyTimeoutMs);
    };

    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      hash?.update(chunk);
      armStallTimer();
    });
    request.on('end', () => {
      bodyEnded = true;
      clearTimeout(stallTimer);
    });
    request.on('aborted', () => fail(shortBody('ended (the client went away)')));
    request.on('error', (error) => fail(shortBody(`failed (${error.message})`)));
    for (const body of bodies) request.pipe(body);
    armStallTimer();

    Promise.all(puts).then(
      () => {
        if (settled) return;
        if (!bodyEnded || (length !== undefined && size !== length)) {
          fail(shortBody('ended early'));
          return;
        }
        settled = true;
        clearTimeout(stallTimer);
        resolve({ size, md5: hash ? hash.digest('hex') : null });
      },
      (error: Error) => fail(error),
    );
  });
}

async function abandonWrite(deps: MasterDeps, key: string, targetVolumes: string[], cause: Cause, reason: Error): Promise<void> {
  const { volumes, writer, logger } = deps;
  const path = keyToPath(key);
  const removals = await Promise.allSettled(targetVolumes.map((volume) => volumes.delete(volume, path)));
  const failures = removals.flatMap((result, i) => (result.status === 'rejected' ? [{ volume: targetVolumes[i], error: String(result.reason) }] : []));
  if (failures.length > 0) {
    logger.warn('a failed write left replicas that could not be removed; the key stays pending', { key, failures });
    return;
  }
  try {
    await writer.append([{ key, cause, change: { type: 'WriteAborted', reason: reason.message } }]);
  } catch (error) {
    logger.warn('a failed write could not be recorded as aborted; the key stays pending', { key, error });
  }
}
