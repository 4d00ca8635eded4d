// The short requests to volumes (src/volumes/http1.ts, through VolumeClient: HEAD, DELETE, the
// PUT of a small value) against a scripted volume on a real socket: connections are reused, a
// volume that says close or speaks HTTP/1.0 gets a new one, the keep-alive race is retried
// once, a silent volume is "unknown" at the deadline, nonsense is "unknown", never "found", and
// the bodies that come with answers (a length, chunked, none stated) are read past or end the
// connection.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { VolumeClient } from '../../src/volumes/client.js';

type Script = (request: string, socket: Socket, nth: number) => void;

describe('short requests to a volume', () => {
  let server: Server;
  let volume: string;
  let script: Script;
  let connections = 0;

  before(async () => {
    server = createServer((socket) => {
      connections++;
      let nth = 0;
      let buffered = '';
      socket.on('data', (chunk) => {
        buffered += chunk.toString('latin1');
        for (let end = buffered.indexOf('\r\n\r\n'); end !== -1; end = buffered.indexOf('\r\n\r\n')) {
          const head = buffered.slice(0, end);
          const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
          if (buffered.length < end + 4 + length) break; // the body is not all here yet
          const request = buffered.slice(0, end + 4 + length);
          buffered = buffered.slice(end + 4 + length);
          script(request, socket, ++nth);
        }
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    volume = `127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => server.close());

  async function heads(client: VolumeClient, count: number, timeoutMs?: number) {
    const results = [];
    for (let i = 0; i < count; i++) results.push(await client.head(`${volume}/sv01`, `/ab/cd/a2V5${i}`, timeoutMs));
    return results;
  }

  test('found with its size, missing, and one connection reused', async () => {
    const seen: string[] = [];
    script = (request, socket, nth) => {
      seen.push(request.split('\r\n')[0]!);
      socket.write(nth % 2 ? 'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n' : 'HTTP/1.1 404 Not Found\r\nContent-Length: 153\r\n\r\n');
    };
    connections = 0;
    const client = new VolumeClient();
    try {
      assert.deepEqual(await heads(client, 4), [
        { status: 'found', size: 1234 },
        { status: 'missing' },
        { status: 'found', size: 1234 },
        { status: 'missing' },
      ]);
      assert.equal(connections, 1);
      assert.deepEqual(seen, [
        'HEAD /sv01/ab/cd/a2V50 HTTP/1.1',
        'HEAD /sv01/ab/cd/a2V51 HTTP/1.1',
        'HEAD /sv01/ab/cd/a2V52 HTTP/1.1',
        'HEAD /sv01/ab/cd/a2V53 HTTP/1.1',
      ]);
    } finally {
      await client.close();
    }
  });

  test('Connection: close and HTTP/1.0 answers get a new connection each', async () => {
    script = (_request, socket, nth) => {
      socket.end(
        nth === 1 && connections % 2
          ? 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n'
          : 'HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n',
      );
    };
    connections = 0;
    const client = new VolumeClient();
    try {
      assert.deepEqual(await heads(client, 4), Array(4).fill({ status: 'found', size: 1 }));
      assert.equal(connections, 4);
    } finally {
      await client.close();
    }
  });

  test('the keep-alive race: a reused connection closed as the HEAD arrives is retried once', async () => {
    // The volume drops every connection's second request unanswered, as an idle timeout does.
    script = (_request, socket, nth) => {
      if (nth === 1) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n');
      else socket.destroy();
    };
    connections = 0;
    const client = new VolumeClient();
    try {
      assert.deepEqual(await heads(client, 3), Array(3).fill({ status: 'found', size: 7 }));
      assert.equal(connections, 3);
    } finally {
      await client.close();
    }
  });

  test('a volume that does not answer is "unknown" at the deadline; one that answers nonsense too', async () => {
    script = () => {};
    const client = new VolumeClient();
    try {
      const [silent] = await heads(client, 1, 300);
      assert.equal(silent!.status, 'unknown');
      assert.match((silent as { reason: string }).reason, /timed out after 300 ms/);
      script = (_request, socket) => socket.write('SSH-2.0-OpenSSH_9.2\r\n\r\n');
      const [nonsense] = await heads(client, 1);
      assert.deepEqual(nonsense, { status: 'unknown', reason: 'the volume did not answer HTTP/1.x' });
      script = (_request, socket) => socket.write('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n');
      assert.deepEqual(await heads(client, 1), [{ status: 'unknown', reason: 'HEAD answered 500' }]);
      script = (_request, socket) => socket.destroy();
      const [dropped] = await heads(client, 1);
      assert.equal(dropped!.status, 'unknown');
    } finally {
      await client.close();
    }
  });

  test('a volume that is not there is "unknown"', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    const client = new VolumeClient();
    try {
      const result = await client.head(`127.0.0.1:${port}`, '/ab/cd/eA==');
      assert.equal(result.status, 'unknown');
    } finally {
      await client.close();
    }
  });

  test('PUT of a buffer and DELETE on one connection, past answers with a body of stated length and chunked ones', async () => {
    const seen: string[] = [];
    const answers = [
      'HTTP/1.1 201 Created\r\nContent-Length: 0\r\nLocation: http://x/a\r\n\r\n',
      'HTTP/1.1 204 No Content\r\n\r\n',
      'HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\n<p>no</p>',
      'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n',
      'HTTP/1.1 409 Conflict\r\nContent-Length: 4\r\n\r\nno!\n',
      'HTTP/1.1 204 No Content\r\n\r\n',
    ];
    script = (request, socket, nth) => {
      seen.push(request);
      const answer = answers[nth - 1]!;
      // Send the answer in pieces, so a body is read across several chunks.
      for (let at = 0; at < answer.length; at += 7) socket.write(answer.slice(at, at + 7));
    };
    connections = 0;
    const client = new VolumeClient();
    try {
      await client.put(`${volume}/sv02`, '/ab/cd/a2V5', Buffer.from('the value'), 9);
      assert.equal(await client.delete(`${volume}/sv02`, '/ab/cd/a2V5'), 'deleted');
      assert.equal(await client.delete(volume, '/ab/cd/a2V5'), 'missing');
      await client.put(volume, '/ab/cd/a2V5', Buffer.from('x'), 1);
      await assert.rejects(client.put(volume, '/ab/cd/a2V5', Buffer.from('x'), 1), /answered 409/);
      assert.equal(await client.delete(volume, '/ab/cd/a2V5'), 'deleted');
      assert.equal(connections, 1, 'every answer was read to its end and the connection reused');
      assert.equal(
        seen[0],
        'PUT /sv02/ab/cd/a2V5 HTTP/1.1\r\nHost: ' +
          volume +
          '\r\nContent-Type: application/octet-stream\r\nContent-Length: 9\r\n\r\nthe value',
      );
      assert.equal(seen[1], 'DELETE /sv02/ab/cd/a2V5 HTTP/1.1\r\nHost: ' + volume + '\r\n\r\n');
    } finally {
      await client.close();
    }
  });

  test('an answer whose body has no stated length ends its connection; one with more than its answer is not trusted', async () => {
    let answered = 0;
    script = (_request, socket) => {
      if (++answered === 1) socket.write('HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\n\r\nsomething broke');
      else socket.write('HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n\r\n');
    };
    connections = 0;
    const client = new VolumeClient();
    try {
      await assert.rejects(client.delete(volume, '/ab/cd/eA=='), /answered 500/);
      assert.equal(await client.delete(volume, '/ab/cd/eA=='), 'deleted', 'the answer stands; the extra bytes end the connection');
      assert.equal(await client.delete(volume, '/ab/cd/eA=='), 'deleted');
      assert.equal(connections, 3, 'a new connection after each');
    } finally {
      await client.close();
    }
  });

  test('a DELETE or PUT that gets no answer fails at the volume timeout', async () => {
    script = () => {};
    const client = new VolumeClient({ requestTimeoutMs: 300 });
    try {
      await assert.rejects(client.delete(volume, '/ab/cd/eA=='), /DELETE http:\/\/[^ ]+: the volume timed out after 300 ms/);
      await assert.rejects(client.put(volume, '/ab/cd/eA==', Buffer.from('v'), 1), /PUT http:\/\/[^ ]+: the volume timed out after 300 ms/);
    } finally {
      await client.close();
    }
  });
});
