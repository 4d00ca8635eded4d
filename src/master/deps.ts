// What the master's HTTP side needs: the operations' deps (keys/deps.ts), S3's multipart uploads
// and the metrics it counts requests in.
import { EVERYONE, type Identity } from '../auth/authenticate.js';
import type { Cause } from '../events/event.js';
import type { Credentials } from '../auth/credentials.js';
import type { KeyDeps } from '../keys/deps.js';
import type { Metrics } from '../metrics.js';
import type { UploadStore } from '../uploads/upload-store.js';

export interface MasterDeps extends KeyDeps {
  uploads: UploadStore;
  metrics?: Metrics;
  /** Who may do what (mkv server --credentials); undefined: everyone everything, as the original. */
  credentials?: Credentials;
}

/** Counts and (with -v) logs one answered request. */
export function recordRequest(
  deps: MasterDeps,
  method: string,
  path: string,
  status: number,
  started: bigint,
  client: string | null | undefined,
): void {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  deps.metrics?.countRequest(method, status, seconds);
  deps.logger.debug('request', { method, path, status, ms: seconds * 1000, client });
}

/**
 * Who caused the events an API request appends: the client's address and, on a server with
 * --credentials, the access key the request was signed with (or "anonymous").
 */
export function apiCause(client: string | null | undefined, identity: Identity): Cause {
  return identity === EVERYONE ? { origin: 'api', client: client ?? null } : { origin: 'api', client: client ?? null, who: identity.name };
}
