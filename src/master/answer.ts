// An answer to a request as plain data: its status, headers and body. The native API's and
// S3's handlers return one; node:http (handler.ts) and Koa (app.ts) each write it the same way,
// so either path sends the same bytes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline, Readable } from 'node:stream';
import type { Context } from 'koa';

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  /**
   * Text, or a value's bytes as a stream (its Content-Length and Content-Type in `headers`).
   * None for 204 and 304, and for a HEAD that states the Content-Length a GET would send.
   */
  body?: string | Readable;
  /** Content-Type of a text body (else the one `headers` give; else text/plain). */
  type?: string;
}

/** The Content-Type Koa gives a text body, and every native answer has. */
const TEXT = 'text/plain; charset=utf-8';

/** How much of a refused body is read and dropped, and for how long, before the connection is cut. */
const DROP_BYTES = 8 * 1024 * 1024;
const DROP_MS = 10_000;

/**
 * What an answer does with a body it did not read to its end. One never read at all (a refusal
 * before it, a key that exists) is read and dropped after the answer, up to DROP_BYTES within
 * DROP_MS, the connection kept: closing a socket with bytes still arriving resets it, and a
 * client still sending then loses the answer (curl: "Send failure: Broken pipe", no status),
 * while a client that sees the answer stops sending. A body read in part (it stalled or failed
 * its check) is cut off at once: Connection: close. Returns whether the connection closes.
 */
function settleUnread(request: IncomingMessage): boolean {
  if (request.complete) return false;
  if (request.readableDidRead || request.destroyed || !request.socket) return true;
  const socket = request.socket;
  let dropped = 0;
  const timer = setTimeout(() => socket.destroy(), DROP_MS);
  timer.unref();
  request.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > DROP_BYTES) socket.destroy();
  });
  request.once('end', () => clearTimeout(timer));
  request.once('close', () => clearTimeout(timer));
  request.resume();
  return false;
}

/** On every answer: a browser shown an error that echoes a key takes it for what its type says, never for HTML. */
export const NO_SNIFF = ['X-Content-Type-Options', 'nosniff'] as const;

/** Writes an answer on node:http, with the headers Koa would add (handler.ts's native path). */
export function writeAnswer(request: IncomingMessage, response: ServerResponse, answer: Answer): void {
  response.statusCode = answer.status;
  response.setHeader(...NO_SNIFF);
  if (answer.headers) for (const name in answer.headers) response.setHeader(name, answer.headers[name]!);
  if (settleUnread(request)) response.setHeader('Connection', 'close');
  if (answer.status === 204 || answer.status === 304) {
    response.end();
    return;
  }
  const body = answer.body ?? '';
  if (body instanceof Readable) {
    pipeline(body, response, () => undefined); // a body that breaks off cuts the connection
    return;
  }
  if (answer.type !== undefined || !response.hasHeader('Content-Type')) response.setHeader('Content-Type', answer.type ?? TEXT);
  response.setHeader('Content-Length', Buffer.byteLength(body));
  response.end(request.method === 'HEAD' ? undefined : body);
}

/** Sets an answer on Koa's context (app.ts). */
export function applyAnswer(ctx: Context, answer: Answer): void {
  ctx.status = answer.status;
  if (answer.headers) ctx.set(answer.headers);
  if (settleUnread(ctx.req)) ctx.set('Connection', 'close');
  if (answer.status === 204 || answer.status === 304) return;
  // A stream keeps the Content-Length and Content-Type its headers give; so does a HEAD with none.
  if (answer.body instanceof Readable) ctx.body = answer.body;
  else if (answer.body === undefined && ctx.method === 'HEAD' && ctx.res.hasHeader('Content-Length')) return;
  else {
    if (answer.type !== undefined || !ctx.res.hasHeader('Content-Type')) ctx.type = answer.type ?? TEXT;
    ctx.body = answer.body ?? '';
  }
}
