// The master's client for volume servers (stock nginx, or `mkv volume`): undici keep-alive
// pools for what streams (a large PUT, GETs, listings), and plain sockets (http1.ts) for the
// short requests a blob store sends most: the HEAD of every GET, DELETEs, the PUT of a small
// value. A volume name may carry a subvolume ("host:port/sv07"): that is a path prefix on the
// same server, so it shares the server's connections.
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import { MkvError } from '../errors.js';
import { volumeHost, volumePrefix } from '../placement.js';
import { DEFAULT_CONNECTIONS_PER_VOLUME, defaultConfig } from '../config.js';
import { ShortRequestClient, type ShortAnswer, type ShortMethod } from './http1.js';
import { DISK_PATH, HEALTH_PATH, opOf, signHeaders, signQuery, nginxUri } from './signing.js';

export interface VolumeClientOptions {
  /** How long a HEAD may take before the replica counts as not answering. */
  headTimeoutMs?: number;
  /**
   * How long a volume may go without taking a PUT's data, or take to answer a PUT or DELETE
   * once it has the whole body (undici's headersTimeout, refreshed as the body is written).
   */
  requestTimeoutMs?: number;
  connectionsPerVolume?: number;
  /**
   * The secret the volumes check every request's signed link against (signing.ts); none: the
   * volumes serve anyone, as the original's did.
   */
  secret?: string;
  /** How long the link of a redirect to a volume reads its blob (with `secret`). */
  linkTtlMs?: number;
  /** Told of every failed volume request (for metrics). */
  onFailure?: (volume: string, operation: string, timedOut: boolean) => void;
}

/** Whether a failure was a timeout; `undefined` (a volume that answered, with an error status) was not. */
function isTimeout(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, code } = error as { name?: string; code?: string };
  return (
    name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT'
  );
}

/**
 * A volume request's failure in a few words, for messages a client may read: what happened,
 * not the library's text (the whole error goes to the log as the cause).
 */
export function describeFailure(error: unknown): string {
  const { name, code, message } = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: string;
    code?: string;
    message?: string;
  };
  if (isTimeout(error)) return name === 'TimeoutError' && message ? message.replace(/^[A-Z]+ /, '') : 'timed out';
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused the connection';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return 'closed the connection';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'has a name that does not resolve';
    case 'UND_ERR_ABORTED':
    case 'ABORT_ERR':
      return 'was given up';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'cannot be reached (no route to its host)';
  }
  if (message?.startsWith('the volume ')) return message.slice('the volume '.length); // http1.ts's own words
  return code ? `failed (${code})` : 'failed';
}

/** What a HEAD learned: the blob is there, is not, or the volume did not answer in time. */
export type HeadResult = { status: 'found'; size: number | undefined } | { status: 'missing' } | { status: 'unknown'; reason: string };

/** One entry of a JSON directory listing. */
export interface ListingEntry {
  name: string;
  /** 'file' or 'directory' (nginx also says 'other'). */
  type: string;
  mtime?: string;
  size?: number;
}

/**
 * Drops a response body unread (an error page, or a blob not wanted after all). undici reports a
 * destroyed unfinished body as an 'error' ("Request aborted"): with no listener, that would be an
 * uncaught exception and end the process.
 */
export function discardBody(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** A short body's text, refused past `limit` bytes. */
async function readSmall(body: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > limit) {
      discardBody(body);
      throw new Error(`an answer over ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('latin1');
}

export function volumeUrl(volume: string, path: string): string {
  return `http://${volume}${path}`;
}

/** How long the signature of the master's own request is valid: a volume checks it as the request starts. */
const REQUEST_LINK_TTL_S = 300;

/** How often the deadlines of short requests are checked: one times out within this much after its deadline. */
const DEADLINE_TICK_MS = 100;

interface ShortInFlight {
  method: ShortMethod;
  deadline: number;
  timeoutMs: number;
  /** Ends the request with a timeout (and closes its connection). */
  abort: (error: Error) => void;
}

export class VolumeClient {
  private readonly pools = new Map<string, Pool>();
  private readonly shortClient: ShortRequestClient;
  private readonly inFlight = new Set<ShortInFlight>();
  private deadlineTicker: NodeJS.Timeout | undefined;
  readonly headTimeoutMs: number;
  readonly requestTimeoutMs: number;
  private readonly connections: number;
  private readonly onFailure: VolumeClientOptions['onFailure'];
  private readonly secret: string | undefined;
  private readonly linkTtlMs: number;

  constructor(options: VolumeClientOptions = {}) {
    this.headTimeoutMs = options.headTimeoutMs ?? defaultConfig.voltimeoutMs;
    this.requestTimeoutMs = options.requestTimeoutMs ?? defaultConfig.volumeRequestTimeoutMs;
    this.onFailure = options.onFailure;
    this.connections = options.connectionsPerVolume ?? DEFAULT_CONNECTIONS_PER_VOLUME;
    this.secret = options.secret;
    this.linkTtlMs = options.linkTtlMs ?? defaultConfig.linkTtlMs;
    this.shortClient = new ShortRequestClient(this.connections);
  }

  private pool(volume: string): Pool {
    const host = volumeHost(volume);
    let pool = this.pools.get(host);
    if (!pool) {
      pool = new Pool(`http://${host}`, {
        connections: this.connections,
        keepAliveTimeout: 30_000,
        headersTimeout: this.requestTimeoutMs,
        // A blob may stream slowly, but never stall this long between chunks.
        bodyTimeout: this.requestTimeoutMs,
        connectTimeout: Math.min(this.requestTimeoutMs, 10_000),
      });
      this.pools.set(host, pool);
    }
    return pool;
  }

  /** The path of a request to a volume: its subvolume's prefix and the blob's (or directory's) path. */
  private target(volume: string, path: string): string {
    return volumePrefix(volume) + path;
  }

  /**
   * With a secret, the headers that sign the master's request (signing.ts): in headers, never in
   * the URL, which volumes write into their logs. Valid a few minutes: a volume checks them when
   * the request starts, however long its body takes.
   */
  private signed(method: string, uri: string): Record<string, string> {
    if (!this.secret) return {};
    const op = opOf(method, nginxUri(uri) ?? uri);
    if (op === undefined) throw new Error(`no volume signs ${method} ${uri}`);
    return signHeaders(this.secret, uri, op, Math.ceil(Date.now() / 1000) + REQUEST_LINK_TTL_S);
  }

  /**
   * Where a client reads a blob: the URL a GET redirects to, with a signed query (the only link
   * a volume takes in the URL) that reads this blob, and nothing else, for the link TTL.
   */
  publicUrl(volume: string, path: string): string {
    const url = volumeUrl(volume, path);
    if (!this.secret) return url;
    return `${url}?${signQuery(this.secret, this.target(volume, path), Math.ceil((Date.now() + this.linkTtlMs) / 1000))}`;
  }

  private failed(volume: string, operation: string, error: unknown): void {
    this.onFailure?.(volumeHost(volume), operation, isTimeout(error));
  }

  /**
   * A streamed PUT, whose answer is only its status: undici's dispatch() with a handler that
   * drops the response body as it arrives (request() would wrap it in a stream and a promise).
   */
  private streamedPut(
    volume: string,
    path: string,
    body: Readable,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<number> {
    return new Promise((resolve, reject) => {
      const uri = this.target(volume, path);
      let statusCode = 0;
      let onAbort: (() => void) | undefined;
      const settled = () => {
        if (onAbort) signal!.removeEventListener('abort', onAbort);
      };
      this.pool(volume).dispatch(
        { method: 'PUT', path: uri, body, headers: { ...headers, ...this.signed('PUT', uri) } },
        {
          onRequestStart(controller) {
            if (!signal) return;
            // A request still queued for a connection when the signal fired is aborted here.
            if (signal.aborted) return controller.abort(signal.reason as Error);
            onAbort = () => controller.abort(signal.reason as Error);
            signal.addEventListener('abort', onAbort, { once: true });
          },
          onResponseStart(_controller, code) {
            statusCode = code;
          },
          onResponseData() {},
          onResponseEnd() {
            settled();
            resolve(statusCode);
          },
          onResponseError(_controller, error) {
            settled();
            reject(error);
          },
        },
      );
    });
  }

  /**
   * Sends `body` to the volume — a stream, or a small value whole (one buffer, on a plain
   * socket) — and resolves when the volume has stored it (201/204); throws MKV_VOLUME_FAILED
   * otherwise, as get, list and delete do.
   */
  async put(volume: string, path: string, body: Readable | Buffer, length: number | undefined, signal?: AbortSignal): Promise<void> {
    let statusCode: number;
    if (Buffer.isBuffer(body)) {
      const answer = await this.short(volume, 'PUT', path, this.requestTimeoutMs, body);
      if (answer instanceof Error)
        throw new MkvError('MKV_VOLUME_FAILED', `PUT ${volumeUrl(volume, path)}: the volume ${describeFailure(answer)}`, { cause: answer });
      statusCode = answer.status;
    } else {
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (length !== undefined) headers['content-length'] = String(length);
      try {
        statusCode = await this.streamedPut(volume, path, body, headers, signal);
      } catch (error) {
        // An abort is the master giving up on this write (its reason says why), not the volume
        // failing; neither is the body's own error (a client gone, a body too short).
        if (signal?.aborted || error instanceof MkvError) throw error;
        this.failed(volume, 'put', error);
        throw new MkvError('MKV_VOLUME_FAILED', `PUT ${volumeUrl(volume, path)}: the volume ${describeFailure(error)}`, { cause: error });
      }
    }
    if (statusCode !== 201 && statusCode !== 204 && statusCode !== 200) {
      this.failed(volume, 'put', undefined);
      throw new MkvError('MKV_VOLUME_FAILED', `PUT ${volumeUrl(volume, path)} answered ${statusCode}`);
    }
  }

  /**
   * A short request on a plain socket (http1.ts), ended at its deadline; resolves with the
   * answer, or the Error that kept it from one (counted as the volume's failure).
   */
  private short(volume: string, method: ShortMethod, path: string, timeoutMs: number, body?: Buffer): Promise<ShortAnswer | Error> {
    const uri = this.target(volume, path);
    const { answer, abort } = this.shortClient.request(volumeHost(volume), method, uri, this.signed(method, uri), body);
    const entry: ShortInFlight = { method, deadline: performance.now() + timeoutMs, timeoutMs, abort };
    this.inFlight.add(entry);
    this.startDeadlineTicker();
    return answer.then((result) => {
      this.inFlight.delete(entry);
      if (result instanceof Error) this.failed(volume, method.toLowerCase(), result);
      return result;
    });
  }

  /** HEAD with a deadline; a timeout or connection error is "unknown", never "missing". */
  async head(volume: string, path: string, timeoutMs = this.headTimeoutMs): Promise<HeadResult> {
    const result = await this.short(volume, 'HEAD', path, timeoutMs);
    if (result instanceof Error) return { status: 'unknown', reason: result.message };
    if (result.status === 200) return { status: 'found', size: result.length === undefined ? undefined : Number(result.length) };
    if (result.status === 404) return { status: 'missing' };
    this.failed(volume, 'head', undefined);
    return { status: 'unknown', reason: `HEAD answered ${result.status}` };
  }

  /**
   * Whether a volume serves this master: 'ok', or what is wrong in a few words (refused, timed
   * out, not resolving, or a signature it asks for that the master does not have or does not
   * share). Its listing of / is what it is asked: what the master lists, signed as the master signs.
   */
  async probe(volume: string): Promise<string> {
    const result = await this.short(volume, 'HEAD', '/', this.headTimeoutMs);
    if (result instanceof Error) return describeFailure(result);
    if (result.status === 200 || result.status === 404) {
      // It answers (a root without a listing is 404): as a volume, whose /health says ok? An
      // address typed wrong may be another HTTP server (an admin port), which would take no PUT.
      const health = await this.short(volumeHost(volume), 'HEAD', HEALTH_PATH, this.headTimeoutMs);
      if (health instanceof Error) return describeFailure(health);
      return health.status === 200
        ? 'ok'
        : `answers HTTP, but not as a volume (HEAD ${HEALTH_PATH} answered ${health.status}): is it a volume's address?`;
    }
    if (result.status === 401 || result.status === 403)
      return this.secret
        ? `refuses the master's signature (HEAD answered ${result.status}): its volume secret is not the master's --volume-secret-file`
        : `asks for a signature (HEAD answered ${result.status}): it holds a volume secret, give the master the same one (--volume-secret-file or MKV_VOLUME_SECRET)`;
    return `HEAD answered ${result.status}`;
  }

  /**
   * The free and total bytes of a volume's disk, as it says them at /.disk (signing.ts DISK_PATH),
   * with how old the figures are: undefined when it does not say them (an nginx started without
   * nginx/disk-report, a volume down).
   */
  async disk(volume: string): Promise<{ free: number; size: number; ageMs: number } | undefined> {
    try {
      const answer = await this.get(volume, DISK_PATH, { signal: AbortSignal.timeout(this.headTimeoutMs) });
      if (answer.statusCode !== 200) {
        discardBody(answer.body);
        return undefined;
      }
      const text = await readSmall(answer.body, 200);
      const figures = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
      if (!figures) return undefined;
      const modified = Date.parse(String(answer.headers['last-modified'] ?? ''));
      return {
        free: Number(figures[1]),
        size: Number(figures[2]),
        ageMs: Number.isFinite(modified) ? Math.max(0, Date.now() - modified) : 0,
      };
    } catch {
      return undefined;
    }
  }

  /** Aborts the short requests past their deadline, ten times a second while any is in flight. */
  private startDeadlineTicker(): void {
    if (this.deadlineTicker) return;
    this.deadlineTicker = setInterval(() => {
      const now = performance.now();
      for (const entry of this.inFlight) {
        if (entry.deadline <= now) {
          const error = new Error(`${entry.method} timed out after ${entry.timeoutMs} ms`);
          error.name = 'TimeoutError';
          entry.abort(error);
        }
      }
      if (this.inFlight.size === 0) {
        clearInterval(this.deadlineTicker);
        this.deadlineTicker = undefined;
      }
    }, DEADLINE_TICK_MS);
    this.deadlineTicker.unref();
  }

  /**
   * Opens a blob for reading (optionally a byte range). The caller must consume or destroy the
   * body. Resolves with the volume's answer whatever its status (404: no such blob); throws
   * MKV_VOLUME_FAILED when there is no answer.
   */
  async get(
    volume: string,
    path: string,
    options: { range?: string; signal?: AbortSignal } = {},
  ): Promise<{ statusCode: number; headers: Record<string, string | string[] | undefined>; body: Readable }> {
    try {
      const uri = this.target(volume, path);
      const response = await this.pool(volume).request({
        method: 'GET',
        path: uri,
        headers: { ...(options.range ? { range: options.range } : {}), ...this.signed('GET', uri) },
        signal: options.signal,
      });
      return { statusCode: response.statusCode, headers: response.headers, body: response.body };
    } catch (error) {
      throw new MkvError('MKV_VOLUME_FAILED', `GET ${volumeUrl(volume, path)}: the volume ${describeFailure(error)}`, { cause: error });
    }
  }

  /** A directory's entries, from the volume's JSON listing (nginx autoindex_format json); [] if it does not exist. */
  async list(volume: string, path: string): Promise<ListingEntry[]> {
    const url = volumeUrl(volume, path);
    let statusCode: number;
    let text: string;
    try {
      const uri = this.target(volume, path);
      const response = await this.pool(volume).request({
        method: 'GET',
        path: uri,
        headers: this.signed('GET', uri),
        // The pool bounds connect, headers and each gap in the body; no AbortSignal per listing
        // (its timer and DOMException were a tenth of a rescan's CPU).
      });
      statusCode = response.statusCode;
      text = await response.body.text();
    } catch (error) {
      throw new MkvError('MKV_VOLUME_FAILED', `listing ${url}: the volume ${describeFailure(error)}`, { cause: error });
    }
    if (statusCode === 404) return [];
    if (statusCode !== 200) throw new MkvError('MKV_VOLUME_FAILED', `listing ${url} answered ${statusCode}`);
    try {
      const entries = JSON.parse(text) as ListingEntry[];
      if (!Array.isArray(entries)) throw new Error('not a JSON array');
      return entries;
    } catch (error) {
      throw new MkvError(
        'MKV_VOLUME_FAILED',
        `listing ${url} is not a JSON directory listing (${(error as Error).message}); is autoindex_format json on?`,
      );
    }
  }

  /** Removes the blob; a blob that is already gone counts as removed. */
  async delete(volume: string, path: string): Promise<'deleted' | 'missing'> {
    const answer = await this.short(volume, 'DELETE', path, this.requestTimeoutMs);
    if (answer instanceof Error)
      throw new MkvError('MKV_VOLUME_FAILED', `DELETE ${volumeUrl(volume, path)}: the volume ${describeFailure(answer)}`, {
        cause: answer,
      });
    if (answer.status === 204 || answer.status === 200) return 'deleted';
    if (answer.status === 404) return 'missing';
    this.failed(volume, 'delete', undefined);
    throw new MkvError('MKV_VOLUME_FAILED', `DELETE ${volumeUrl(volume, path)} answered ${answer.status}`);
  }

  async close(): Promise<void> {
    this.shortClient.close();
    await Promise.all([...this.pools.values()].map((pool) => pool.close()));
    this.pools.clear();
  }
}
