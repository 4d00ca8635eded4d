// The one place errors become answers: an MkvError → its status and "CODE: message"; anything
// else → 500 "internal error", logged with the request (the client never sees its text, a path
// or a stack). Handlers throw; they never build error answers by hand. S3 requests get S3's XML
// form of the same error (s3/s3.ts).
import { MkvError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Answer } from './answer.js';

/** The error as an MkvError, logged when it is the server's fault. */
export function failure(caught: unknown, logger: Logger, method: string, path: string): MkvError {
  const error = caught instanceof MkvError ? caught : new MkvError('MKV_INTERNAL', 'internal error', { cause: caught });
  if (error.code === 'MKV_INTERNAL') logger.error('request failed', { method, path, error: caught });
  else if (error.status >= 500) logger.warn('request failed', { method, path, code: error.code, error: error.message });
  return error;
}

/** The native API's answer to an error. A 404 has no body, as in the original (Content-Length: 0). */
export function errorAnswer(error: MkvError): Answer {
  const headers = { 'Mkv-Error': error.code };
  return error.status === 404 ? { status: 404, headers } : { status: error.status, headers, body: `${error.code}: ${error.message}\n` };
}
