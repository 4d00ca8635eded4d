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
import { admit, authenticate, rememberIdentity } from '../auth/authenticate.js';
import type { Credentials } from '../auth/credentials.js';
import { isS3, isS3Client, markS3Port, onS3Port, s3ErrorAnswer } from './s3/s3.js';
import { answerNative } from './native-api.js';
import { decodeKey } from './request-key.js';

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
    !isS3Client(headers) &&
    headers['min-log-seq'] === undefined
  );
}

export interface HandlerOptions {
  /** Answer the hot verbs before Koa (the default); false sends every request through Koa (tests run the API both ways). */
  nativePath?: boolean;
  /** Every request is an S3 one, signed or not (--s3-port): S3 clients that sign nothing get S3's answers, not redirects. */
  s3?: boolean;
}

export function createMasterHandler(deps: MasterDeps, options: HandlerOptions = {}): RequestListener {
  const koa = createApp(deps).callback();
  const readOnly = deps.config.readOnly;
  const native = options.nativePath !== false && !options.s3;
  return (request: IncomingMessage, response: ServerResponse) => {
    if (options.s3) markS3Port(request);
    if (deps.credentials && !admitted(deps, deps.credentials, request, response)) return;
    if (!native || !isHot(request, readOnly)) {
      void koa(request, response); // Koa answers its own errors
      return;
    }
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
        const answer = errorAnswer(failure(caught, deps, method, url, request));
        if (!response.headersSent) writeAnswer(request, response, answer);
        answered(answer.status);
      },
    );
  };
}

/**
 * Authenticates a request (--credentials) before anything else happens to it, and refuses it at
 * once if its identity could not be allowed it (admit): no body read, no Min-Log-Seq waited
 * for, no lock. The identity is remembered for the handlers, which ask for the rights they need.
 * Refusals are answered here, as S3 answers for an S3 request, else 401 with WWW-Authenticate
 * (or 403); false then.
 */
function admitted(deps: MasterDeps, credentials: Credentials, request: IncomingMessage, response: ServerResponse): boolean {
  const url = request.url ?? '/';
  const at = url.indexOf('?');
  const rawPath = at === -1 ? url : url.slice(0, at);
  const query = at === -1 ? '' : url.slice(at + 1);
  try {
    const method = request.method ?? 'GET';
    const identity = authenticate(credentials, { method, rawPath, query, headers: request.headers });
    admit(identity, method, decodeKey(rawPath));
    // A presigned URL's x-amz-* query parameters are the request's headers, as S3 reads them.
    if (identity.hoisted) Object.assign(request.headers, identity.hoisted);
    rememberIdentity(request, identity);
    return true;
  } catch (caught) {
    const started = process.hrtime.bigint();
    const error = failure(caught, deps, request.method ?? '', rawPath, request);
    writeAnswer(request, response, onS3Port(request) || isS3(request.headers, query) ? s3ErrorAnswer(error, rawPath) : errorAnswer(error));
    recordRequest(deps, request.method ?? '', rawPath, error.status, started, request.socket?.remoteAddress);
    return false;
  }
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
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
    );
  });
}
