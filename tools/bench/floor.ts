// The floor under a 404, side by side: a server that does nothing but answer 404, on node:http
// and on a raw socket (2 cluster workers each, as mkv server runs), and the Go original's 404
// when MKV_GO names its binary — wrk -t2 -c100 on each: how much of a 404's budget node:http
// itself takes (here it costs more per request than the Go original's whole 404 path).
//
//   npm run build && [MKV_GO=/path/to/mkv-go] node dist/tools/bench/floor.js [--seconds 6]
import { spawn } from 'node:child_process';
import cluster from 'node:cluster';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '../../test/helpers/host.js';
import { goBinary, startGo } from './masters.js';
import { formatWrk, wrk } from './wrk.js';

const REPLY = Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');

/** A worker: answers every request with an empty 404, on node:http or counting heads on the raw socket. */
function serve(kind: string, port: number): void {
  if (kind === 'node:http') {
    createHttpServer((_request, response) => {
      response.statusCode = 404;
      response.setHeader('Content-Length', 0);
      response.end();
    }).listen(port, '127.0.0.1');
    return;
  }
  createNetServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      for (let at = chunk.indexOf('\r\n\r\n'); at !== -1; at = chunk.indexOf('\r\n\r\n', at + 4)) socket.write(REPLY);
    });
  }).listen(port, '127.0.0.1');
}

async function listening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`nothing listens on ${port}`);
}

async function main(): Promise<void> {
  const at = process.argv.indexOf('--seconds');
  const seconds = at === -1 ? 6 : Number(process.argv[at + 1]);
  for (const kind of ['node:http', 'raw socket']) {
    const port = await freePort();
    const child = spawn(process.execPath, [process.argv[1]!, '--serve', kind, String(port)], { stdio: 'inherit' });
    try {
      await listening(port);
      console.log(formatWrk(`${kind} 404`.padEnd(14), await wrk({ url: `http://127.0.0.1:${port}/no/such/key`, seconds })));
    } finally {
      child.kill('SIGTERM');
    }
  }
  const go = goBinary();
  if (go) {
    const root = mkdtempSync(join(tmpdir(), 'mkv-bench-floor-'));
    const master = await startGo(go, { volumes: ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3'], db: join(root, 'db') });
    try {
      console.log(formatWrk('go 404'.padEnd(14), await wrk({ url: `${master.url}/no/such/key`, seconds })));
    } finally {
      await master.stop();
      rmSync(root, { recursive: true, force: true });
    }
  }
}

const serving = process.argv.indexOf('--serve');
if (serving !== -1) {
  const [kind, port] = [process.argv[serving + 1]!, Number(process.argv[serving + 2])];
  if (cluster.isPrimary) {
    for (let i = 0; i < 2; i++) cluster.fork();
    process.on('SIGTERM', () => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
      process.exit(0);
    });
  } else serve(kind, port);
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
