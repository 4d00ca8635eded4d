// The admin listener (--admin-port), off the key space:
//   GET /             the status page: volumes, keys, log, request rates, last events (status.ts)
//   GET /status.json  the same as JSON (mkv status reads it)
//   GET /metrics      Prometheus text (metrics.ts)
//   GET /healthz      200 while the process serves
//   GET /readyz       200 when the log takes writes, the index has applied the whole log and every
//                     volume answers; else 503, with each check's result as JSON
// With --credentials, the status and /metrics need a key with the admin right (Basic, as
// Prometheus and browsers send it); /healthz and /readyz stay open for load balancers and supervisors.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { authenticate } from '../auth/authenticate.js';
import { MkvError } from '../errors.js';
import type { Credentials } from '../auth/credentials.js';
import type { Metrics } from '../metrics.js';
import type { VolumeClient } from '../volumes/client.js';
import type { Store } from '../db/store.js';
import type { StatusSource } from './status.js';
import { statusPage } from './status-page.js';

export interface AdminDeps {
  metrics: Metrics;
  /** The Prometheus text to serve (the primary's and its workers' metrics, with --workers). */
  gather?: () => Promise<string>;
  store: Store;
  volumes: VolumeClient;
  volumeNames: string[];
  /** mkv server --credentials: who may read /metrics and the status. */
  credentials?: Credentials;
  status?: StatusSource;
}

/** How long /readyz waits for a log service (JetStream) to answer. */
const LOG_PING_MS = 2000;

async function readiness(deps: AdminDeps): Promise<{ ready: boolean; checks: Record<string, unknown> }> {
  const { store } = deps;
  const [volumes, logAnswer] = await Promise.all([
    Promise.all(
      deps.volumeNames.map(async (volume) => {
        const state = await deps.volumes.probe(volume);
        deps.metrics.volumeUp.set({ volume }, state === 'ok' ? 1 : 0);
        return [volume, state] as const;
      }),
    ),
    // A log on a service can be gone while this process is fine: ask it (this also refreshes
    // its last seq, so the projector's lag below counts other masters' events).
    store.log.ping && !store.readOnly
      ? store.log.ping(LOG_PING_MS).then(
          () => 'ok',
          (error: Error) => error.message,
        )
      : Promise.resolve('ok'),
  ]);
  const lag = store.log.lastSeq - store.index.checkpoint;
  const checks = {
    log: store.readOnly ? 'read-only' : !store.writer.healthy ? 'the writer has stopped' : logAnswer,
    projector: lag === 0 ? 'ok' : `${lag} events behind the log`,
    volumes: Object.fromEntries(volumes),
  };
  const ready = (checks.log === 'ok' || checks.log === 'read-only') && lag === 0 && volumes.every(([, state]) => state === 'ok');
  return { ready, checks };
}

/** Why a request may not read `path` (undefined: it may): no credentials or wrong ones (401), or a key without the admin right (403). */
function adminRefusal(credentials: Credentials, request: IncomingMessage, path: string): MkvError | undefined {
  let identity;
  try {
    // The request as it came (its path, its query, its Host): a signature made for another port's /metrics does not hold here.
    const url = request.url ?? '/metrics';
    const at = url.indexOf('?');
    identity = authenticate(credentials, {
      method: request.method ?? 'GET',
      rawPath: at === -1 ? url : url.slice(0, at),
      query: at === -1 ? '' : url.slice(at + 1),
      headers: request.headers,
    });
  } catch (error) {
    return error instanceof MkvError ? error : new MkvError('MKV_UNAUTHENTICATED', 'the credentials could not be read');
  }
  // The admin port shows the whole cluster (every key's last events, every volume): an admin
  // right limited to some prefixes is not enough.
  if (identity.grant?.rights.has('admin') && identity.grant.prefixes.length === 0) return undefined;
  if (identity.name === 'anonymous')
    return new MkvError('MKV_UNAUTHENTICATED', `${path} needs an access key with the admin right on every key`);
  return new MkvError('MKV_ACCESS_DENIED', `${identity.name} may not read ${path}: it needs the admin right on every key, with no prefix`);
}

export function createAdminServer(deps: AdminDeps): Server {
  return createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      // The page runs nothing, loads nothing and is framed by no one: what an index holds (a key
      // with markup in it) can never act in an operator's browser, escaped or not.
      const page = type.startsWith('text/html')
        ? {
            'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
            'x-frame-options': 'DENY',
            'cache-control': 'no-store',
          }
        : {};
      response.writeHead(status, {
        'content-type': type,
        'content-length': Buffer.byteLength(body),
        'x-content-type-options': 'nosniff',
        ...page,
      });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(405, 'text/plain', 'GET only\n');
    if (path === '/healthz') return send(200, 'text/plain', 'ok\n');
    const status = deps.status;
    const guarded = path === '/metrics' || (status !== undefined && (path === '/' || path === '/status.json'));
    const refusal = guarded && deps.credentials ? adminRefusal(deps.credentials, request, path) : undefined;
    if (refusal) {
      if (refusal.status === 401) response.setHeader('WWW-Authenticate', 'Basic realm="mkv", charset="UTF-8"');
      deps.metrics.authFailures.inc({ reason: refusal.code.slice('MKV_'.length).toLowerCase() });
      return send(refusal.status, 'text/plain', `${refusal.code}: ${refusal.message}\n`);
    }
    if (status && (path === '/' || path === '/status.json')) {
      status.status().then(
        (now) =>
          path === '/' ? send(200, 'text/html; charset=utf-8', statusPage(now)) : send(200, 'application/json', JSON.stringify(now) + '\n'),
        () => send(500, 'text/plain', 'internal error\n'),
      );
      return;
    }
    if (path === '/metrics') {
      (deps.gather ?? (() => deps.metrics.registry.metrics()))().then(
        (text) => send(200, deps.metrics.registry.contentType, text),
        () => send(500, 'text/plain', 'internal error\n'),
      );
      return;
    }
    if (path === '/readyz') {
      readiness(deps).then(
        (result) => send(result.ready ? 200 : 503, 'application/json', JSON.stringify(result) + '\n'),
        () => send(500, 'text/plain', 'internal error\n'),
      );
      return;
    }
    send(404, 'text/plain', 'the admin port serves / (status), /status.json, /metrics, /healthz and /readyz\n');
  });
}
