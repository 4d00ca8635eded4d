// The master's request listener for node:http. The native API's hot verbs — GET, HEAD, PUT,
// DELETE, UNLINK, LINK of a plain key, what a blob store mostly serves — are answered here,
// without Koa's context, middleware and router; everything else goes to the Koa app. Both paths
// run the same handlers (native-api.ts) and write the same Answer, so they send the same bytes.
//
//   request ─▶ hot verb, "/key" with no query, not S3, no Min-Log-Seq, writable? ─yes─▶ answerNative ─▶ writeAnswer
//                                    └─no─▶ Koa (app.ts): S3, queries, read-only, Min-Log-Seq, 405/501
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger.js';
import { writeAnswer } from './answer.js';
import { createApp } from './app.js';
import { recordRequest, type MasterDeps } from './deps.js';
import { errorAnswer, failure } from './errors.js';
import { answerNative } from './native-api.js';

const HOT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'UNLINK', 'LINK']);
const READS = new Set(['GET', 'HEAD']);

function isHot(request: IncomingMessage, readOnly: boolean): boolean {
  const { method, url, headers } = request;
  return (
    method !== undefined &&
    HOT_METHODS.has(method) &&
    (!readOnly || READS.has(method)) &&
    url !== undefined &&
    url.charCodeAt(0) === 47 /* / */ &&
    !url.includes('?') &&
    !url.includes('#') &&
    headers.authorization === undefined &&
    headers['min-log-seq'] === undefined
  );
}

export interface HandlerOptions {
  /** Answer the hot verbs before Koa (the default); false sends every request through Koa (tests run the API both ways). */
  nativePath?: boolean;
}

export function createMasterHandler(deps: MasterDeps, options: HandlerOptions = {}): RequestListener {
  const koa = createApp(deps).callback();
  if (options.nativePath === false) return koa;
  const readOnly = deps.config.readOnly;
  return (request: IncomingMessage, response: ServerResponse) => {
    if (!isHot(request, readOnly)) return koa(request, response);
    const started = process.hrtime.bigint();
    const { method, url } = request as { method: string; url: string };
    // Read now: once a broken request's socket is gone, it no longer says.
    const client = request.socket.remoteAddress ?? null;
    const answered = (status: number) => recordRequest(deps, method, url, status, started, client);
    answerNative(deps, { method, rawPath: url, query: '', message: request, client })!.then(
      (answer) => {
        writeAnswer(request, response, answer);
        answered(answer.status);
      },
      (caught: unknown) => {
        const answer = errorAnswer(failure(caught, deps.logger, method, url));
        if (!response.headersSent) writeAnswer(request, response, answer);
        answered(answer.status);
      },
    );
  };
}

/** What a request too broken to parse gets, by the parser's code (as node:http answers by default). */
function clientErrorStatus(code: string | undefined): number {
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  return 400;
}

/**
 * Requests node:http cannot parse (a malformed head, an unknown method, a broken chunked body,
 * a head too large): answered as node:http does, logged as one JSON line (-v), never a trace.
 */
export function answerClientErrors(server: Server, logger: Logger): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    logger.debug('a request could not be parsed', { code: error.code, reason: error.message });
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = clientErrorStatus(error.code);
    socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
}
