// The short requests to volume servers, on plain keep-alive sockets: the HEAD of every GET, the
// DELETE of every replica, and the PUT of a small value (one buffer). Each answer is only a
// status (and a HEAD's Content-Length); a body that comes with it is read and dropped.
//
//   request(host, method, path, headers, body?) ─▶ an idle socket of the host (or a new one, up to
//   `connections`; else wait) ─▶ "METHOD path HTTP/1.1" (+ the body) ─▶ status line + headers
//   ─▶ the answer settles ─▶ its body (Content-Length, chunked) read and dropped ─▶ the socket
//   back to the idle list, unless the volume said close or sent a body of no stated length
//
// Why not undici, which streams the large PUTs and the GETs: through undici these short requests
// cost several times the CPU (its request objects, its WASM parser; docs/design-figures.md), and
// a thrasher round sends seven. These requests repeat without harm, so a reused socket that
// the volume closed just as the request went out (the keep-alive race) is retried once on a
// new connection. Deadlines are the caller's (abort()).
import { connect, type Socket } from 'node:net';

/** Why a socket closed, when it failed (ECONNREFUSED, ENOTFOUND, ECONNRESET, ...). */
const socketErrors = new WeakMap<Socket, Error>();

/** A volume's answer: its status and Content-Length. */
export interface ShortAnswer {
  status: number;
  length: string | undefined;
}

export type ShortMethod = 'HEAD' | 'DELETE' | 'PUT';

/** A response head longer than this is not a volume server's. */
const MAX_HEAD_BYTES = 16 * 1024;
/** An idle socket is closed after this long (nginx keeps them 65 s). */
const IDLE_MS = 30_000;

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})/;
const CHUNK_SIZE = /^([0-9a-fA-F]{1,8})(?:;[^\r\n]*)?$/;

interface Exchange {
  method: ShortMethod;
  /** The request's bytes: head and body. */
  request: Buffer;
  /** Whether it went out again on a new connection (a reused socket died before answering). */
  retried: boolean;
  /** Settled: answered, failed or aborted. */
  finished: boolean;
  settle: (answer: ShortAnswer | Error) => void;
  socket: Socket | undefined;
}

/** What is left to read of a response body before its socket can carry the next request. */
type BodyLeft =
  { kind: 'length'; bytes: number } | { kind: 'chunked'; size: number; state: 'size' | 'data' | 'crlf' | 'trailer'; line: string };

class HostPool {
  private readonly idle: Socket[] = [];
  private readonly waiting: Exchange[] = [];
  private open = 0;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly connections: number,
  ) {}

  send(exchange: Exchange): void {
    const socket = this.idle.pop();
    if (socket) this.write(socket, exchange, true);
    else if (this.open < this.connections) this.write(this.connect(), exchange, false);
    else this.waiting.push(exchange);
  }

  /** Takes an exchange out of the queue (its deadline passed before a socket was free). */
  forget(exchange: Exchange): void {
    const at = this.waiting.indexOf(exchange);
    if (at !== -1) this.waiting.splice(at, 1);
  }

  private connect(): Socket {
    this.open++;
    const socket = connect({ host: this.host, port: this.port, noDelay: true });
    socket.once('close', () => {
      this.open--;
      const at = this.idle.indexOf(socket);
      if (at !== -1) this.idle.splice(at, 1);
      // A slot is free: a waiting request gets a new connection.
      const next = this.waiting.shift();
      if (next) this.send(next);
    });
    // 'close' follows; the exchange learns of it there, by its cause (refused, not found, reset).
    socket.on('error', (error) => socketErrors.set(socket, error));
    socket.on('timeout', () => socket.destroy());
    return socket;
  }

  private write(socket: Socket, exchange: Exchange, reused: boolean): void {
    exchange.socket = socket;
    socket.setTimeout(0);
    let head = '';
    let answered = false;
    let left: BodyLeft | undefined;
    const stop = () => {
      socket.off('data', onData);
      socket.off('close', onClose);
      exchange.socket = undefined;
    };
    const fail = (error: Error) => {
      answered = true;
      stop();
      socket.destroy();
      exchange.settle(error);
    };
    /** The body is read: the socket is free for the next request. */
    const done = () => {
      stop();
      if (socket.destroyed) return;
      this.release(socket);
    };
    const onBody = (chunk: Buffer, from: number) => {
      const rest = readBody(left!, chunk, from);
      if (rest === 'more') return;
      if (rest === 'bad') return fail(new Error('the volume sent a malformed body'));
      if (rest > 0) return fail(new Error('the volume sent more than its answer'));
      done();
    };
    const onData = (chunk: Buffer) => {
      if (answered) return onBody(chunk, 0);
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > MAX_HEAD_BYTES) fail(new Error('the volume sent a response head over 16 KiB'));
        return;
      }
      const status = STATUS_LINE.exec(head);
      if (!status) return fail(new Error('the volume did not answer HTTP/1.x'));
      const code = Number(status[2]);
      let length: string | undefined;
      let chunked = false;
      let close = status[1] === '0';
      const lines = head.slice(0, end).split('\r\n');
      for (let i = 1; i < lines.length; i++) {
        const line = lines[i]!;
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        if (name === 'content-length') length = value;
        else if (name === 'transfer-encoding') chunked = value.toLowerCase().includes('chunked');
        else if (name === 'connection') {
          if (value.toLowerCase().includes('close')) close = true;
          else if (value.toLowerCase().includes('keep-alive')) close = false;
        }
      }
      answered = true;
      exchange.settle({ status: code, length });
      const bodyless = exchange.method === 'HEAD' || code === 204 || code === 304 || code < 200;
      if (!bodyless && chunked) left = { kind: 'chunked', size: 0, state: 'size', line: '' };
      else if (!bodyless && length !== undefined) left = /^\d{1,15}$/.test(length) ? { kind: 'length', bytes: Number(length) } : undefined;
      // A body of no stated length runs to the close; a volume that will close gets no next request.
      if (close || (!bodyless && left === undefined)) {
        stop();
        socket.destroy();
        return;
      }
      // Where the body starts in this chunk: the head was decoded as latin1, one char a byte.
      const bodyStart = end + 4 - (head.length - chunk.length);
      if (left) {
        socket.setTimeout(IDLE_MS); // a body that stalls is given up with its socket
        return onBody(chunk, bodyStart);
      }
      if (bodyStart < chunk.length) return fail(new Error('the volume sent more than its answer'));
      done();
    };
    const onClose = () => {
      if (exchange.finished && !answered) return; // aborted, which closed it
      if (answered) return stop(); // closed while its body was being dropped: the answer stands
      if (reused && head === '' && !exchange.retried) {
        // The keep-alive race: the volume closed this idle socket as the request went out.
        stop();
        exchange.retried = true;
        this.send(exchange);
        return;
      }
      const cause = socketErrors.get(socket);
      if (cause && head === '') return fail(cause); // never connected, or reset: say which
      fail(new Error(head === '' ? 'the volume closed the connection without answering' : 'the volume closed the connection mid-answer'));
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write(exchange.request);
  }

  private release(socket: Socket): void {
    const next = this.waiting.shift();
    if (next) return this.write(socket, next, true);
    socket.setTimeout(IDLE_MS);
    this.idle.push(socket);
  }

  close(): void {
    for (const exchange of this.waiting.splice(0)) exchange.settle(new Error('the volume client is closed'));
    for (const socket of this.idle.splice(0)) socket.destroy();
  }
}

/**
 * Drops the body bytes of `chunk` from `from` on: 'more' while the body goes on, the count of
 * bytes past its end once it has ended (0 for none), 'bad' when it is not a body.
 */
function readBody(left: BodyLeft, chunk: Buffer, from: number): number | 'more' | 'bad' {
  let at = from;
  if (left.kind === 'length') {
    const taken = Math.min(left.bytes, chunk.length - at);
    left.bytes -= taken;
    at += taken;
    return left.bytes > 0 ? 'more' : chunk.length - at;
  }
  while (at < chunk.length) {
    if (left.state === 'data') {
      const taken = Math.min(left.size, chunk.length - at);
      left.size -= taken;
      at += taken;
      if (left.size === 0) left.state = 'crlf';
      continue;
    }
    // A line: a chunk's size, the CRLF after its data, or a trailer (an empty one ends the body).
    const newline = chunk.indexOf(10, at);
    left.line += chunk.toString('latin1', at, newline === -1 ? chunk.length : newline + 1);
    at = newline === -1 ? chunk.length : newline + 1;
    if (newline === -1) {
      if (left.line.length > 4096) return 'bad';
      continue;
    }
    const line = left.line.replace(/\r?\n$/, '');
    left.line = '';
    if (left.state === 'crlf') {
      if (line !== '') return 'bad';
      left.state = 'size';
    } else if (left.state === 'trailer') {
      if (line === '') return chunk.length - at;
    } else {
      const size = CHUNK_SIZE.exec(line);
      if (!size) return 'bad';
      left.size = parseInt(size[1]!, 16);
      left.state = left.size === 0 ? 'trailer' : 'data';
    }
  }
  return 'more';
}

export class ShortRequestClient {
  private readonly pools = new Map<string, HostPool>();

  constructor(private readonly connections = 128) {}

  /**
   * Sends a request to `host` ("name:port") with `headers` (the caller's own: no CR or LF in
   * them). Resolves with the answer, or an Error when the volume could not be reached or
   * answered nonsense; never rejects. `abort` ends it early (a deadline): its socket is closed,
   * as an answer may still be on its way.
   */
  request(
    host: string,
    method: ShortMethod,
    path: string,
    headers: Record<string, string>,
    body?: Buffer,
  ): { answer: Promise<ShortAnswer | Error>; abort: (reason: Error) => void } {
    let pool = this.pools.get(host);
    if (!pool) {
      const colon = host.lastIndexOf(':');
      pool = new HostPool(host.slice(0, colon), Number(host.slice(colon + 1)), this.connections);
      this.pools.set(host, pool);
    }
    let fields = body ? `Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n` : '';
    for (const name in headers) fields += `${name}: ${headers[name]}\r\n`;
    const head = Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${fields}\r\n`, 'latin1');
    let settle!: (answer: ShortAnswer | Error) => void;
    const answer = new Promise<ShortAnswer | Error>((resolve) => (settle = resolve));
    const exchange: Exchange = {
      method,
      request: body ? Buffer.concat([head, body]) : head,
      retried: false,
      finished: false,
      socket: undefined,
      settle(result) {
        if (exchange.finished) return;
        exchange.finished = true;
        settle(result);
      },
    };
    const owner = pool;
    pool.send(exchange);
    return {
      answer,
      abort(reason: Error) {
        if (exchange.finished) return;
        owner.forget(exchange);
        exchange.socket?.destroy(); // its 'close' is ignored: settled below
        exchange.settle(reason);
      },
    };
  }

  close(): void {
    for (const pool of this.pools.values()) pool.close();
    this.pools.clear();
  }
}
