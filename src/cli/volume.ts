// mkv volume: the embedded volume server (nginx is the production one: nginx/volume).
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { volumeSecret } from '../volumes/signing.js';
import { createVolumeServer } from '../volumes/volume-server.js';
import { defineFlags, type Options } from './args.js';
import { stopOnSignal } from './server.js';

export const volumeFlags = defineFlags({
  port: { type: 'integer', default: 3001, help: 'port to listen on (0: any free port)' },
  host: { type: 'string', default: '', help: 'address to listen on (default: every interface)' },
  dir: { type: 'string', required: true, help: 'the directory that holds the blobs' },
  'volume-secret-file': {
    type: 'string',
    help: "serve only requests signed with the secret in this file (the master's --volume-secret-file; or MKV_VOLUME_SECRET)",
  },
});

export async function startVolume(dir: string, port: number, host = '', secret?: string): Promise<{ server: Server; port: number }> {
  mkdirSync(dir, { recursive: true });
  const server = createVolumeServer({ root: dir, ...(secret ? { secret } : {}) });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (host) server.listen(port, host, resolve);
    else server.listen(port, resolve);
  });
  return { server, port: (server.address() as AddressInfo).port };
}

export async function volumeCommand(flags: Options<typeof volumeFlags>): Promise<void> {
  const { dir, host } = flags;
  const secret = volumeSecret(flags['volume-secret-file']);
  const { server, port } = await startVolume(dir, flags.port, host, secret);
  process.stdout.write(`mkv volume listening on http://${host || '0.0.0.0'}:${port} (dir ${dir})\n`);
  stopOnSignal(() => new Promise<void>((resolve) => server.close(() => resolve())));
}
