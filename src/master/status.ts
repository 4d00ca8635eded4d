// What the cluster looks like now, for the status page (the admin port's `/`), its JSON
// (`/status.json`) and `mkv status`:
//
//   volumes   up or what is wrong (a probe, as /readyz), the disk's free space as the volume
//             tells it at /.disk (nginx through nginx/disk-report), blobs and bytes the index puts there
//   keys      live / unlinked / pending / deleting, live bytes, live keys not where placement
//             puts them now (unbalanced: `mkv rebalance` moves them)
//   log       where, first and last seq, segments and bytes (DB/log), the projector's lag
//   rates     requests a second over the last minute, reads and writes, from the metrics
//   recent    the last events of the log
//
// The key counts come from a walk of the whole index (a census), a page at a time with the event
// loop let go between pages, at most once a minute: the page says how old its figures are.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { Store } from '../db/store.js';
import { eventToJson } from '../events/event.js';
import { SegmentLog } from '../log/segment-log.js';
import { keyToVolumes, needsRebalance } from '../placement.js';
import type { VolumeClient } from '../volumes/client.js';

export interface StatusDeps {
  store: Store;
  volumes: VolumeClient;
  /** What placement needs to say where a key belongs now. */
  placement: { volumes: string[]; replicas: number; subvolumes: number };
  /** The Prometheus text of the master (and its workers). */
  gather: () => Promise<string>;
  version: string;
  startedAt: number;
}

export interface VolumeStatus {
  volume: string;
  /** 'ok', or what is wrong in a few words. */
  state: string;
  /** Free and total bytes of its disk, when the volume says (null: it does not). */
  diskFree: number | null;
  diskSize: number | null;
  /** How old those figures are, in seconds (nginx/disk-report rewrites them every few seconds). */
  diskAgeSeconds: number | null;
  /** Blobs of live and unlinked keys the index puts on it, and their bytes. */
  blobs: number;
  bytes: number;
}

export interface Census {
  /** When the walk ended, and how long it took. */
  at: string;
  seconds: number;
  live: number;
  unlinked: number;
  pending: number;
  deleting: number;
  /** Keys deleted with --retain whose blobs are kept for the window. */
  deleted: number;
  liveBytes: number;
  unbalanced: number;
  byVolume: Record<string, { blobs: number; bytes: number }>;
}

export interface ClusterStatus {
  time: string;
  master: { version: string; startedAt: string; readOnly: boolean };
  volumes: VolumeStatus[];
  keys: Census;
  log: {
    location: string;
    firstSeq: number;
    lastSeq: number;
    /** Events the index has still to apply (a master catching up on JetStream). */
    lag: number;
    /** The segment log's files (null on JetStream). */
    segments: number | null;
    bytes: number | null;
    writer: string;
  };
  /** Requests a second over the last minute (null until two samples a few seconds apart exist). */
  rates: { reads: number | null; writes: number | null; errors: number | null; over: number | null };
  recent: Array<Record<string, unknown>>;
}

/** How often a census may walk the index. */
const CENSUS_EVERY_MS = 60_000;
/** Keys a census reads before it lets the event loop go. */
const CENSUS_PAGE = 2000;
/** How often, and over how long, request counts are sampled for the rates. */
const SAMPLE_EVERY_MS = 5000;
const RATE_WINDOW_MS = 60_000;
const RECENT_EVENTS = 10;

const READS = new Set(['GET', 'HEAD']);

/** Requests so far by kind, summed from mkv_http_requests_total in Prometheus text. */
export function requestTotals(metrics: string): { reads: number; writes: number; errors: number } {
  const totals = { reads: 0, writes: 0, errors: 0 };
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('mkv_http_requests_total{')) continue;
    const method = /method="([^"]*)"/.exec(line)?.[1] ?? '';
    const status = Number(/status="(\d+)"/.exec(line)?.[1] ?? 0);
    const count = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (!Number.isFinite(count)) continue;
    if (READS.has(method)) totals.reads += count;
    else totals.writes += count;
    if (status >= 500) totals.errors += count;
  }
  return totals;
}

export class StatusSource {
  private census: Census | undefined;
  private walking: Promise<Census> | undefined;
  private readonly samples: Array<{ at: number; reads: number; writes: number; errors: number }> = [];
  private readonly sampler: NodeJS.Timeout;

  constructor(private readonly deps: StatusDeps) {
    this.sampler = setInterval(() => void this.sample().catch(() => undefined), SAMPLE_EVERY_MS);
    this.sampler.unref();
    void this.sample().catch(() => undefined);
  }

  close(): void {
    clearInterval(this.sampler);
  }

  private async sample(): Promise<void> {
    const totals = requestTotals(await this.deps.gather());
    const at = Date.now();
    this.samples.push({ at, ...totals });
    while (this.samples.length > 2 && at - this.samples[1]!.at >= RATE_WINDOW_MS) this.samples.shift();
  }

  private rates(): ClusterStatus['rates'] {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.at - first.at < 1000) return { reads: null, writes: null, errors: null, over: null };
    const seconds = (last.at - first.at) / 1000;
    const rate = (now: number, then: number) => Math.max(0, now - then) / seconds;
    return {
      reads: rate(last.reads, first.reads),
      writes: rate(last.writes, first.writes),
      errors: rate(last.errors, first.errors),
      over: Math.round(seconds),
    };
  }

  /** The last census, or a new one when it is older than a minute (the first call waits for it). */
  private async keys(): Promise<Census> {
    const fresh = this.census && Date.now() - Date.parse(this.census.at) < CENSUS_EVERY_MS;
    if (!fresh && !this.walking) {
      this.walking = this.walk().finally(() => (this.walking = undefined));
      this.walking.then((census) => (this.census = census)).catch(() => undefined);
    }
    return this.census ?? (await this.walking!);
  }

  private async walk(): Promise<Census> {
    const started = Date.now();
    const { index } = this.deps.store;
    const { volumes, replicas, subvolumes } = this.deps.placement;
    const census: Census = {
      at: '',
      seconds: 0,
      live: 0,
      unlinked: 0,
      pending: 0,
      deleting: 0,
      deleted: 0,
      liveBytes: 0,
      unbalanced: 0,
      byVolume: Object.fromEntries(volumes.map((volume) => [volume, { blobs: 0, bytes: 0 }])),
    };
    let read = 0;
    for (const [key, record] of index.entries(CENSUS_PAGE)) {
      census[record.state]++;
      if (record.state === 'live' || record.state === 'unlinked') {
        for (const volume of record.volumes) {
          // A subvolume's blob counts for its volume (host:port/svNN).
          const on = (census.byVolume[volume.replace(/\/sv[0-9A-F]{2}$/i, '')] ??= { blobs: 0, bytes: 0 });
          on.blobs++;
          on.bytes += record.size ?? 0;
        }
      }
      if (record.state === 'live') {
        census.liveBytes += record.size ?? 0;
        if (needsRebalance(record.volumes, keyToVolumes(key, volumes, replicas, subvolumes))) census.unbalanced++;
      }
      if (++read % CENSUS_PAGE === 0) await yieldLoop();
    }
    census.at = new Date().toISOString();
    census.seconds = (Date.now() - started) / 1000;
    return census;
  }

  private logFiles(): { segments: number | null; bytes: number | null } {
    const { log } = this.deps.store;
    if (!(log instanceof SegmentLog)) return { segments: null, bytes: null };
    let segments = 0;
    let bytes = 0;
    for (const name of readdirSync(log.dir)) {
      if (!name.endsWith('.avro')) continue;
      segments++;
      bytes += statSync(join(log.dir, name)).size;
    }
    return { segments, bytes };
  }

  private async recent(): Promise<Array<Record<string, unknown>>> {
    const { log } = this.deps.store;
    const events: Array<Record<string, unknown>> = [];
    if (log.lastSeq < log.firstSeq) return events;
    for await (const batch of log.readFrom(Math.max(log.firstSeq, log.lastSeq - RECENT_EVENTS + 1), log.lastSeq))
      for (const event of batch) events.push(eventToJson(event));
    return events.reverse();
  }

  private async volume(volume: string, census: Census): Promise<VolumeStatus> {
    const [state, disk] = await Promise.all([this.deps.volumes.probe(volume), this.deps.volumes.disk(volume)]);
    const held = census.byVolume[volume] ?? { blobs: 0, bytes: 0 };
    return {
      volume,
      state,
      diskFree: disk?.free ?? null,
      diskSize: disk?.size ?? null,
      diskAgeSeconds: disk ? Math.round(disk.ageMs / 1000) : null,
      ...held,
    };
  }

  async status(): Promise<ClusterStatus> {
    const { store } = this.deps;
    if (store.log.ping && !store.readOnly) await store.log.ping(2000).catch(() => undefined);
    await this.sample().catch(() => undefined);
    const census = await this.keys();
    const [volumes, recent] = await Promise.all([
      Promise.all(this.deps.placement.volumes.map((volume) => this.volume(volume, census))),
      this.recent(),
    ]);
    return {
      time: new Date().toISOString(),
      master: { version: this.deps.version, startedAt: new Date(this.deps.startedAt).toISOString(), readOnly: store.readOnly },
      volumes,
      keys: census,
      log: {
        location: store.log.location,
        firstSeq: store.log.firstSeq,
        lastSeq: store.log.lastSeq,
        lag: Math.max(0, store.log.lastSeq - store.index.checkpoint),
        ...this.logFiles(),
        writer: store.readOnly ? 'read-only' : store.writer.healthy ? 'ok' : 'stopped',
      },
      rates: this.rates(),
      recent,
    };
  }
}
