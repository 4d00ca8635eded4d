// GET/HEAD of a plain key — the request a blob store answers most — on node:http directly,
// without Koa's context, router and middleware (the same lookup as the Koa route: locateKey).
//
//   request ─▶ GET/HEAD, "/key" with no query, not S3-signed? ─yes─▶ locateKey ─▶ 302 / 404
//                                   └─no, or a bad key, or an unexpected error─▶ the Koa app
//
// It answers with the same status, headers and (empty) body as the Koa route; anything it does
// not answer itself goes to Koa untouched, which also renders every error but "no such key".
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { createApp, recordRequest, type MasterDeps } from './app.js';
import { locateKey } from './handlers.js';
import { checkKeyFits, decodeKey } from './keys.js';

/** Koa's type for an empty string body. */
const EMPTY_TYPE = 'text/plain; charset=utf-8';

function plainKeyRead(request: IncomingMessage): boolean {
  const { method, url, headers } = request;
  return (
    (method === 'GET' || method === 'HEAD') &&
    url !== undefined &&
    url.charCodeAt(0) === 47 /* / */ &&
    !url.includes('?') &&
    !url.includes('#') &&
    headers.authorization === undefined &&
    headers['min-log-seq'] === undefined
  );
}

/** The master's request listener for node:http: GET/HEAD of a plain key on the fast path, the rest through Koa. */
export function createHandler(deps: MasterDeps): RequestListener {
  return withFastGet(deps, createApp(deps).callback());
}

export function withFastGet(deps: MasterDeps, koa: RequestListener): RequestListener {
  return (request: IncomingMessage, response: ServerResponse) => {
    if (!plainKeyRead(request)) return koa(request, response);
    const path = request.url!;
    let key: string;
    try {
      key = decodeKey(path);
      checkKeyFits(key);
    } catch {
      return koa(request, response); // Koa renders the 400
    }
    const started = process.hrtime.bigint();
    const answer = (status: number) => {
      response.statusCode = status;
      response.setHeader('Content-Type', EMPTY_TYPE);
      response.setHeader('Content-Length', 0);
      response.end();
      recordRequest(deps, request.method!, path, status, started, request.socket.remoteAddress);
    };
    locateKey(deps, key, path, (name, value) => response.setHeader(name, value)).then(
      (location) => {
        if (location === undefined) {
          response.setHeader('Mkv-Error', 'MKV_NOT_FOUND');
          answer(404);
        } else {
          response.setHeader('Location', location);
          answer(302);
        }
      },
      () => {
        // Rare (the index failed): let Koa try again and render the error as it renders all others.
        for (const name of response.getHeaderNames()) response.removeHeader(name);
        koa(request, response);
      },
    );
  };
}
