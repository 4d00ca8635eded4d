// The one place errors become answers: an MkvError → its status and "CODE: message"; anything
// else → 500 "internal error", logged with the request (the client never sees its text, a path
// or a stack). Handlers throw; they never build error answers by hand. S3 requests get S3's XML
// form of the same error (s3/errors.ts).
import { MkvError } from '../errors.js';
import type { IncomingMessage } from 'node:http';
import { accessKeyOf } from '../auth/authenticate.js';
import type { MasterDeps } from './deps.js';
import type { Logger } from '../logger.js';
import type { Answer } from './answer.js';

/** Refusals for the request's credentials: counted (mkv_auth_failures_total) and logged with the access key, never a secret. */
const AUTH_FAILURES = new Set<string>([
  'MKV_UNAUTHENTICATED',
  'MKV_SIGNATURE',
  'MKV_UNKNOWN_ACCESS_KEY',
  'MKV_TIME_SKEWED',
  'MKV_ACCESS_DENIED',
  'MKV_AUTH_MALFORMED',
  'MKV_CONTENT_SHA256_MISMATCH',
]);

/** Whether an error refuses the request's credentials (or what they may do). */
export function isAuthFailure(error: MkvError): boolean {
  return AUTH_FAILURES.has(error.code);
}

/** Records a request's failure (logged when it is the server's fault, counted and logged once when it refuses credentials) and returns it as an MkvError. */
export function recordFailure(caught: unknown, deps: MasterDeps, method: string, path: string, request?: IncomingMessage): MkvError {
  const { logger } = deps;
  const error = caught instanceof MkvError ? caught : new MkvError('MKV_INTERNAL', 'internal error', { cause: caught });
  if (error.code === 'MKV_INTERNAL') logger.error('request failed', { method, path: clip(path), error: caught });
  else if (error.status >= 500) logger.warn('request failed', { method, path: clip(path), code: error.code, error: error.message });
  else if (AUTH_FAILURES.has(error.code)) {
    deps.metrics?.authFailures.inc({ reason: error.code.slice('MKV_'.length).toLowerCase() });
    logRefusal(logger, {
      method,
      path: clip(path),
      code: error.code,
      reason: clip(error.message),
      // Only a name this server knows: a client that swapped its key and secret sent the secret there.
      accessKey: request ? accessKeyOf(request, deps.credentials) : undefined,
      // A request whose socket is gone (the client hung up on its refusal) no longer has one.
      client: (request?.socket as IncomingMessage['socket'] | null | undefined)?.remoteAddress,
    });
  }
  return error;
}

/** What a log line holds of a client's text (a path, a message that quotes it): a client cannot fill the logs with it. */
function clip(text: string, length = 256): string {
  return text.length <= length ? text : `${text.slice(0, length)}… (${text.length} characters)`;
}

/** Refusals logged one by one each second; past that, counted and said in one line (with the next refusal after it). */
const REFUSALS_LOGGED_PER_SECOND = 20;
const refusalWindows = new WeakMap<Logger, { second: number; logged: number; unlogged: number }>();

/**
 * Logs a refusal of credentials, at most REFUSALS_LOGGED_PER_SECOND a second: anyone can send
 * refused requests as fast as the master answers them, and each is a line (mkv_auth_failures_total
 * counts every one).
 */
function logRefusal(logger: Logger, fields: Record<string, unknown>): void {
  const second = Math.floor(Date.now() / 1000);
  let window = refusalWindows.get(logger);
  if (!window) refusalWindows.set(logger, (window = { second, logged: 0, unlogged: 0 }));
  if (window.second !== second) {
    if (window.unlogged > 0)
      logger.warn('more requests were refused for their credentials than are logged one by one', {
        unlogged: window.unlogged,
        second: new Date(window.second * 1000).toISOString(),
      });
    window.second = second;
    window.logged = 0;
    window.unlogged = 0;
  }
  if (window.logged++ < REFUSALS_LOGGED_PER_SECOND) logger.warn('request refused for its credentials', fields);
  else window.unlogged++;
}

/**
 * What a client is told of the server's own failures: what failed, never where. Their messages
 * name a volume's address, a blob's path, a log file or the JetStream server; the master's log
 * line (recordFailure) has them for the operator. A 501 (what is not done) and a 507 (a full
 * disk) say all they say to anyone.
 */
const SERVER_FAILURES: Record<string, string> = {
  MKV_VOLUME_FAILED: "a volume failed to serve this request (the master's log says which, and how)",
  MKV_LOG_UNAVAILABLE: "the event log cannot be written now (the master's log says why)",
  MKV_CORRUPT_LOG: "the event log is damaged (the master's log says where)",
  MKV_INDEX_AHEAD: "the index is ahead of the event log (the master's log says how)",
  MKV_INDEX_TORN: "the index is damaged (the master's log says how)",
  MKV_INDEX_FORMAT: "the index is in a format this master does not read (the master's log says which)",
  MKV_DB_LOCKED: 'the database is locked by another process',
};

/** An error's message as a client gets it: the server's own failures without their details (SERVER_FAILURES). */
export function clientMessage(error: MkvError): string {
  if (error.status < 500 || error.status === 501 || error.status === 507) return error.message;
  return SERVER_FAILURES[error.code] ?? 'internal error';
}

/** The native API's answer to an error. A 404 has no body, as in the original (Content-Length: 0). */
export function errorAnswer(error: MkvError): Answer {
  const headers: Record<string, string> = { 'Mkv-Error': error.code };
  // 401: say how to authenticate (curl -u KEY:SECRET sends Basic; --aws-sigv4 signs).
  if (error.status === 401) headers['WWW-Authenticate'] = 'Basic realm="mkv", charset="UTF-8"';
  return error.status === 404
    ? { status: 404, headers }
    : { status: error.status, headers, body: `${error.code}: ${clientMessage(error)}\n` };
}
