// The one place errors become responses: MkvError → its status and "CODE: message"; anything
// else → 500, logged with the request. Handlers throw; they never build error responses.
import type { Context, Next } from 'koa';
import { MkvError } from '../errors.js';
import type { Logger } from '../logger.js';
import { s3ErrorResponse } from './s3/s3.js';

export function errorResponses(logger: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next();
    } catch (caught) {
      const error =
        caught instanceof MkvError ? caught : new MkvError('MKV_INTERNAL', 'internal error', { cause: caught });
      if (error.code === 'MKV_INTERNAL') {
        logger.error('request failed', { method: ctx.method, path: ctx.path, error: caught });
      } else if (error.status >= 500) {
        logger.warn('request failed', { method: ctx.method, path: ctx.path, code: error.code, error: error.message });
      }
      if (ctx.state.s3) {
        s3ErrorResponse(ctx, error);
        return;
      }
      ctx.status = error.status;
      ctx.set('Mkv-Error', error.code);
      // A 404 has no body, as in the original (Content-Length: 0).
      if (error.status === 404) {
        ctx.body = '';
      } else {
        ctx.type = 'text/plain';
        ctx.body = `${error.code}: ${error.message}\n`;
      }
    }
  };
}
