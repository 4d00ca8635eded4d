// The one place errors become answers: an MkvError → its status and "CODE: message"; anything
// else → 500 "internal error", logged with the request (the client never sees its text, a path
// or a stack). Handlers throw; they never build error answers by hand. S3 requests get S3's XML
// form of the same error (s3/s3.ts).
import { MkvError } from '../errors.js';
import type { IncomingMessage } from 'node:http';
import { accessKeyOf } from '../auth/authenticate.js';
import type { MasterDeps } from './deps.js';
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

/** The error as an MkvError; logged when it is the server's fault, counted when it is a refusal of credentials. */
export function failure(caught: unknown, deps: MasterDeps, method: string, path: string, request?: IncomingMessage): MkvError {
  const { logger } = deps;
  const error = caught instanceof MkvError ? caught : new MkvError('MKV_INTERNAL', 'internal error', { cause: caught });
  if (error.code === 'MKV_INTERNAL') logger.error('request failed', { method, path, error: caught });
  else if (error.status >= 500) logger.warn('request failed', { method, path, code: error.code, error: error.message });
  else if (AUTH_FAILURES.has(error.code)) {
    deps.metrics?.authFailures.inc({ reason: error.code.slice('MKV_'.length).toLowerCase() });
    const accessKey = request ? accessKeyOf(request) : undefined;
    logger.warn('request refused for its credentials', {
      method,
      path,
      code: error.code,
      reason: error.message,
      accessKey,
      // A request whose socket is gone (the client hung up on its refusal) no longer has one.
      client: (request?.socket as IncomingMessage['socket'] | null | undefined)?.remoteAddress,
    });
  }
  return error;
}

/** The native API's answer to an error. A 404 has no body, as in the original (Content-Length: 0). */
export function errorAnswer(error: MkvError): Answer {
  const headers: Record<string, string> = { 'Mkv-Error': error.code };
  // 401: say how to authenticate (curl -u KEY:SECRET sends Basic; --aws-sigv4 signs).
  if (error.status === 401) headers['WWW-Authenticate'] = 'Basic realm="mkv", charset="UTF-8"';
  return error.status === 404 ? { status: 404, headers } : { status: error.status, headers, body: `${error.code}: ${error.message}\n` };
}
