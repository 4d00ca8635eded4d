// createApp(deps): the master's Koa app, which answers every request (handler.ts sends it all
// but the native API's hot verbs). It never listens; cli/server.ts (or a test) serves it.
//
//   request ─▶ request log ─▶ errors ─▶ read-only ─▶ Min-Log-Seq ─▶ router ─▶ S3 (s3/) or native-api.ts
//                                                                                └▶ src/keys: the operations
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import { MkvError } from '../errors.js';
import type { IndexStore } from '../index/index-store.js';
import { authorize, identityOf } from '../auth/authenticate.js';
import { applyAnswer } from './answer.js';
import { recordRequest, type MasterDeps } from './deps.js';
import { errorAnswer, failure } from './errors.js';
import { answerNative, singleKey, type ApiRequest } from './native-api.js';
import { decodeKey } from './request-key.js';
import { abortUpload, completeUpload, createUpload, listUploads, uploadPart } from './s3/multipart.js';
import { listObjectsV2 } from './s3/list.js';
import { deleteObject, deleteObjects, getObjectDirect, isS3, putObject, s3ErrorAnswer, splitBucket } from './s3/s3.js';

/** Any path: the key is the whole of it (handlers decode ctx.path themselves). */
const ANY_KEY = '/{*key}';

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

export function createApp(deps: MasterDeps): Koa {
  const app = new Koa();
  const router = new Router();
  const bucketOf = (ctx: Context) => splitBucket(decodeKey(ctx.path)).bucket;
  const native = async (ctx: Context) => {
    const request: ApiRequest = { method: ctx.method, rawPath: ctx.path, query: ctx.querystring, message: ctx.req, client: ctx.state.client as string | null };
    const answer = answerNative(deps, request);
    if (answer) applyAnswer(ctx, await answer);
  };

  router.get(ANY_KEY, async (ctx) => {
    if (!ctx.state.s3) return native(ctx);
    const query = new URLSearchParams(ctx.querystring);
    if (query.get('list-type') === '2') return listObjectsV2(ctx, deps, bucketOf(ctx), query);
    if (query.has('uploads')) return listUploads(ctx, deps, bucketOf(ctx), query);
    const key = decodeKey(ctx.path);
    if (splitBucket(key).objectKey === '' && ctx.method === 'HEAD') {
      authorize(identityOf(ctx.req), 'list', key);
      ctx.status = 200; // HeadBucket: every bucket exists
      return;
    }
    return getObjectDirect(ctx, deps, key);
  });
  router.put(ANY_KEY, async (ctx) => {
    const query = new URLSearchParams(ctx.querystring);
    if (query.has('uploadId')) return uploadPart(ctx, deps, singleKey(ctx.path), query);
    if (ctx.state.s3) return putObject(ctx, deps, decodeKey(ctx.path));
    return native(ctx);
  });
  router.post(ANY_KEY, async (ctx) => {
    const query = new URLSearchParams(ctx.querystring);
    if (query.has('uploads')) return createUpload(ctx, deps, singleKey(ctx.path));
    if (query.has('uploadId')) return completeUpload(ctx, deps, singleKey(ctx.path), query);
    if (query.has('delete')) return deleteObjects(ctx, deps, bucketOf(ctx));
    return native(ctx);
  });
  router.delete(ANY_KEY, async (ctx) => {
    const query = new URLSearchParams(ctx.querystring);
    if (query.has('uploadId')) return abortUpload(ctx, deps, singleKey(ctx.path), query);
    if (ctx.state.s3) return deleteObject(ctx, deps, singleKey(ctx.path));
    return native(ctx);
  });
  router.register(ANY_KEY, ['UNLINK', 'LINK'], native);

  app.use(async (ctx, next) => {
    // Read the client's address now: once a broken request's socket is gone, Koa's ctx.ip throws.
    ctx.state.client = ctx.req.socket?.remoteAddress ?? null;
    ctx.state.s3 = isS3(ctx.req.headers, ctx.querystring);
    await next();
  });
  // Outside the error answers, so the log line and the metrics see the status actually sent.
  app.use(async (ctx, next) => {
    const started = process.hrtime.bigint();
    await next().finally(() => recordRequest(deps, ctx.method, ctx.path, ctx.status, started, ctx.state.client as string | null));
  });
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (caught) {
      const error = failure(caught, deps, ctx.method, ctx.path, ctx.req);
      applyAnswer(ctx, ctx.state.s3 ? s3ErrorAnswer(error, ctx.path) : errorAnswer(error));
    }
  });
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
