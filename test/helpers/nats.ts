// A real nats-server with JetStream for tests: loopback only, its store in a temp dir. Free of
// node:test (as host.ts is): tools/bench starts its NATS servers here too.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, listening, removeDir, tempDir } from './host.js';

export function natsSkipReason(): string | false {
  if (spawnSync('sh', ['-c', 'command -v nats-server'], { stdio: 'ignore' }).status === 0) return false;
  if (process.env.CI) throw new Error('CI must install nats-server (see .ci/run)');
  return 'nats-server is not installed (apt-get install -y nats-server)';
}

export interface NatsServer {
  url: string;
  port: number;
  /** SIGSTOP: the server keeps its connections but answers nothing, as a hung node does. */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  stop(): Promise<void>;
}

/**
 * One nats-server with JetStream on a free loopback port. With `config`, it runs from that
 * configuration file instead (authorization, TLS): `config` gets the port and a store directory
 * and returns the file's text, which must listen on 127.0.0.1:port and enable JetStream there.
 */
export async function startNats(options: { config?: (server: { port: number; storeDir: string }) => string } = {}): Promise<NatsServer> {
  const port = await freePort();
  const store = tempDir('mkv-nats-');
  let args = ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store];
  if (options.config) {
    const file = join(store, 'nats-server.conf');
    writeFileSync(file, options.config({ port, storeDir: join(store, 'jetstream') }));
    args = ['-c', file];
  }
  const child = spawn('nats-server', args, { stdio: 'ignore' });
  await listening(port, child, 'nats-server');
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    freeze: () => child.kill('SIGSTOP'),
    thaw: () => child.kill('SIGCONT'),
    async stop() {
      child.kill('SIGCONT');
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      removeDir(store);
    },
  };
}

export interface NatsCluster {
  /** nats://host:port,host:port,host:port */
  url: string;
  nodes: number;
  stop(node: number): Promise<void>;
  start(node: number): Promise<void>;
  close(): Promise<void>;
}

/** A JetStream cluster of three nats-server nodes on loopback ports (routes between them). */
export async function startNatsCluster(): Promise<NatsCluster> {
  const clientPorts = [await freePort(), await freePort(), await freePort()];
  const routePorts = [await freePort(), await freePort(), await freePort()];
  const stores = clientPorts.map(() => tempDir('mkv-nats-node-'));
  const children: Array<ChildProcess | undefined> = [];
  const routes = routePorts.map((port) => `nats://127.0.0.1:${port}`).join(',');
  const start = async (node: number) => {
    const child = spawn(
      'nats-server',
      [
        '-js',
        '-a',
        '127.0.0.1',
        '-p',
        String(clientPorts[node]),
        '-sd',
        stores[node]!,
        '-n',
        `node${node}`,
        '--cluster_name',
        'mkv-test',
        '--cluster',
        `nats://127.0.0.1:${routePorts[node]}`,
        '--routes',
        routes,
      ],
      { stdio: 'ignore' },
    );
    children[node] = child;
    await listening(clientPorts[node]!, child, `nats-server node${node}`);
  };
  const stop = async (node: number) => {
    const child = children[node];
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  };
  for (let node = 0; node < 3; node++) await start(node);
  return {
    url: `nats://${clientPorts.map((port) => `127.0.0.1:${port}`).join(',')}`,
    nodes: 3,
    stop,
    start,
    async close() {
      for (let node = 0; node < 3; node++) await stop(node);
      for (const store of stores) removeDir(store);
    },
  };
}
