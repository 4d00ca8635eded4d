// createApp(deps): the master's Koa app. It never listens; cli/server.ts (or a test) serves it.
//
//   request ─▶ errorResponses ─▶ requestLog ─▶ router ─▶ handler ─▶ writer (lock, append) / index (read)
//                                                              └──▶ volumes (HEAD, PUT, DELETE)
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import { MkvError } from '../errors.js';
import type { IndexStore } from '../index/index-store.js';
import type { Logger } from '../logger.js';
import type { VolumeClient } from '../volumes/client.js';
import type { Writer } from '../writer/writer.js';
import type { MasterConfig } from './config.js';
import { errorResponses } from './errors.js';
import { deleteKey, getKey, keyHistory, listKeys, rebalanceOne, setLinked } from './handlers.js';
import { checkKeyFits, decodeKey } from './keys.js';
import { putKey } from './put.js';

export interface MasterDeps {
  config: MasterConfig;
  index: IndexStore;
  writer: Writer;
  volumes: VolumeClient;
  logger: Logger;
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

export function createApp(deps: MasterDeps): Koa {
  const app = new Koa();
  const router = new Router();

  router.get(ANY_KEY, async (ctx) => {
    if (ctx.querystring === '') {
      await getKey(ctx, deps, singleKey(ctx));
      return;
    }
    const query = new URLSearchParams(ctx.querystring);
    if (query.has('list')) listKeys(ctx, deps, requestKey(ctx), ['live'], query);
    else if (query.has('unlinked')) listKeys(ctx, deps, requestKey(ctx), ['unlinked', 'pending'], query);
    else if (query.has('history')) keyHistory(ctx, deps, singleKey(ctx));
    else throw new MkvError('MKV_UNKNOWN_OPERATION', `unknown operation ?${ctx.querystring}`);
  });
  router.put(ANY_KEY, (ctx) => putKey(ctx, deps, requestKey(ctx)));
  router.post(ANY_KEY, async (ctx) => {
    const query = new URLSearchParams(ctx.querystring);
    if (query.has('rebalance')) await rebalanceOne(ctx, deps, singleKey(ctx));
    else throw new MkvError('MKV_UNKNOWN_OPERATION', `unknown operation POST ?${ctx.querystring}`);
  });
  router.delete(ANY_KEY, (ctx) => deleteKey(ctx, deps, singleKey(ctx)));
  router.register(ANY_KEY, ['UNLINK'], (ctx) => setLinked(ctx, deps, singleKey(ctx), false));
  router.register(ANY_KEY, ['LINK'], (ctx) => setLinked(ctx, deps, singleKey(ctx), true));

  app.use(errorResponses(deps.logger));
  app.use(async (ctx, next) => {
    const started = process.hrtime.bigint();
    await next().finally(() => {
      deps.logger.debug('request', {
        method: ctx.method,
        path: ctx.path,
        status: ctx.status,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
        client: ctx.request.ip,
      });
    });
  });
  if (deps.config.readOnly) {
    app.use(async (ctx, next) => {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
        throw new MkvError('MKV_READ_ONLY', `this server is read-only: it serves the db as of seq ${deps.index.checkpoint}; write to the live server`);
      }
      await next();
    });
  }
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
