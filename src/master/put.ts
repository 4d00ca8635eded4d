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
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from 'koa';
import { MkvError } from '../errors.js';
import type { Cause, EventInput, LogEvent } from '../events/event.js';
import { keyToPath, keyToVolumes } from '../placement.js';
import type { MasterDeps } from './app.js';
import { checkKeyFits } from './keys.js';
import type { KeyRecord } from '../index/evolve.js';
import { AwsChunkedDecoder } from './s3/aws-chunked.js';
import { writeKey } from '../writer/writer.js';

export interface Written {
  size: number;
  md5: string | null;
}

function contentLength(request: IncomingMessage): number | undefined {
  const header = request.headers['content-length'];
  if (header === undefined) return undefined;
  // Node's parser has already refused a malformed Content-Length.
  return Number(header);
}

/**
 * Answers with `Log-Seq: N`, the seq of the request's last event so far: a client can then read
 * its write from any master with `Min-Log-Seq: N`.
 */
export function tellSeq(ctx: Context, events: readonly LogEvent[]): void {
  const last = events.at(-1);
  if (last) ctx.set('Log-Seq', String(last.seq));
}

export function apiCause(ctx: Context): Cause {
  return { origin: 'api', client: (ctx.state.client as string | null | undefined) ?? null };
}

/** A value to store: a byte stream and, when known, its length. */
export interface ValueSource {
  body: Readable;
  length: number | undefined;
}

/** Where a PUT's value comes from: the request body, unwrapped from aws-chunked framing if so sent. */
export function requestBody(ctx: Context): ValueSource {
  const request = ctx.req;
  if (/\baws-chunked\b/i.test(ctx.get('content-encoding'))) {
    const decoded = ctx.get('x-amz-decoded-content-length');
    const decoder = new AwsChunkedDecoder();
    pipeline(request, decoder).catch(() => undefined); // errors surface on the decoder
    return { body: decoder, length: decoded === '' ? undefined : Number(decoded) };
  }
  const chunked = /\bchunked\b/i.test(ctx.get('transfer-encoding'));
  const length = contentLength(request);
  if (length === 0 || (length === undefined && !chunked)) {
    throw new MkvError('MKV_EMPTY_BODY', 'a PUT needs a body (Content-Length is 0 or missing)');
  }
  return { body: request, length };
}

/**
 * With a log shared by several masters, a pending key may be a write in flight on another
 * master (its blob is being streamed right now): taking it over would mix two values in one
 * file. Until it is older than --pending-grace it answers 409; after that it is abandoned, and a
 * PUT or DELETE cleans it up as on one master.
 */
export function refuseInFlightElsewhere(deps: MasterDeps, record: KeyRecord): void {
  if (!deps.writer.sharedLog) return;
  const age = Date.now() - record.time;
  if (age < deps.config.pendingGraceMs) {
    throw new MkvError(
      'MKV_KEY_LOCKED',
      `a write of this key started ${Math.round(age / 1000)} s ago, maybe on another master, and has not finished; retry later (a pending write is taken over after ${Math.round(deps.config.pendingGraceMs / 1000)} s)`,
    );
  }
}

/** PUT /key. */
export async function putKey(ctx: Context, deps: MasterDeps, key: string): Promise<void> {
  const written = await storeValue(ctx, deps, key, requestBody(ctx));
  ctx.status = 201;
  ctx.set('ETag', `"${written.md5 ?? ''}"`);
  ctx.body = '';
}

/**
 * Stores a value under a new key: lock, WriteStarted, stream to every replica, WriteCommitted.
 * Shared by PUT, S3 PutObject and the completion of a multipart upload.
 */
export async function storeValue(ctx: Context, deps: MasterDeps, key: string, source: ValueSource): Promise<Written> {
  const { config, index, writer } = deps;
  if (source.length === 0) throw new MkvError('MKV_EMPTY_BODY', 'a PUT needs a body (the value is empty)');
  checkKeyFits(key);
  const targetVolumes = keyToVolumes(key, config.volumes, config.replicas, config.subvolumes);
  const cause = apiCause(ctx);
  const decide = (record: KeyRecord | undefined): EventInput[] => {
    if (record?.state === 'live') {
      throw new MkvError('MKV_EXISTS', 'the key exists; DELETE or UNLINK it first');
    }
    if (record?.state === 'pending') refuseInFlightElsewhere(deps, record);
    return [{ key, cause, change: { type: 'WriteStarted', volumes: targetVolumes } }];
  };
  return writeKey(writer, index, key, decide, async (_record, started, held) => {
    tellSeq(ctx, started);
    let written: Written;
    try {
      written = await streamToReplicas(source, deps, targetVolumes, keyToPath(key));
      if (written.size === 0) throw new MkvError('MKV_EMPTY_BODY', 'a PUT needs a body (the chunked body was empty)');
    } catch (error) {
      // The client may still be sending: answer and close rather than read a gigabyte for nothing.
      ctx.set('Connection', 'close');
      await abandonWrite(deps, key, targetVolumes, cause, error as Error);
      throw error;
    }
    tellSeq(ctx, await held.appendAndUnlock([{ key, cause, change: { type: 'WriteCommitted', volumes: targetVolumes, size: written.size, md5: written.md5 } }]));
    return written;
  });
}

function streamToReplicas(source: ValueSource, deps: MasterDeps, targetVolumes: string[], path: string): Promise<Written> {
  const { config, volumes } = deps;
  const { body: request, length } = source;
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
    // No data for bodyTimeoutMs: the client stopped sending — or a volume stopped taking data
    // and backpressure paused the body, which is the volume's fault, not the client's.
    const onStall = () => {
      const stuck = bodies.findIndex((body) => body.writableNeedDrain);
      if (stuck !== -1) {
        fail(new MkvError('MKV_VOLUME_FAILED', `the volume ${targetVolumes[stuck]} stopped taking data for ${config.bodyTimeoutMs} ms`));
      } else {
        fail(shortBody(`stalled for ${config.bodyTimeoutMs} ms`));
      }
    };
    const armStallTimer = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(onStall, config.bodyTimeoutMs);
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
    request.on('error', (error) => fail(error instanceof MkvError ? error : shortBody(`failed (${error.message})`)));
    request.on('close', () => {
      if (!bodyEnded) fail(shortBody('ended (the client went away)'));
    });
    for (const body of bodies) request.pipe(body);
    armStallTimer();

    Promise.all(puts).then(
      () => {
        if (settled) return;
        // With a length, every byte received is the whole body (a volume may answer before the
        // source's 'end' event); without one, the volumes saw the end of the chunked body.
        if (length !== undefined ? size !== length : !bodyEnded) {
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
