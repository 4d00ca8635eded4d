// A volume server with faults on demand, in front of a real embedded one (real files):
//   ok      behaves as the embedded volume server
//   slow    answers nothing for `delayMs` (a PUT's body is not read meanwhile: a stuck disk)
//   error        answers 500 to everything
//   unavailable  answers 503 to everything, at once (an overloaded or draining server)
//   full         a PUT gets 507 Insufficient Storage after its first bytes, as a full disk does
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createVolumeServer } from '../../src/volumes/volume-server.js';

export type FaultMode = 'ok' | 'slow' | 'error' | 'unavailable' | 'full';

export interface FaultyVolume {
  address: string;
  mode: FaultMode;
  delayMs: number;
  /** Requests that met a fault. */
  faults: number;
  /** Requests a slow fault holds now, not yet handled. */
  readonly holding: number;
  /**
   * Forgets the requests a slow fault is still holding, as a replaced disk does: without this,
   * a DELETE held since the fault (an abandoned write's cleanup) runs seconds later and removes
   * a replica written since.
   */
  dropHeld(): void;
  close(): Promise<void>;
}

export async function startFaultyVolume(root: string): Promise<FaultyVolume> {
  const inner = createVolumeServer({ root });
  const handle = inner.listeners('request')[0] as (request: IncomingMessage, response: ServerResponse) => void;
  const timers = new Set<NodeJS.Timeout>();
  const held = new Map<NodeJS.Timeout, IncomingMessage>();
  const state = { mode: 'ok' as FaultMode, delayMs: 5000, faults: 0 };
  const server: Server = createServer((request, response) => {
    const mode = state.mode;
    if (mode === 'ok') return handle(request, response);
    state.faults++;
    if (mode === 'slow') {
      request.pause();
      const timer = setTimeout(() => {
        timers.delete(timer);
        held.delete(timer);
        request.resume();
        handle(request, response);
      }, state.delayMs);
      timers.add(timer);
      held.set(timer, request);
      return;
    }
    if (mode === 'full' && request.method === 'PUT') {
      request.once('data', () => {
        response.writeHead(507, { connection: 'close', 'content-length': 0 });
        response.end();
        request.destroy();
      });
      return;
    }
    if (mode === 'full') return handle(request, response);
    if (mode === 'unavailable') {
      response.writeHead(503, { 'content-type': 'text/html', 'content-length': 18 });
      response.end('<h1>busy, bye</h1>');
      request.resume();
      return;
    }
    request.resume();
    request.on('end', () => {
      response.writeHead(500, { 'content-length': 0 });
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const volume: FaultyVolume = {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get mode() {
      return state.mode;
    },
    set mode(mode: FaultMode) {
      state.mode = mode;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    get faults() {
      return state.faults;
    },
    set faults(count: number) {
      state.faults = count;
    },
    get holding() {
      return held.size;
    },
    dropHeld() {
      for (const [timer, request] of held) {
        clearTimeout(timer);
        timers.delete(timer);
        request.destroy();
      }
      held.clear();
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return volume;
}
