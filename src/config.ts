// What the master needs to know, as parsed from the command line (cli/server.ts), and the
// defaults of all of it: the flags (cli/), the tools and the volume client take theirs from here.
export interface MasterConfig {
  /** Volume servers, host:port. */
  volumes: string[];
  replicas: number;
  subvolumes: number;
  /** DELETE refuses a key that was not UNLINKed first. */
  protect: boolean;
  /** host:port to redirect missing keys to, or "" for 404. */
  fallback: string;
  /** Compute the md5 of every value while streaming it. */
  md5sum: boolean;
  /** Deadline of the HEAD that a GET sends to a replica. */
  voltimeoutMs: number;
  /** How long a volume may stall a PUT or take to answer a PUT/DELETE. */
  volumeRequestTimeoutMs: number;
  /** How long a PUT body may stall before the request is refused. */
  bodyTimeoutMs: number;
  /** Serve reads only (a point-in-time db): every write answers 403. */
  readOnly: boolean;
  /** With a shared log (JetStream): how long a pending key may be another master's write in flight. */
  pendingGraceMs: number;
  /** The secret the volumes check every request's signed link against; none: they serve anyone. */
  volumeSecret?: string;
  /** How long a redirect's signed link reads its blob (with volumeSecret). */
  linkTtlMs: number;
  /** How long the blob of a value an S3 overwrite replaced stays, for readers sent to it just before. */
  staleGraceMs: number;
  /**
   * --retain: how long every replaced value's blob (overwritten, deleted) is kept after it was
   * replaced, readable with ?version and ?at; 0: off (a DELETE removes the blobs at once).
   */
  retainMs: number;
}

export const defaultConfig: MasterConfig = {
  volumes: [],
  replicas: 3,
  subvolumes: 10,
  protect: false,
  fallback: '',
  md5sum: true,
  voltimeoutMs: 1000,
  volumeRequestTimeoutMs: 30_000,
  bodyTimeoutMs: 10_000,
  readOnly: false,
  pendingGraceMs: 3_600_000,
  linkTtlMs: 600_000,
  staleGraceMs: 60_000,
  retainMs: 0,
};

/** Connections the master keeps to each volume. */
export const DEFAULT_CONNECTIONS_PER_VOLUME = 128;
