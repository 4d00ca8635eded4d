// HEAD requests to volume servers on plain keep-alive sockets: the request every GET sends.
//
//   head(host, path) ─▶ an idle socket of the host (or a new one, up to `connections`; else wait)
//                       ─▶ "HEAD path HTTP/1.1" ─▶ status line + headers (a HEAD has no body)
//                       ─▶ the socket back to the idle list, unless the volume said close
//
// Why not undici, which the rest of the volume client uses: a HEAD is the only volume request
// of a GET, and through undici it costs 67–82 µs of CPU here, through this 46–59 µs, with
// 1.1–1.8× the HEADs/s (node dist/tools/bench/head.js 60000, two runs side by side).
// A HEAD is idempotent, so a reused socket the volume closed just as the request went out (the
// keep-alive race) is retried once on a new connection. Deadlines are the caller's (abort()).
import { connect, type Socket } from 'node:net';

/** A volume's answer to a HEAD: its status and Content-Length. */
export interface HeadAnswer {
  status: number;
  length: string | undefined;
}

/** A response head longer than this is not a volume server's. */
const MAX_HEAD_BYTES = 16 * 1024;
/** An idle socket is closed after this long (nginx keeps them 65 s). */
const IDLE_MS = 30_000;

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})/;

interface Exchange {
  path: string;
  /** Whether it went out again on a new connection (a reused socket died before answering). */
  retried: boolean;
  /** Settled: answered, failed or aborted. */
  finished: boolean;
  settle: (answer: HeadAnswer | Error) => void;
  socket: Socket | undefined;
}

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
      // A slot is free: a waiting HEAD gets a new connection.
      const next = this.waiting.shift();
      if (next) this.send(next);
    });
    socket.on('error', () => {}); // 'close' follows; the exchange learns of it there
    socket.on('timeout', () => socket.destroy());
    return socket;
  }

  private write(socket: Socket, exchange: Exchange, reused: boolean): void {
    exchange.socket = socket;
    socket.setTimeout(0);
    let head = '';
    let answered = false;
    const done = (answer: HeadAnswer | Error, keep: boolean) => {
      answered = true;
      socket.off('data', onData);
      socket.off('close', onClose);
      exchange.socket = undefined;
      if (keep && !socket.destroyed) this.release(socket);
      else socket.destroy();
      exchange.settle(answer);
    };
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > MAX_HEAD_BYTES) done(new Error('the volume sent a response head over 16 KiB'), false);
        return;
      }
      const status = STATUS_LINE.exec(head);
      if (!status || end + 4 !== head.length) {
        // Not HTTP/1.x, or bytes after the head (a HEAD has no body): the socket cannot be trusted.
        done(new Error(status ? 'the volume sent bytes after a HEAD response' : 'the volume did not answer HTTP/1.x'), false);
        return;
      }
      const lines = head.slice(0, end).split('\r\n');
      let length: string | undefined;
      let close = status[1] === '0';
      for (let i = 1; i < lines.length; i++) {
        const line = lines[i]!;
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim().toLowerCase();
        if (name === 'content-length') length = line.slice(colon + 1).trim();
        else if (name === 'connection') {
          const value = line.slice(colon + 1).trim().toLowerCase();
          if (value.includes('close')) close = true;
          else if (value.includes('keep-alive')) close = false;
        }
      }
      done({ status: Number(status[2]), length }, !close);
    };
    const onClose = () => {
      if (answered || exchange.finished) return; // answered, or aborted (which closed it)
      if (reused && head === '' && !exchange.retried) {
        // The keep-alive race: the volume closed this idle socket as the HEAD went out.
        answered = true;
        socket.off('data', onData);
        exchange.socket = undefined;
        exchange.retried = true;
        this.send(exchange);
        return;
      }
      done(new Error(head === '' ? 'the volume closed the connection without answering' : 'the volume closed the connection mid-answer'), false);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write(`HEAD ${exchange.path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\n\r\n`, 'latin1');
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

export class HeadClient {
  private readonly pools = new Map<string, HostPool>();

  constructor(private readonly connections = 128) {}

  /**
   * Sends a HEAD to `host` ("name:port"). Resolves with the answer, or an Error when the volume
   * could not be reached or answered nonsense; never rejects. `abort` ends it early (a deadline):
   * its socket is closed, as an answer may still be on its way.
   */
  head(host: string, path: string): { answer: Promise<HeadAnswer | Error>; abort: (reason: Error) => void } {
    let pool = this.pools.get(host);
    if (!pool) {
      const colon = host.lastIndexOf(':');
      pool = new HostPool(host.slice(0, colon), Number(host.slice(colon + 1)), this.connections);
      this.pools.set(host, pool);
    }
    let settle!: (answer: HeadAnswer | Error) => void;
    const answer = new Promise<HeadAnswer | Error>((resolve) => (settle = resolve));
    const exchange: Exchange = {
      path,
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
