// A real nats-server with JetStream for tests: loopback only, its store in a temp dir.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { freePort, removeDir, tempDir } from './cluster.js';

export function natsSkipReason(): string | false {
  if (spawnSync('sh', ['-c', 'command -v nats-server'], { stdio: 'ignore' }).status === 0) return false;
  if (process.env.CI) throw new Error('CI must install nats-server (see .ci/run)');
  return 'nats-server is not installed (apt-get install -y nats-server)';
}

export interface NatsServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

async function listening(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}`);
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nats-server did not listen on ${port}`);
}

export async function startNats(): Promise<NatsServer> {
  const port = await freePort();
  const store = tempDir('mkv-nats-');
  const child = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], { stdio: 'ignore' });
  await listening(port, child);
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      removeDir(store);
    },
  };
}
