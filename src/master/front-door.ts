// The master's listening socket. GET/HEAD of a plain key — the request a blob store answers
// most — is read and answered here, on the raw connection; every other request, and every
// connection this code does not fully understand, goes to node:http (and Koa) untouched.
//
//   connection ─▶ complete request heads, each a plain GET/HEAD? ─yes─▶ locateKey ─▶ 302 / 404
//                   └─ no: a query, a body, Authorization, HTTP/1.0, an odd or partial head ...
//                      └─▶ the bytes put back (unshift) ─▶ node:http owns the connection from then on
//
// Why: node:http's own cost per request is above the whole budget of a lookup. Measured here
// with wrk -t2 -c100 and 2 workers, a trivial node:http 404 server answers 28.5k req/s, a raw
// socket 62k, the Go original's full 404 path 34k. This parser accepts only a strict subset of
// HTTP/1.1 (RFC 9112: token header names, no folding, no bare LF, one Host, no framing headers)
// and hands everything else over; node's parser stays the judge of anything unusual, and its
// timeouts guard every connection it owns. A connection here is closed after KEEP_ALIVE_MS
// idle, as node:http does.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { recordRequest, type MasterDeps } from './app.js';
import { createHandler } from './fast-get.js';
import { answerPlainRead } from './handlers.js';
import { checkKeyFits, decodeKey } from './keys.js';

/** node:http's keepAliveTimeout default, and what it announces. */
const KEEP_ALIVE_MS = 5000;
/** A head longer than this is node:http's to refuse (its maxHeaderSize default). */
const MAX_HEAD_BYTES = 16 * 1024;

const HEAD_END = Buffer.from('\r\n\r\n');
const REQUEST_LINE = /^(GET|HEAD) (\/[\x21-\x7e]*) HTTP\/1\.1$/;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*$/;
/** Headers that make a request other than a plain read of a key: node:http and Koa take it. */
const NOT_PLAIN = new Set(['content-length', 'transfer-encoding', 'upgrade', 'expect', 'authorization', 'min-log-seq']);

const REASONS: Record<number, string> = { 302: 'Found', 404: 'Not Found', 500: 'Internal Server Error' };

interface PlainRead {
  method: 'GET' | 'HEAD';
  path: string;
  key: string;
  close: boolean;
  /** Bytes of the head, its blank line included. */
  length: number;
}

/** The request at the start of `buffer` when it is a whole, plain GET/HEAD of a key; undefined otherwise. */
export function parsePlainRead(buffer: Buffer): PlainRead | undefined {
  const end = buffer.indexOf(HEAD_END);
  if (end === -1 || end > MAX_HEAD_BYTES) return undefined;
  const lines = buffer.toString('latin1', 0, end).split('\r\n');
  const request = REQUEST_LINE.exec(lines[0]!);
  if (!request) return undefined;
  const path = request[2]!;
  if (path.includes('?') || path.includes('#')) return undefined;
  let hosts = 0;
  let close = false;
  for (let i = 1; i < lines.length; i++) {
    const header = HEADER_LINE.exec(lines[i]!);
    if (!header) return undefined;
    const name = header[1]!.toLowerCase();
    if (NOT_PLAIN.has(name)) return undefined;
    if (name === 'host') hosts++;
    else if (name === 'connection') {
      const tokens = header[2]!.toLowerCase().split(',').map((token) => token.trim());
      if (tokens.includes('upgrade')) return undefined;
      if (tokens.includes('close')) close = true;
    }
  }
  if (hosts !== 1) return undefined;
  let key: string;
  try {
    key = decodeKey(path);
    checkKeyFits(key);
  } catch {
    return undefined; // Koa renders the 400
  }
  return { method: request[1] as 'GET' | 'HEAD', path, key, close, length: end + HEAD_END.length };
}

let dateSecond = 0;
let dateHeader = '';
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateHeader = new Date(second * 1000).toUTCString();
  }
  return dateHeader;
}

/** The response head, byte for byte what node:http sends for the same answer from fast-get.ts. */
function responseHead(status: number, headers: string, close: boolean, bodyLength: number): string {
  return (
    `HTTP/1.1 ${status} ${REASONS[status]}\r\n${headers}` +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${bodyLength}\r\nDate: ${httpDate()}\r\n` +
    (close ? 'Connection: close\r\n\r\n' : `Connection: keep-alive\r\nKeep-Alive: timeout=${KEEP_ALIVE_MS / 1000}\r\n\r\n`)
  );
}

export interface FrontDoor {
  /** The listening socket: listen(), address(), and close() through closeFrontDoor(). */
  server: Server;
  /** Ends idle connections now and busy ones after their response; resolves when all are gone. */
  close(): Promise<void>;
}

/**
 * The master's server as mkv server runs it: the front door before node:http, which serves the
 * rest through fast-get.ts and the Koa app.
 */
export function createMasterServer(deps: MasterDeps, onRequest?: () => void): FrontDoor {
  const http = createHttpServer(createHandler(deps));
  if (onRequest) http.prependListener('request', onRequest);
  // A gigabyte on a slow link takes longer than Node's default 5 minutes per request.
  http.requestTimeout = 0;
  return createFrontDoor(deps, http, onRequest);
}

/**
 * The master's server: plain reads here, the rest to `http` (which never listens itself).
 * `onRequest` runs before each request is read from the index (an HTTP worker resets its LMDB
 * snapshot there).
 */
export function createFrontDoor(deps: MasterDeps, http: HttpServer, onRequest?: () => void): FrontDoor {
  const owned = new Set<Socket>();
  const busy = new Set<Socket>();
  let closing = false;

  const handOver = (socket: Socket, unread: Buffer) => {
    owned.delete(socket);
    socket.removeAllListeners('data');
    socket.removeAllListeners('timeout');
    socket.removeAllListeners('error');
    socket.setTimeout(0);
    socket.pause();
    if (unread.length > 0) socket.unshift(unread);
    http.emit('connection', socket);
    socket.resume();
  };

  const serve = (socket: Socket) => {
    owned.add(socket);
    socket.setTimeout(KEEP_ALIVE_MS);
    let unread: Buffer = Buffer.alloc(0);

    // Answers the requests in `unread` one after another (pipelined requests in order).
    const next = (): void => {
      if (socket.destroyed) return;
      if (unread.length === 0) {
        if (closing) socket.end();
        return;
      }
      const read = parsePlainRead(unread);
      if (!read) return handOver(socket, unread);
      unread = unread.subarray(read.length);
      busy.add(socket);
      const started = process.hrtime.bigint();
      onRequest?.();
      let headers = '';
      const answer = (status: number, body = '') => {
        busy.delete(socket);
        if (socket.destroyed) return;
        const close = read.close || closing;
        socket.write(responseHead(status, headers, close, Buffer.byteLength(body)) + (read.method === 'HEAD' ? '' : body), 'latin1');
        recordRequest(deps, read.method, read.path, status, started, socket.remoteAddress);
        if (close) socket.end();
        else next();
      };
      answerPlainRead(deps, read.key, read.path, (name, value) => (headers += `${name}: ${value}\r\n`)).then(
        (status) => answer(status),
        (error: unknown) => {
          deps.logger.error('request failed', { method: read.method, path: read.path, error });
          headers = 'Mkv-Error: MKV_INTERNAL\r\n';
          answer(500, 'MKV_INTERNAL: internal error\n');
        },
      );
    };

    socket.on('data', (chunk: Buffer) => {
      unread = unread.length === 0 ? chunk : Buffer.concat([unread, chunk]);
      if (!busy.has(socket)) next();
    });
    socket.on('timeout', () => {
      if (!busy.has(socket)) socket.destroy();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      owned.delete(socket);
      busy.delete(socket);
    });
  };

  const server = createServer({ noDelay: true }, serve);
  // node:http tracks its connections — the headers and request timeouts, closeIdleConnections —
  // from its 'listening' event; it never listens itself, so it hears of the front door's.
  server.on('listening', () => http.emit('listening'));
  return {
    server,
    async close() {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of owned) if (!busy.has(socket)) socket.end();
      // node:http's connections: close each as it goes idle.
      const idle = setInterval(() => http.closeIdleConnections(), 100);
      http.closeIdleConnections();
      try {
        await closed;
      } finally {
        clearInterval(idle);
        http.close(() => {}); // stops its connection checks; it has nothing else open
      }
    },
  };
}
