// What helpers share about this machine: temp dirs, free loopback ports, waiting for a server to
// listen. No node:test here (importing it makes a process a test run), so tools/bench can use it.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './wait.js';

export function tempDir(prefix = 'mkv-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once 127.0.0.1:port takes a connection; fails if `child` exits first, or at the deadline. */
export async function listening(port: number, child: ChildProcess, name: string, ms = 30_000): Promise<void> {
  await until(
    `${name} to listen on ${port}`,
    () => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} before it listened on ${port}`);
      return new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
    },
    ms,
  );
}
