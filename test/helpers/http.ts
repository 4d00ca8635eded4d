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
 * answered: once a whole final response has come (its Content-Length of body, or the last
 * chunk), when the server closes, or else with what it had answered after `waitMs` (for
 * requests no client library sends: a raw "#" in the target, an Expect: 100-continue whose body
 * never comes).
 */
/** Whether `text` holds a whole final response (interim 1xx ones before it passed over). */
function wholeResponse(text: string): boolean {
  let rest = text;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) return false;
    const head = rest.slice(0, end);
    const body = rest.slice(end + 4);
    if (/^HTTP\/1\.[01] 1\d\d /.test(head)) {
      rest = body;
      continue;
    }
    if (/^HTTP\/1\.[01] (204|304) /.test(head)) return true;
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (length) return body.length >= Number(length[1]);
    if (/\r\ntransfer-encoding: *chunked/i.test(head)) return /(^|\r\n)0\r\n\r\n$/.test(body);
    return false; // a body that ends when the connection closes
  }
}

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
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (wholeResponse(answer)) done();
    });
    socket.on('close', done);
    socket.on('error', (error) => (answer === '' ? reject(error) : done()));
    socket.write(head);
    if (body !== undefined) socket.write(body);
  });
}
