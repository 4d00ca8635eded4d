// An answer to a request as plain data: its status, headers and text body. The native API's
// handlers return one; node:http (handler.ts) and Koa (app.ts) each write it the same way, so
// either path sends the same bytes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'koa';

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  /** Text; none for 204. */
  body?: string;
  /** Content-Type of the body (text/plain by default). */
  type?: string;
}

/** The Content-Type Koa gives a text body, and every native answer has. */
const TEXT = 'text/plain; charset=utf-8';

/** Whether the request's body was not read to its end: closing beats reading a gigabyte for nothing. */
function unread(request: IncomingMessage): boolean {
  return !request.complete;
}

/** On every answer: a browser shown an error that echoes a key takes it for what its type says, never for HTML. */
export const NO_SNIFF = ['X-Content-Type-Options', 'nosniff'] as const;

/** Writes an answer on node:http, with the headers Koa would add (handler.ts's native path). */
export function writeAnswer(request: IncomingMessage, response: ServerResponse, answer: Answer): void {
  response.statusCode = answer.status;
  response.setHeader(...NO_SNIFF);
  if (answer.headers) for (const name in answer.headers) response.setHeader(name, answer.headers[name]!);
  if (unread(request)) response.setHeader('Connection', 'close');
  if (answer.status === 204) {
    response.end();
    return;
  }
  const body = answer.body ?? '';
  response.setHeader('Content-Type', answer.type ?? TEXT);
  response.setHeader('Content-Length', Buffer.byteLength(body));
  response.end(request.method === 'HEAD' ? undefined : body);
}

/** Sets an answer on Koa's context (app.ts). */
export function applyAnswer(ctx: Context, answer: Answer): void {
  ctx.status = answer.status;
  if (answer.headers) ctx.set(answer.headers);
  if (unread(ctx.req)) ctx.set('Connection', 'close');
  if (answer.status === 204) return;
  ctx.type = answer.type ?? TEXT;
  ctx.body = answer.body ?? '';
}
