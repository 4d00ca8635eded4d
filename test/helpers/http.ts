// A small HTTP client for tests, on undici (never following redirects unless asked).
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
