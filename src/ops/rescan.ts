// mkv rebuild --scan: what the original's rebuild did — walk every volume's JSON listing, turn
// each file name back into its key — recorded as KeyDiscovered events, so index == replay(log).
//
//   volume/            sv00/ … svNN/ (subvolumes) or the hash directories directly
//   (sub)volume/XX/YY/ base64 name; a "/" in the base64 is a deeper directory, a final "/" is "_"
//
// Keys the log knows keep their state and md5 (only where they are found changes); keys the log
// saw deleted are reported, not resurrected; files that are not keys, and listing errors, are
// reported; keys in the index that no volume holds are reported.
import type { Change, EventInput } from '../events/event.js';
import { allBlobs } from '../index/evolve.js';
import { checkKeyFits } from '../keys/key-limits.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { blobPath, keyToVolumes, pathNameToKey, splitVersion } from '../placement.js';
import { VolumeClient, volumeUrl } from '../volumes/client.js';
import { openStore } from '../db/store.js';
import { createProgress } from './progress.js';
import { runQueue } from './work-queue.js';
import type { NatsAccess } from '../log/nats-connection.js';

export interface RescanOptions {
  volumes: string[];
  replicas: number;
  subvolumes: number;
  /** Directory listings in flight at once. */
  concurrency?: number;
  quiet?: boolean;
  logger?: Logger;
  /** The log on NATS JetStream instead of DB/log. */
  logUrl?: string;
  /** With logUrl: the files of its credentials and TLS. */
  logAccess?: NatsAccess;
  /** The volumes' secret (--volume-secret-file): listings and HEADs are signed with it. */
  secret?: string;
}

export interface RescanReport {
  files: number;
  keys: number;
  /** KeyDiscovered events appended. */
  discovered: number;
  /** Keys found exactly where the index has them. */
  unchanged: number;
  notKeys: string[];
  listingErrors: string[];
  sizeMismatches: string[];
  /** Keys the log saw deleted whose blob is still on a volume (reported, not resurrected). */
  deletedButPresent: string[];
  /** Keys in the index (live or unlinked) that no volume holds. */
  onNoVolume: string[];
  seconds: number;
}

interface Found {
  volumes: string[];
  size: number | undefined;
}

const SUBVOLUME_DIR = /^sv[0-9A-F]{2,}$/;
const HASH_DIR = /^[0-9a-f]{2}$/;
const EVENTS_PER_APPEND = 1000;

interface Listing {
  volume: string;
  /** Path inside the (sub)volume, ending in "/". */
  path: string;
  /** The name parts below /XX/YY/ so far (a base64 holding "/"). */
  nameParts: string[];
  depth: number;
}

/** Places a key's volumes as placement orders them, then any others where they were found. */
function placementOrder(found: string[], target: string[]): string[] {
  return [...target.filter((volume) => found.includes(volume)), ...found.filter((volume) => !target.includes(volume)).sort()];
}

/** The two hash directories a blob's path starts with (placement.ts keyToPath), as a listing's path holds them. */
const HASH_DIRS = '/XX/YY/';

export async function rescanVolumes(db: string, options: RescanOptions): Promise<RescanReport> {
  const started = Date.now();
  const logger = options.logger ?? silentLogger;
  const client = new VolumeClient({
    headTimeoutMs: 30_000,
    connectionsPerVolume: 16,
    ...(options.secret ? { secret: options.secret } : {}),
  });
  const store = await openStore(db, {
    logger,
    purpose: 'mkv rebuild --scan',
    ...(options.logUrl ? { logUrl: options.logUrl, logAccess: options.logAccess ?? {} } : {}),
  });
  const report: RescanReport = {
    files: 0,
    keys: 0,
    discovered: 0,
    unchanged: 0,
    notKeys: [],
    listingErrors: [],
    sizeMismatches: [],
    deletedButPresent: [],
    onNoVolume: [],
    seconds: 0,
  };
  const found = new Map<string, Map<number, Found>>();
  const progress = createProgress({ label: 'rescan', unit: 'files', quiet: options.quiet ?? false });
  try {
    // Which roots each volume has: its subvolumes, or the volume itself.
    const roots: Listing[] = [];
    for (const volume of options.volumes) {
      try {
        const entries = await client.list(volume, '/');
        const subvolumes = entries.filter((entry) => entry.type === 'directory' && SUBVOLUME_DIR.test(entry.name));
        if (subvolumes.length > 0)
          for (const entry of subvolumes) roots.push({ volume: `${volume}/${entry.name}`, path: '/', nameParts: [], depth: 0 });
        else roots.push({ volume, path: '/', nameParts: [], depth: 0 });
      } catch (error) {
        report.listingErrors.push((error as Error).message);
      }
    }

    await runQueue(roots, options.concurrency ?? 32, async (listing, push) => {
      let entries;
      try {
        entries = await client.list(listing.volume, listing.path);
      } catch (error) {
        report.listingErrors.push((error as Error).message);
        return;
      }
      for (const entry of entries) {
        const where = volumeUrl(listing.volume, listing.path + entry.name);
        if (listing.depth < 2) {
          // Levels one and two are the hash directories XX/YY.
          if (entry.type === 'directory' && HASH_DIR.test(entry.name))
            push({ ...listing, path: `${listing.path}${entry.name}/`, depth: listing.depth + 1 });
          else if (!(listing.depth === 0 && SUBVOLUME_DIR.test(entry.name))) report.notKeys.push(where);
          continue;
        }
        if (entry.type === 'directory') {
          push({
            ...listing,
            path: `${listing.path}${entry.name}/`,
            nameParts: [...listing.nameParts, entry.name],
            depth: listing.depth + 1,
          });
          continue;
        }
        report.files++;
        progress.add(1);
        // "name~N": version N of a key's blob, an S3 overwrite's (placement.ts blobPath).
        const versioned = splitVersion(entry.name);
        const name = [...listing.nameParts, versioned?.name ?? entry.name].join('/');
        const key = versioned && pathNameToKey(name);
        if (
          key === undefined ||
          blobPath(key, versioned!.version) !== listing.path.slice(0, HASH_DIRS.length) + [...listing.nameParts, entry.name].join('/')
        ) {
          report.notKeys.push(where);
          continue;
        }
        // A name another store wrote (the Go original takes longer keys) that cannot be a key here.
        const unfit = problemOf(key);
        if (unfit) {
          report.notKeys.push(`${where} (${unfit})`);
          continue;
        }
        const versions = found.get(key) ?? new Map<number, Found>();
        found.set(key, versions);
        const seen = versions.get(versioned!.version);
        if (!seen) versions.set(versioned!.version, { volumes: [listing.volume], size: entry.size });
        else {
          seen.volumes.push(listing.volume);
          if (entry.size !== undefined && seen.size !== undefined && entry.size !== seen.size)
            report.sizeMismatches.push(`${key}: ${seen.size} and ${entry.size} bytes`);
        }
      }
    });

    // Decide, then append, in key order so the log reads sensibly.
    const cause = { origin: 'rebuild', client: null };
    let batch: EventInput[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      await store.writer.append(batch);
      report.discovered += batch.length;
      batch = [];
    };
    for (const key of [...found.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) {
      const target = keyToVolumes(key, options.volumes, options.replicas, options.subvolumes);
      const record = store.index.get(key);
      if (!record && store.index.historyOf(key).length > 0) {
        report.deletedButPresent.push(key);
        continue;
      }
      // The newest version first: for a key the log does not know, it is the value, the rest stale.
      const versions = [...found.get(key)!.entries()].sort(([a], [b]) => b - a);
      for (const [version, { volumes, size }] of versions) {
        const ordered = placementOrder(volumes, target);
        const known = record && allBlobs(record).find((blob) => blob.version === version);
        if (known && known.volumes.length === ordered.length && known.volumes.every((volume, i) => volume === ordered[i])) {
          report.unchanged++;
          continue;
        }
        if (known && known.version !== record.version) continue; // an overwrite's or a stale blob the log names
        const change: Change =
          version === 0
            ? { type: 'KeyDiscovered', volumes: ordered, size: size ?? null, md5: null }
            : { type: 'ObjectDiscovered', volumes: ordered, size: size ?? null, version };
        batch.push({ key, cause, change });
      }
      if (batch.length >= EVENTS_PER_APPEND) await flush();
    }
    await flush();
    report.keys = found.size;

    for (const [key, record] of store.index.entries()) {
      if ((record.state === 'live' || record.state === 'unlinked') && !found.has(key)) report.onNoVolume.push(key);
    }
  } finally {
    await store.close();
    await client.close();
  }
  report.seconds = (Date.now() - started) / 1000;
  progress.finish(
    `rescanned ${report.files} files (${Math.round(report.files / Math.max(report.seconds, 1e-3))} files/s): ` +
      `${report.keys} keys, ${report.discovered} recorded as discovered, ${report.unchanged} unchanged, ` +
      `${report.notKeys.length} not keys, ${report.deletedButPresent.length} deleted but present, ` +
      `${report.onNoVolume.length} in the index on no volume, ${report.listingErrors.length} listing errors`,
  );
  return report;
}

/** Why `key` cannot be a key of this store (key-limits.ts), or undefined when it can. */
function problemOf(key: string): string | undefined {
  try {
    checkKeyFits(key);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
