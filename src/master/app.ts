// createApp(deps): the master's Koa app, which answers every request (handler.ts sends it all
// but the native API's hot verbs). It never listens; cli/server.ts (or a test) serves it.
//
//   request ─▶ request log ─▶ errors ─▶ read-only ─▶ Min-Log-Seq ─▶ router ─▶ S3 (s3/) or native-api.ts
//                                                                                └▶ src/keys: the operations
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import { MkvError } from '../errors.js';
import { readOnlyError } from '../writer/writer.js';
import type { IndexStore } from '../index/index-store.js';
import { applyAnswer, NO_SNIFF } from './answer.js';
import { recordRequest, type MasterDeps } from './deps.js';
import { errorAnswer, recordFailure } from './errors.js';
import { answerNative, type ApiRequest } from './native-api.js';
import { answerS3 } from './s3/router.js';
import { isS3, onS3Port } from './s3-request.js';
import { newRequestId, s3ErrorAnswer } from './s3/errors.js';

/** Any path: the key is the whole of it (decoded and checked at the edge: singleKey, s3CallOf). */
const ANY_KEY = '/{*key}';

const API_METHODS = new Set(['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'UNLINK', 'LINK']);

/** How long a request with Min-Log-Seq waits for this master's index to reach that seq. */
const MIN_LOG_SEQ_WAIT_MS = 10_000;

function parseSeq(text: string): number {
  if (!/^[0-9]{1,15}$/.test(text))
    throw new MkvError('MKV_BAD_REQUEST', `Min-Log-Seq must be a log seq (a non-negative integer), not ${JSON.stringify(text)}`);
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
      throw new MkvError(
        'MKV_LOG_UNAVAILABLE',
        `this master has applied the log up to seq ${index.checkpoint}, not yet ${seq} (waited ${timeoutMs} ms); try another master or later`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

export function createApp(deps: MasterDeps): Koa {
  const app = new Koa();
  const router = new Router();
  const native = async (ctx: Context) => {
    const request: ApiRequest = {
      method: ctx.method,
      rawPath: ctx.path,
      query: ctx.querystring,
      message: ctx.req,
      client: ctx.state.client as string | null,
    };
    const answer = answerNative(deps, request);
    if (answer) applyAnswer(ctx, await answer);
  };

  // An S3 request (s3/router.ts), else the native API (native-api.ts).
  const route = (ctx: Context) => (ctx.state.s3 ? answerS3(ctx, deps) : native(ctx));
  router.get(ANY_KEY, route);
  router.put(ANY_KEY, route);
  router.post(ANY_KEY, route);
  router.delete(ANY_KEY, route);
  router.register(ANY_KEY, ['UNLINK', 'LINK'], native);

  app.use(async (ctx, next) => {
    // Read the client's address now: once a broken request's socket is gone, Koa's ctx.ip throws.
    ctx.state.client = ctx.req.socket?.remoteAddress ?? null;
    ctx.state.s3 = onS3Port(ctx.req) || isS3(ctx.req.headers, ctx.querystring);
    ctx.set(...NO_SNIFF);
    if (ctx.state.s3) {
      ctx.state.requestId = newRequestId();
      ctx.set('x-amz-request-id', ctx.state.requestId as string);
    }
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
      const error = recordFailure(caught, deps, ctx.method, ctx.path, ctx.req);
      applyAnswer(ctx, ctx.state.s3 ? s3ErrorAnswer(error, ctx.path, ctx.state.requestId as string) : errorAnswer(error));
    }
  });
  if (deps.config.readOnly) {
    app.use(async (ctx, next) => {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
        throw readOnlyError(deps.index.checkpoint);
      }
      await next();
    });
  }
  app.use(async (ctx, next) => {
    // Waited for once the request is admitted (handler.ts), and only by a method this API has:
    // another is answered at once (405, 501).
    const minimum = ctx.get('min-log-seq');
    if (minimum !== '' && API_METHODS.has(ctx.method)) await waitForSeq(deps.index, parseSeq(minimum), MIN_LOG_SEQ_WAIT_MS);
    await next();
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
