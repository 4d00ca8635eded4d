// The master's client for volume servers (stock nginx, or `mkv volume`): one undici keep-alive
// pool per server for PUT, GET, DELETE and listings, and the HeadClient for the HEAD of every
// GET. A volume name may carry a subvolume ("host:port/sv07"): that is a path prefix on the
// same server, so it shares the server's connections.
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import { MkvError } from '../errors.js';
import { volumeHost, volumePrefix } from '../placement.js';
import { HeadClient } from './head-client.js';

export interface VolumeClientOptions {
  /** How long a HEAD may take before the replica counts as not answering. */
  headTimeoutMs?: number;
  /**
   * How long a volume may go without taking a PUT's data, or take to answer a PUT or DELETE
   * once it has the whole body (undici's headersTimeout, refreshed as the body is written).
   */
  requestTimeoutMs?: number;
  connectionsPerVolume?: number;
  /** Told of every failed volume request (for metrics). */
  onFailure?: (volume: string, operation: string, timedOut: boolean) => void;
}

function isTimeout(error: unknown): boolean {
  const { name, code } = error as { name?: string; code?: string };
  return name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
}

/** What a HEAD learned: the blob is there, is not, or the volume did not answer in time. */
export type HeadResult = { status: 'found'; size: number | undefined } | { status: 'missing' } | { status: 'unknown'; reason: string };

/** One entry of a JSON directory listing. */
export interface ListingEntry {
  name: string;
  type: 'file' | 'directory' | string;
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

export function volumeUrl(volume: string, path: string): string {
  return `http://${volume}${path}`;
}

/** How often HEAD deadlines are checked: a HEAD times out within this much after its deadline. */
const HEAD_TICK_MS = 100;

interface HeadInFlight {
  deadline: number;
  timeoutMs: number;
  /** Ends the HEAD as "unknown" (and closes its connection). */
  abort: (error: Error) => void;
}

export class VolumeClient {
  private readonly pools = new Map<string, Pool>();
  private readonly headClient: HeadClient;
  private readonly heads = new Set<HeadInFlight>();
  private headTicker: NodeJS.Timeout | undefined;
  readonly headTimeoutMs: number;
  readonly requestTimeoutMs: number;
  private readonly connections: number;
  private readonly onFailure: VolumeClientOptions['onFailure'];

  constructor(options: VolumeClientOptions = {}) {
    this.headTimeoutMs = options.headTimeoutMs ?? 1000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.onFailure = options.onFailure;
    this.connections = options.connectionsPerVolume ?? 128;
    this.headClient = new HeadClient(this.connections);
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

  private failed(volume: string, operation: string, error: unknown): void {
    this.onFailure?.(volumeHost(volume), operation, isTimeout(error));
  }

  /**
   * A request whose answer is only its status (PUT, DELETE): undici's dispatch() with a handler
   * that drops the response body as it arrives. request() wraps every answer in a stream and a
   * promise: 66-70 µs of CPU a request here against 49-55 µs this way (PUT and DELETE pairs to
   * one nginx, 20,000 of each, side by side).
   */
  private status(volume: string, method: 'PUT' | 'DELETE', path: string, options: { body?: Readable | Buffer; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<number> {
    const { body, headers, signal } = options;
    return new Promise((resolve, reject) => {
      let statusCode = 0;
      let onAbort: (() => void) | undefined;
      const settled = () => {
        if (onAbort) signal!.removeEventListener('abort', onAbort);
      };
      this.pool(volume).dispatch(
        { method, path: volumePrefix(volume) + path, body, headers },
        {
          onRequestStart(controller) {
            if (!signal) return;
            // A request still queued for a connection when the signal fired is aborted here.
            if (signal.aborted) return controller.abort(signal.reason);
            onAbort = () => controller.abort(signal.reason);
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

  /** Sends `body` (a stream, or a small value whole) to the volume; resolves when the volume has stored it (201/204). */
  async put(volume: string, path: string, body: Readable | Buffer, length: number | undefined, signal?: AbortSignal): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (length !== undefined) headers['content-length'] = String(length);
    let statusCode: number;
    try {
      statusCode = await this.status(volume, 'PUT', path, { body, headers, ...(signal ? { signal } : {}) });
    } catch (error) {
      // An abort is the master giving up on this write, not the volume failing.
      if (!signal?.aborted) this.failed(volume, 'put', error);
      throw error;
    }
    if (statusCode !== 201 && statusCode !== 204 && statusCode !== 200) {
      this.failed(volume, 'put', undefined);
      throw new MkvError('MKV_VOLUME_FAILED', `PUT ${volumeUrl(volume, path)} answered ${statusCode}`);
    }
  }

  /**
   * HEAD with a deadline; a timeout or connection error is "unknown", never "missing".
   * The hot path of every GET: it goes through the HeadClient (plain keep-alive sockets, less
   * CPU per HEAD than undici) and one shared ticker for deadlines.
   */
  head(volume: string, path: string, timeoutMs = this.headTimeoutMs): Promise<HeadResult> {
    const { answer, abort } = this.headClient.head(volumeHost(volume), volumePrefix(volume) + path);
    const inFlight: HeadInFlight = { deadline: performance.now() + timeoutMs, timeoutMs, abort };
    this.heads.add(inFlight);
    this.startHeadTicker();
    return answer.then((result): HeadResult => {
      this.heads.delete(inFlight);
      if (result instanceof Error) {
        this.failed(volume, 'head', result);
        return { status: 'unknown', reason: result.message };
      }
      if (result.status === 200) return { status: 'found', size: result.length === undefined ? undefined : Number(result.length) };
      if (result.status === 404) return { status: 'missing' };
      this.failed(volume, 'head', undefined);
      return { status: 'unknown', reason: `HEAD answered ${result.status}` };
    });
  }

  /** Aborts the HEADs past their deadline, ten times a second while any is in flight. */
  private startHeadTicker(): void {
    if (this.headTicker) return;
    this.headTicker = setInterval(() => {
      const now = performance.now();
      for (const inFlight of this.heads) {
        if (inFlight.deadline <= now) {
          const error = new Error(`HEAD timed out after ${inFlight.timeoutMs} ms`);
          error.name = 'TimeoutError';
          inFlight.abort(error);
        }
      }
      if (this.heads.size === 0) {
        clearInterval(this.headTicker);
        this.headTicker = undefined;
      }
    }, HEAD_TICK_MS);
    this.headTicker.unref();
  }

  /**
   * Opens a blob for reading (optionally a byte range). The caller must consume or destroy the
   * body. Resolves for any status; `found` is false on 404.
   */
  async get(
    volume: string,
    path: string,
    options: { range?: string; signal?: AbortSignal } = {},
  ): Promise<{ statusCode: number; headers: Record<string, string | string[] | undefined>; body: Readable }> {
    try {
      const response = await this.pool(volume).request({
        method: 'GET',
        path: volumePrefix(volume) + path,
        headers: options.range ? { range: options.range } : {},
        signal: options.signal,
      });
      return { statusCode: response.statusCode, headers: response.headers, body: response.body };
    } catch (error) {
      throw new MkvError('MKV_VOLUME_FAILED', `GET ${volumeUrl(volume, path)} failed: ${(error as Error).message}`, { cause: error });
    }
  }

  /** A directory's entries, from the volume's JSON listing (nginx autoindex_format json); [] if it does not exist. */
  async list(volume: string, path: string): Promise<ListingEntry[]> {
    const url = volumeUrl(volume, path);
    let statusCode: number;
    let text: string;
    try {
      const response = await this.pool(volume).request({
        method: 'GET',
        path: volumePrefix(volume) + path,
        // The pool bounds connect, headers and each gap in the body; no AbortSignal per listing
        // (its timer and DOMException were a tenth of a rescan's CPU).
      });
      statusCode = response.statusCode;
      text = await response.body.text();
    } catch (error) {
      throw new MkvError('MKV_VOLUME_FAILED', `listing ${url} failed: ${(error as Error).message}`, { cause: error });
    }
    if (statusCode === 404) return [];
    if (statusCode !== 200) throw new MkvError('MKV_VOLUME_FAILED', `listing ${url} answered ${statusCode}`);
    try {
      const entries = JSON.parse(text) as ListingEntry[];
      if (!Array.isArray(entries)) throw new Error('not a JSON array');
      return entries;
    } catch (error) {
      throw new MkvError('MKV_VOLUME_FAILED', `listing ${url} is not a JSON directory listing (${(error as Error).message}); is autoindex_format json on?`);
    }
  }

  /** Removes the blob; a blob that is already gone counts as removed. */
  async delete(volume: string, path: string): Promise<'deleted' | 'missing'> {
    let statusCode: number;
    try {
      // Bounded by the pool's connect and headers timeouts, as a listing is.
      statusCode = await this.status(volume, 'DELETE', path);
    } catch (error) {
      this.failed(volume, 'delete', error);
      throw new MkvError('MKV_VOLUME_FAILED', `DELETE ${volumeUrl(volume, path)} failed: ${(error as Error).message}`, { cause: error });
    }
    if (statusCode === 204 || statusCode === 200) return 'deleted';
    if (statusCode === 404) return 'missing';
    this.failed(volume, 'delete', undefined);
    throw new MkvError('MKV_VOLUME_FAILED', `DELETE ${volumeUrl(volume, path)} answered ${statusCode}`);
  }

  async close(): Promise<void> {
    this.headClient.close();
    await Promise.all([...this.pools.values()].map((pool) => pool.close()));
    this.pools.clear();
  }
}
