// The front door (src/master/front-door.ts) on a real master over raw sockets: it answers plain
// GET/HEAD of a key itself and hands anything else to node:http with its bytes intact —
// pipelined requests in order, a connection that turns to a PUT, a head split across packets,
// malformed heads, Connection: close — and its answers are node:http's, header for header.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parsePlainRead } from '../../src/master/front-door.js';
import { http } from '../helpers/http.js';
import { removeDir, startMaster, startVolumes, type TestMaster, type VolumeSet } from '../helpers/cluster.js';

interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** A raw HTTP/1.1 connection: write bytes, read whole responses (each with a Content-Length). */
class Raw {
  private buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  ended = false;
  readonly socket: Socket;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiting?.();
    });
    this.socket.on('end', () => {
      this.ended = true;
      this.waiting?.();
    });
    this.socket.on('error', () => {});
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** The next response; `head`: it answers a HEAD (no body whatever Content-Length says). */
  async read(head = false): Promise<RawResponse> {
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end !== -1) {
        const lines = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(lines[0]!.split(' ')[1]);
        const headers = new Map<string, string>();
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
        }
        const length = head ? 0 : Number(headers.get('content-length') ?? 0);
        if (this.buffer.length >= end + 4 + length) {
          const body = this.buffer.subarray(end + 4, end + 4 + length).toString();
          this.buffer = this.buffer.subarray(end + 4 + length);
          return { status, headers, body };
        }
      }
      if (this.ended) throw new Error(`connection ended; unread: ${JSON.stringify(this.buffer.toString())}`);
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }

  async closed(): Promise<boolean> {
    if (this.ended) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 2000);
      this.socket.once('end', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: mkv\r\n${extra}\r\n`;

describe('the front door', () => {
  let set: VolumeSet;
  let master: TestMaster;

  before(async () => {
    set = await startVolumes('embedded', 3);
    master = await startMaster(set.volumes, { replicas: 2, subvolumes: 1 });
    assert.equal((await http('PUT', `${master.url}/front/a`, 'value a')).status, 201);
    assert.equal((await http('PUT', `${master.url}/front/swag-é中`, 'value b')).status, 201);
  });
  after(async () => {
    await master?.close();
    await set?.close();
    if (master) removeDir(master.db);
  });

  test('parses only whole, plain GET/HEAD heads of a key', () => {
    const plain = parsePlainRead(Buffer.from(get('/front/a')));
    assert.deepEqual(plain && { method: plain.method, key: plain.key, close: plain.close }, { method: 'GET', key: '/front/a', close: false });
    assert.equal(parsePlainRead(Buffer.from(get('/front/a', 'Connection: close\r\n')))?.close, true);
    assert.equal(parsePlainRead(Buffer.from('HEAD /%E4%B8%AD HTTP/1.1\r\nhost: x\r\n\r\n'))?.key, '/中');
    for (const refused of [
      'GET /front/a HTTP/1.1\r\nHost: mkv\r\n', // no end of head yet
      'GET /front/a HTTP/1.0\r\nHost: mkv\r\n\r\n',
      'GET /front/a?list HTTP/1.1\r\nHost: mkv\r\n\r\n',
      'PUT /front/a HTTP/1.1\r\nHost: mkv\r\n\r\n',
      'GET /front/a HTTP/1.1\r\n\r\n', // no Host
      'GET /front/a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
      'GET /front/a HTTP/1.1\r\nHost: mkv\r\nContent-Length: 0\r\n\r\n',
      'GET /front/a HTTP/1.1\r\nHost: mkv\r\nTransfer-Encoding: chunked\r\n\r\n',
      'GET /front/a HTTP/1.1\r\nHost: mkv\r\nAuthorization: AWS4-HMAC-SHA256 x\r\n\r\n',
      'GET /front/a HTTP/1.1\r\nHost: mkv\r\nMin-Log-Seq: 3\r\n\r\n',
      'GET /front/a HTTP/1.1\r\nHost: mkv\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
      'GET /front/a HTTP/1.1\r\nHost: mkv\r\nBad Header: x\r\n\r\n',
      'GET /front/a HTTP/1.1\r\nHost: mkv\r\n folded: x\r\n\r\n',
      'GET /front/a HTTP/1.1\r\nHost: mkv\nX: y\r\n\r\n', // a bare LF
      'GET /front/%ZZ HTTP/1.1\r\nHost: mkv\r\n\r\n',
      'GET /front/../a HTTP/1.1\r\nHost: mkv\r\n\r\n',
      `GET /${'k'.repeat(17 * 1024)} HTTP/1.1\r\nHost: mkv\r\n\r\n`,
    ]) {
      assert.equal(parsePlainRead(Buffer.from(refused)), undefined, JSON.stringify(refused.slice(0, 80)));
    }
  });

  test('answers as node:http does, header for header', async () => {
    const raw = new Raw(master.port);
    try {
      // Content-Length: 0 sends the same read through node:http (fast-get.ts) instead.
      for (const [path, status] of [['/front/a', 302], ['/front/missing', 404], ['/front/swag-%C3%A9%E4%B8%AD', 302]] as const) {
        raw.send(get(path));
        const front = await raw.read();
        raw.send(get(path, 'Content-Length: 0\r\n'));
        const node = await raw.read();
        assert.equal(front.status, status);
        assert.equal(node.status, status);
        // The replica is picked at random: Location may name either.
        for (const answer of [front, node]) {
          const location = answer.headers.get('location');
          if (location) assert.ok(answer.headers.get('key-volumes')!.split(',').some((volume) => location.startsWith(`http://${volume}/`)), location);
          answer.headers.delete('location');
          answer.headers.delete('date');
        }
        assert.deepEqual([...front.headers], [...node.headers], path);
      }
    } finally {
      raw.close();
    }
  });

  test('pipelined requests are answered in order, HEAD without a body', async () => {
    const raw = new Raw(master.port);
    try {
      raw.send(get('/front/a') + get('/front/missing') + 'HEAD /front/a HTTP/1.1\r\nHost: mkv\r\n\r\n' + get('/front/swag-%C3%A9%E4%B8%AD'));
      const answers = [await raw.read(), await raw.read(), await raw.read(true), await raw.read()];
      assert.deepEqual(answers.map((answer) => answer.status), [302, 404, 302, 302]);
      assert.match(answers[0]!.headers.get('location')!, /^http:\/\/127\.0\.0\.1:\d+\/\w\w\/\w\w\/L2Zyb250L2E=$/);
      assert.equal(answers[1]!.headers.get('mkv-error'), 'MKV_NOT_FOUND');
      const path = (answer: RawResponse) => new URL(answer.headers.get('location')!).pathname; // the replica is random
      assert.equal(path(answers[2]!), path(answers[0]!));
      assert.equal(answers[2]!.headers.get('content-length'), '0');
      const value = await fetch(answers[3]!.headers.get('location')!);
      assert.equal(await value.text(), 'value b');
    } finally {
      raw.close();
    }
  });

  test('a connection that turns to other requests is handed to node:http with its bytes', async () => {
    const raw = new Raw(master.port);
    try {
      raw.send(get('/front/a'));
      assert.equal((await raw.read()).status, 302);
      // A PUT (with its body) pipelined behind a plain GET; node:http then owns the connection.
      raw.send(get('/front/a') + 'PUT /front/c HTTP/1.1\r\nHost: mkv\r\nContent-Length: 7\r\n\r\nvalue c');
      assert.deepEqual([(await raw.read()).status, (await raw.read()).status], [302, 201]);
      // (node:http runs pipelined handlers at once and orders only their answers: a read sent
      // behind a write in the same packet could run before it commits, so these come after.)
      raw.send(get('/front/?list') + get('/front/c'));
      const [listing, read] = [await raw.read(), await raw.read()];
      assert.deepEqual([listing.status, read.status], [200, 302]);
      assert.deepEqual(JSON.parse(listing.body), { next: '', keys: ['/front/a', '/front/c', '/front/swag-é中'] });
    } finally {
      raw.close();
    }
  });

  test('a head split across packets, and a malformed one, are node:http\'s to read', async () => {
    const split = new Raw(master.port);
    const bad = new Raw(master.port);
    try {
      split.send('GET /front/a HTTP/1.1\r\nHo');
      await new Promise((resolve) => setTimeout(resolve, 50));
      split.send('st: mkv\r\n\r\n');
      assert.equal((await split.read()).status, 302);
      bad.send('GET /front/a HTTP/1.1\r\nHost: mkv\r\nBad Header\r\n\r\n');
      assert.equal((await bad.read()).status, 400);
      assert.ok(await bad.closed(), 'node:http closes a connection after a bad request');
    } finally {
      split.close();
      bad.close();
    }
  });

  test('Connection: close is answered and the connection closed', async () => {
    const raw = new Raw(master.port);
    try {
      raw.send(get('/front/a', 'Connection: close\r\n'));
      const answer = await raw.read();
      assert.equal(answer.status, 302);
      assert.equal(answer.headers.get('connection'), 'close');
      assert.ok(await raw.closed());
    } finally {
      raw.close();
    }
  });
});
