// The master's request listener for node:http. The native API's hot verbs — GET, HEAD, PUT,
// DELETE, UNLINK, LINK of a plain key, what a blob store mostly serves — are answered here,
// without Koa's context, middleware and router; everything else goes to the Koa app. Both paths
// run the same handlers (native-api.ts) and write the same Answer, so they send the same bytes.
//
//   request ─▶ hot verb, "/key" with no query, not S3, no Min-Log-Seq, writable? ─yes─▶ answerNative ─▶ writeAnswer
//                                    └─no─▶ Koa (app.ts): S3, queries, read-only, Min-Log-Seq, 405/501
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { MkvError } from '../errors.js';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger.js';
import { writeAnswer } from './answer.js';
import { createApp } from './app.js';
import { recordRequest, type MasterDeps } from './deps.js';
import { errorAnswer, recordFailure } from './errors.js';
import { admit, authenticate, rememberIdentity } from '../auth/authenticate.js';
import { isS3, isS3Client, markS3Port, onS3Port } from './s3-request.js';
import { s3ErrorAnswer } from './s3/errors.js';
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

/**
 * Serves the master on `server`: its requests, and those that ask to be told to go on with their
 * body (Expect: 100-continue), which are admitted first: a refused one is answered without the
 * 100, so its client sends no body.
 */
export function serveMaster(server: Server, deps: MasterDeps, options: HandlerOptions = {}): void {
  const { request, checkContinue } = masterListeners(deps, options);
  server.on('request', request);
  server.on('checkContinue', checkContinue);
  // An Expect other than 100-continue: S3 ignores it, where node:http would answer 417.
  server.on('checkExpectation', request);
}

function masterListeners(deps: MasterDeps, options: HandlerOptions): { request: RequestListener; checkContinue: RequestListener } {
  const koa = createApp(deps).callback();
  const readOnly = deps.config.readOnly;
  const native = options.nativePath !== false && !options.s3;
  /** The request, admitted. */
  const serve = (request: IncomingMessage, response: ServerResponse) => {
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
        const answer = errorAnswer(recordFailure(caught, deps, method, url, request));
        if (!response.headersSent) writeAnswer(request, response, answer);
        answered(answer.status);
      },
    );
  };
  const admittedHere = (request: IncomingMessage, response: ServerResponse) => {
    if (options.s3) markS3Port(request);
    return admitted(deps, request, response);
  };
  return {
    request(request, response) {
      if (admittedHere(request, response)) serve(request, response);
    },
    checkContinue(request, response) {
      if (!admittedHere(request, response)) return;
      response.writeContinue();
      serve(request, response);
    },
  };
}

/** A request target as Koa reads it (absolute-form "http://host/path?query" too), split into its raw path and query. */
function requestTarget(url: string): { rawPath: string; query: string } {
  const origin = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?]*/.exec(url);
  const target = origin ? url.slice(origin[0].length) || '/' : url;
  const at = target.indexOf('?');
  return at === -1 ? { rawPath: target, query: '' } : { rawPath: target.slice(0, at), query: target.slice(at + 1) };
}

/**
 * What happens to every request before anything else: a target with a fragment is refused (a
 * client never sends one; Koa would read the path up to it, while a signature covers all of it);
 * then, with --credentials, the request is authenticated and refused at once if its identity
 * could not be allowed it (admit): no body read, no Min-Log-Seq waited for, no lock. The
 * identity is remembered for the handlers, which ask for the rights they need. Refusals are
 * answered here, as S3 answers for an S3 request, else 401 with WWW-Authenticate (or 403); false then.
 */
function admitted(deps: MasterDeps, request: IncomingMessage, response: ServerResponse): boolean {
  const url = request.url ?? '/';
  const hasFragment = url.includes('#');
  if (!deps.credentials && !hasFragment) return true;
  const { rawPath, query } = requestTarget(url);
  try {
    if (hasFragment) throw new MkvError('MKV_BAD_KEY', 'the request target has a "#": a key holding one is sent as %23');
    const method = request.method ?? 'GET';
    const identity = authenticate(deps.credentials!, { method, rawPath, query, headers: request.headers });
    const s3 = onS3Port(request) || isS3(request.headers, query);
    admit(identity, method, decodeKey(rawPath), new URLSearchParams(query), s3);
    // A presigned URL's x-amz-* query parameters are the request's headers, as S3 reads them.
    if (identity.hoisted) Object.assign(request.headers, identity.hoisted);
    rememberIdentity(request, identity);
    return true;
  } catch (caught) {
    const started = process.hrtime.bigint();
    const error = recordFailure(caught, deps, request.method ?? '', rawPath, request);
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
