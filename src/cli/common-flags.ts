// The flags several commands take, declared once, and what a tool opens with them: its db (the
// lock, the log on this disk or on JetStream) and its client for the volumes.
import { existsSync } from 'node:fs';
import { defaultConfig } from '../config.js';
import { indexDir, logDir } from '../db/paths.js';
import { openStore, type Store } from '../db/store.js';
import type { NatsAccess } from '../log/nats-connection.js';
import { createLogger } from '../logger.js';
import { VolumeClient } from '../volumes/client.js';
import { volumeSecret } from '../volumes/signing.js';
import { defineFlags, durationText, originalFlags, UsageError } from './args.js';

/** --db, required, with what the command does with it. */
export function dbFlag(help: string) {
  return { type: 'string', required: true, help } as const;
}

export const sharedFlags = defineFlags({
  log: {
    type: 'string',
    default: '',
    help: "the event log on NATS JetStream, nats://[USER:PASSWORD@]host:port[,host:port...][/STREAM] (tls://... for TLS), shared by several masters, instead of DB/log (DB then holds this process's own index of it)",
  },
  'volume-secret-file': {
    type: 'string',
    help: 'a file with the secret the volumes hold too (or MKV_VOLUME_SECRET): every request to a volume, and every redirect to one, is signed with it, and they serve nothing else',
  },
  'volume-timeout': {
    type: 'duration',
    default: durationText(defaultConfig.volumeRequestTimeoutMs),
    help: 'how long a volume may stall a PUT, or take to answer a PUT or DELETE',
  },
  voltimeout: originalFlags.voltimeout,
  volumes: { ...originalFlags.volumes, required: true },
  replicas: originalFlags.replicas,
  subvolumes: originalFlags.subvolumes,
  v: originalFlags.v,
});

/** How a command that takes --log reaches NATS besides the URL: credentials and TLS, each from a file. */
export const logAccessFlags = defineFlags({
  'log-password-file': {
    type: 'string',
    help: "with --log nats://USER@host: a file holding that user's NATS password (kept off the command line)",
  },
  'log-token-file': { type: 'string', help: 'with --log: a file holding the NATS token' },
  'log-nkey': { type: 'string', help: 'with --log: a file holding a NATS user nkey seed (SU...)' },
  'log-creds': { type: 'string', help: 'with --log: a NATS .creds file (user JWT and seed, for an operator-mode server)' },
  'log-tls-ca': { type: 'string', help: "with --log: the CA (PEM) that signed the NATS servers' certificates; connect with TLS" },
  'log-tls-cert': {
    type: 'string',
    help: 'with --log: a client certificate (PEM) for NATS servers that verify clients (with --log-tls-key)',
  },
  'log-tls-key': { type: 'string', help: "with --log: the client certificate's key (PEM)" },
});

type LogAccessFlags = { log?: string | undefined } & { [K in keyof typeof logAccessFlags]?: string | undefined };

/** The --log-* files, for JetStreamLog.open; refused without --log, where they would be ignored. */
export function logAccess(flags: LogAccessFlags): NatsAccess {
  const access: NatsAccess = {};
  const names = {
    'log-password-file': 'passwordFile',
    'log-token-file': 'tokenFile',
    'log-nkey': 'nkeyFile',
    'log-creds': 'credsFile',
    'log-tls-ca': 'tlsCaFile',
    'log-tls-cert': 'tlsCertFile',
    'log-tls-key': 'tlsKeyFile',
  } as const;
  for (const [flag, field] of Object.entries(names) as Array<[keyof typeof names, (typeof names)[keyof typeof names]]>) {
    const file = flags[flag];
    if (file === undefined) continue;
    if (!flags.log) throw new UsageError(`--${flag} goes with --log nats://...`);
    access[field] = file;
  }
  return access;
}

/** openStore's options for --log and its files: none without --log (and then no --log-* file either). */
export function logStoreOptions(flags: LogAccessFlags): { logUrl?: string; logAccess?: NatsAccess } {
  const access = logAccess(flags);
  return flags.log ? { logUrl: flags.log, logAccess: access } : {};
}

/** The volume secret of --volume-secret-file (or MKV_VOLUME_SECRET), as a VolumeClient's option. */
export function secretOption(flags: { 'volume-secret-file'?: string | undefined }): { secret?: string } {
  const secret = volumeSecret(flags['volume-secret-file']);
  return secret ? { secret } : {};
}

/** A tool's client for the volumes: the deadlines its flags give, signed when the volumes hold a secret. */
export function toolVolumeClient(flags: {
  voltimeout?: number;
  'volume-timeout'?: number;
  'volume-secret-file'?: string | undefined;
}): VolumeClient {
  return new VolumeClient({
    ...(flags.voltimeout !== undefined ? { headTimeoutMs: flags.voltimeout } : {}),
    ...(flags['volume-timeout'] !== undefined ? { requestTimeoutMs: flags['volume-timeout'] } : {}),
    ...secretOption(flags),
  });
}

/**
 * Refuses a --db that is no mkv db (neither DB/log nor DB/index in it: a typo, or the data
 * directory above it), before anything reads or creates anything there.
 */
export function existingDb(db: string): string {
  if (existsSync(logDir(db)) || existsSync(indexDir(db))) return db;
  throw new UsageError(
    `--db ${db} is not an mkv db (it has no log/ or index/); give the directory mkv server --db was given (mkv up: DATA/master)`,
  );
}

/**
 * Opens the db for a tool that appends events: it takes the db's lock, so the master must be
 * stopped. A db of its own (a local log) must exist; with --log the stream holds the log, and
 * DB is this tool's index of it, made if new.
 */
/** The db a tool works on; `readOnly` (a dry run): beside a running master, changing nothing, taking no lock. */
export function openToolStore(
  flags: { db: string; log: string; v: boolean } & LogAccessFlags,
  purpose: string,
  readOnly = false,
): Promise<Store> {
  if (!flags.log) existingDb(flags.db);
  return openStore(flags.db, {
    logger: createLogger({ verbose: flags.v }),
    purpose,
    readOnly,
    ...logStoreOptions(flags),
  });
}
