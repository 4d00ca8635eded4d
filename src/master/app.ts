// createApp(deps): the master's Koa app. It never listens; cli/server.ts (or a test) serves it.
//
//   request ─▶ errorResponses ─▶ requestLog ─▶ router ─▶ handler ─▶ writer (lock, append) / index (read)
//                                                              └──▶ volumes (HEAD, PUT, DELETE)
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import { MkvError } from '../errors.js';
import type { IndexStore } from '../index/index-store.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { VolumeClient } from '../volumes/client.js';
import type { Writer } from '../writer/writer.js';
import type { MasterConfig } from './config.js';
import { errorResponses } from './errors.js';
import { deleteKey, getKey, keyHistory, listKeys, rebalanceOne, setLinked } from './handlers.js';
import { checkKeyFits, decodeKey } from './keys.js';
import { putKey } from './put.js';
import { abortUpload, completeUpload, createUpload, listUploads, uploadPart } from './s3/multipart.js';
import { listObjectsV2 } from './s3/list.js';
import { deleteObject, deleteObjects, getObjectDirect, isS3Request, putObject, splitBucket } from './s3/s3.js';
import type { UploadStore } from './s3/uploads.js';

export interface MasterDeps {
  config: MasterConfig;
  index: IndexStore;
  writer: Writer;
  volumes: VolumeClient;
  uploads: UploadStore;
  logger: Logger;
  metrics?: Metrics;
}

/** Any path: the key is the whole of it (handlers decode ctx.path themselves). */
const ANY_KEY = '/{*key}';

function requestKey(ctx: Context): string {
  return decodeKey(ctx.path);
}

/** The key of a request that names one key (not a listing prefix). */
function singleKey(ctx: Context): string {
  const key = requestKey(ctx);
  checkKeyFits(key);
  return key;
}

function unknownOperation(ctx: Context): MkvError {
  return new MkvError('MKV_UNKNOWN_OPERATION', `unknown operation ${ctx.method} ?${ctx.querystring}`);
}

/** S3 operations are named by a query parameter; S3-signed requests are answered as S3 answers. */
function isS3Operation(ctx: Context, query: URLSearchParams): boolean {
  return isS3Request(ctx) || ['list-type', 'uploads', 'uploadId', 'delete'].some((name) => query.has(name));
}

/** How long a request with Min-Log-Seq waits for this master's index to reach that seq. */
const MIN_LOG_SEQ_WAIT_MS = 10_000;

function parseSeq(text: string): number {
  if (!/^[0-9]{1,15}$/.test(text)) throw new MkvError('MKV_BAD_REQUEST', `Min-Log-Seq must be a log seq (a non-negative integer), not ${JSON.stringify(text)}`);
  return Number(text);
}

/**
 * Waits until this master's index has applied `seq` (Min-Log-Seq: read a write made through
 * another master, or another worker); 503 if it does not within `timeoutMs`.
 */
export async function waitForSeq(index: IndexStore, seq: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 1; ; pause = Math.min(pause * 2, 20)) {
    index.refresh();
    if (index.checkpoint >= seq) return;
    if (Date.now() >= deadline) {
      throw new MkvError('MKV_LOG_UNAVAILABLE', `this master has applied the log up to seq ${index.checkpoint}, not yet ${seq} (waited ${timeoutMs} ms); try another master or later`);
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/** Counts and (with -v) logs one answered request. */
export function recordRequest(deps: MasterDeps, method: string, path: string, status: number, started: bigint, client: string | null | undefined): void {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  deps.metrics?.countRequest(method, status, seconds);
  deps.logger.debug('request', { method, path, status, ms: seconds * 1000, client });
}

export function createApp(deps: MasterDeps): Koa {
  const app = new Koa();
  const router = new Router();

  router.get(ANY_KEY, async (ctx) => {
    const query = new URLSearchParams(ctx.querystring);
    if (query.get('list-type') === '2') return listObjectsV2(ctx, deps, splitBucket(requestKey(ctx)).bucket, query);
    if (ctx.state.s3 && query.has('uploads')) return listUploads(ctx, deps, splitBucket(requestKey(ctx)).bucket, query);
    if (ctx.state.s3) {
      const key = requestKey(ctx);
      if (splitBucket(key).objectKey === '' && ctx.method === 'HEAD') {
        ctx.status = 200; // HeadBucket: every bucket exists
        return;
      }
      return getObjectDirect(ctx, deps, key);
    }
    if (ctx.querystring === '') return getKey(ctx, deps, singleKey(ctx));
    if (query.has('list')) listKeys(ctx, deps, requestKey(ctx), ['live'], query);
    else if (query.has('unlinked')) listKeys(ctx, deps, requestKey(ctx), ['unlinked', 'pending'], query);
    else if (query.has('history')) keyHistory(ctx, deps, singleKey(ctx));
    else throw unknownOperation(ctx);
  });
  router.put(ANY_KEY, async (ctx) => {
    const query = new URLSearchParams(ctx.querystring);
    if (query.has('uploadId')) return uploadPart(ctx, deps, singleKey(ctx), query);
    if (ctx.state.s3) return putObject(ctx, deps, requestKey(ctx));
    return putKey(ctx, deps, requestKey(ctx));
  });
  router.post(ANY_KEY, async (ctx) => {
    const query = new URLSearchParams(ctx.querystring);
    if (query.has('rebalance')) return rebalanceOne(ctx, deps, singleKey(ctx));
    if (query.has('uploads')) return createUpload(ctx, deps, singleKey(ctx));
    if (query.has('uploadId')) return completeUpload(ctx, deps, singleKey(ctx), query);
    if (query.has('delete')) return deleteObjects(ctx, deps, splitBucket(requestKey(ctx)).bucket);
    throw unknownOperation(ctx);
  });
  router.delete(ANY_KEY, async (ctx) => {
    const query = new URLSearchParams(ctx.querystring);
    if (query.has('uploadId')) return abortUpload(ctx, deps, singleKey(ctx), query);
    if (ctx.state.s3) return deleteObject(ctx, deps, singleKey(ctx));
    return deleteKey(ctx, deps, singleKey(ctx));
  });
  router.register(ANY_KEY, ['UNLINK'], (ctx) => setLinked(ctx, deps, singleKey(ctx), false));
  router.register(ANY_KEY, ['LINK'], (ctx) => setLinked(ctx, deps, singleKey(ctx), true));

  app.use(async (ctx, next) => {
    // Read the client's address now: once a broken request's socket is gone, Koa's ctx.ip throws.
    ctx.state.client = ctx.req.socket?.remoteAddress ?? null;
    ctx.state.s3 = isS3Operation(ctx, new URLSearchParams(ctx.querystring));
    await next();
  });
  // Outside errorResponses, so the log line and the metrics see the status actually sent.
  app.use(async (ctx, next) => {
    const started = process.hrtime.bigint();
    await next().finally(() => recordRequest(deps, ctx.method, ctx.path, ctx.status, started, ctx.state.client as string | null));
  });
  app.use(errorResponses(deps.logger));
  if (deps.config.readOnly) {
    app.use(async (ctx, next) => {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
        throw new MkvError('MKV_READ_ONLY', `this server is read-only: it serves the db as of seq ${deps.index.checkpoint}; write to the live server`);
      }
      await next();
    });
  }
  app.use(async (ctx, next) => {
    const minimum = ctx.get('min-log-seq');
    if (minimum !== '') await waitForSeq(deps.index, parseSeq(minimum), MIN_LOG_SEQ_WAIT_MS);
    await next();
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
