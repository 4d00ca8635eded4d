// mkv up: a local cluster for trying things out — a master on 3000 (S3 on 3200, metrics on
// 3100) and three volumes on 3001–3003, data under ./data. Volumes are embedded (in this process) unless --nginx, which
// runs nginx/volume for each. Ctrl-C stops all of it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineFlags, parseFlags, type Options } from './args.js';
import { serverFlags, startServer, stopOnSignal } from './server.js';
import { startVolume } from './volume.js';

export const upFlags = defineFlags({
  port: { type: 'integer', default: 3000, help: 'master port; the volumes take the next three' },
  host: { type: 'string', default: '127.0.0.1', help: 'address everything listens on' },
  data: { type: 'string', default: './data', help: 'where the master db and the volumes live' },
  nginx: { type: 'boolean', default: false, help: 'run the volumes on stock nginx (nginx/volume) instead of embedded' },
  'admin-port': { type: 'integer', help: 'admin port (/metrics, /healthz, /readyz); default PORT + 100' },
  's3-port': { type: 'integer', help: 'S3 port (every request an S3 one, signed or not); default PORT + 200' },
  sync: serverFlags.sync,
  v: serverFlags.v,
  // The original's flags that mean the same for a local cluster as for a master (the others are ignored, as --help says).
  replicas: serverFlags.replicas,
  subvolumes: serverFlags.subvolumes,
  protect: serverFlags.protect,
  md5sum: serverFlags.md5sum,
  voltimeout: serverFlags.voltimeout,
  fallback: serverFlags.fallback,
});

const nginxVolumeScript = fileURLToPath(new URL('../../../nginx/volume', import.meta.url));

async function waitForPort(host: string, port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null) throw new Error(`nginx volume on port ${port} exited with ${child.exitCode}`);
    try {
      await fetch(`http://${host}:${port}/`, { method: 'HEAD' });
      return;
    } catch {
      await new Promise((done) => setTimeout(done, 100));
    }
  }
  throw new Error(`nginx volume on port ${port} did not start`);
}

export async function upCommand(flags: Options<typeof upFlags>): Promise<void> {
  const data = resolve(flags.data);
  const { host, port } = flags;
  const volumePorts = [port + 1, port + 2, port + 3];
  const embedded: Server[] = [];
  const children: ChildProcess[] = [];
  let stopping = false;
  const stopVolumes = async () => {
    stopping = true;
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(embedded.map((server) => new Promise((done) => server.close(done))));
  };
  try {
    for (const [i, volumePort] of volumePorts.entries()) {
      const dir = join(data, `volume${i + 1}`);
      mkdirSync(dir, { recursive: true });
      if (flags.nginx) {
        const child = spawn(nginxVolumeScript, [dir], {
          env: { ...process.env, PORT: String(volumePort) },
          stdio: ['ignore', 'inherit', 'inherit'],
        });
        children.push(child);
        // A volume that stops while the cluster runs is said at once: its keys fail from now on.
        child.once('exit', (code, signal) => {
          if (!stopping)
            process.stderr.write(
              `mkv up: the nginx volume on port ${volumePort} exited (${signal ?? `code ${code}`}); its keys cannot be read or written until mkv up is started again\n`,
            );
        });
        await waitForPort(host, volumePort, child);
      } else {
        embedded.push((await startVolume(dir, volumePort, host)).server);
      }
    }
    const master = await startServer({
      ...parseFlags([], serverFlags).flags,
      port,
      host,
      db: join(data, 'master'),
      volumes: volumePorts.map((volumePort) => `${host === '0.0.0.0' ? 'localhost' : host}:${volumePort}`),
      sync: flags.sync,
      v: flags.v,
      replicas: flags.replicas,
      subvolumes: flags.subvolumes,
      protect: flags.protect,
      md5sum: flags.md5sum,
      voltimeout: flags.voltimeout,
      fallback: flags.fallback,
      'admin-port': flags['admin-port'] ?? port + 100,
      's3-port': flags['s3-port'] ?? port + 200,
    });
    process.stdout.write(
      `mkv up: master on http://${host}:${port}, volumes on ${volumePorts.join(', ')} (${flags.nginx ? 'nginx' : 'embedded'}), data in ${data}\n` +
        `S3 on http://${host}:${master.s3Port} (path style), status on http://${host}:${master.adminPort}/ (also /metrics, /healthz, /readyz; mkv status --admin ${host}:${master.adminPort})\n` +
        `try: curl -L -X PUT -d bigswag http://${host}:${port}/wehave && curl -L http://${host}:${port}/wehave\n` +
        `Ctrl-C stops the cluster.\n`,
    );
    stopOnSignal(async () => {
      await master.close();
      await stopVolumes();
    });
  } catch (error) {
    await stopVolumes();
    throw error;
  }
}
