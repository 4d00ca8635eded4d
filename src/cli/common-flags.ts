// The flags several commands take, declared once, and what a tool opens with them: its db (the
// lock, the log on this disk or on JetStream) and its client for the volumes.
import { defaultConfig } from '../config.js';
import { openStore, type Store } from '../db/store.js';
import { createLogger } from '../logger.js';
import { VolumeClient } from '../volumes/client.js';
import { volumeSecret } from '../volumes/signing.js';
import { defineFlags, durationText, originalFlags } from './args.js';

/** --db, required, with what the command does with it. */
export function dbFlag(help: string) {
  return { type: 'string', required: true, help } as const;
}

export const sharedFlags = defineFlags({
  log: {
    type: 'string',
    default: '',
    help: "the event log on NATS JetStream, nats://host:port[,host:port...][/STREAM], shared by several masters, instead of DB/log (DB then holds this process's own index of it)",
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

/** Opens the db for a tool that appends events: it takes the db's lock, so the master must be stopped. */
export function openToolStore(flags: { db: string; log: string; v: boolean }, purpose: string): Promise<Store> {
  return openStore(flags.db, { logger: createLogger({ verbose: flags.v }), purpose, ...(flags.log ? { logUrl: flags.log } : {}) });
}
