// A small HTTP client for tests, on undici (never following redirects unless asked).
import { connect } from 'node:net';
import { request } from 'undici';

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  text: string;
}

export async function http(
  method: string,
  url: string,
  body?: string | Buffer | NodeJS.ReadableStream,
  headers: Record<string, string> = {},
  /** Fail rather than wait longer than this for the answer (undici's default is 5 minutes). */
  timeoutMs?: number,
): Promise<Reply> {
  const limits = timeoutMs === undefined ? {} : { headersTimeout: timeoutMs, bodyTimeout: timeoutMs };
  const response = await request(url, { method, body: body as never, headers, ...limits });
  const data = Buffer.from(await response.body.arrayBuffer());
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) flat[name] = Array.isArray(value) ? value.join(', ') : String(value);
  return { status: response.statusCode, headers: flat, body: data, text: data.toString('utf8') };
}

/** GET following the master's redirect to the volume, as `curl -L` does. */
export async function getFollowing(url: string): Promise<Reply> {
  const first = await http('GET', url);
  if (first.status !== 302) return first;
  return http('GET', first.headers.location!);
}

/**
 * Sends `head` (and `body`) as they are on a new connection, and resolves with what the server
 * answered before it closed, or what it had answered after `waitMs` (for requests no client
 * library sends: a raw "#" in the target, an Expect: 100-continue whose body never comes).
 */
export function rawExchange(port: number, head: string, body?: Buffer | string, waitMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('close', done);
    socket.on('error', (error) => (answer === '' ? reject(error) : done()));
    socket.write(head);
    if (body !== undefined) socket.write(body);
  });
}
