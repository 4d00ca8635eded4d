// What the master measures, in Prometheus terms (prom-client), served on the admin port.
//
//   mkv_http_requests_total{method,status}        mkv_http_request_duration_seconds{method}
//   mkv_log_appends_total, mkv_log_events_total    mkv_log_append_seconds (write + fdatasync of a block)
//   mkv_group_commit_events (events per block)    mkv_log_last_seq, mkv_projector_lag_events
//   mkv_index_size_bytes                          mkv_locks_in_flight
//   mkv_volume_errors_total{volume,operation}     mkv_volume_timeouts_total{volume,operation}
// plus prom-client's process and Node.js defaults (mkv_process_*, mkv_nodejs_*).
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { writesWaiting } from './keys/key-write.js';

export interface StoreView {
  lastSeq(): number;
  checkpoint(): number;
  indexDir: string;
  lockedKeys(): number;
}

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'mkv_http_requests_total',
    help: 'HTTP requests answered, by method and status',
    labelNames: ['method', 'status'],
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: 'mkv_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by method',
    labelNames: ['method'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly logAppends = new Counter({
    name: 'mkv_log_appends_total',
    help: 'Blocks appended to the event log (one per group commit)',
    registers: [this.registry],
  });
  readonly logEvents = new Counter({ name: 'mkv_log_events_total', help: 'Events appended to the event log', registers: [this.registry] });
  readonly logAppendSeconds = new Histogram({
    name: 'mkv_log_append_seconds',
    help: 'Time to write one block and fdatasync it',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly groupCommitEvents = new Histogram({
    name: 'mkv_group_commit_events',
    help: 'Events per group commit (per block)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096],
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'mkv_auth_failures_total',
    help: 'Requests refused for their credentials (unauthenticated, signature, unknown_access_key, time_skewed, access_denied, bad_digest)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly volumeErrors = new Counter({
    name: 'mkv_volume_errors_total',
    help: 'Volume requests that failed, by volume and operation',
    labelNames: ['volume', 'operation'],
    registers: [this.registry],
  });
  readonly volumeTimeouts = new Counter({
    name: 'mkv_volume_timeouts_total',
    help: 'Volume requests that timed out, by volume and operation',
    labelNames: ['volume', 'operation'],
    registers: [this.registry],
  });
  readonly retainedBlobs = new Gauge({
    name: 'mkv_retained_blobs',
    help: 'Blobs of replaced values (overwritten, deleted) kept for the --retain window, as of the last retention sweep',
    registers: [this.registry],
  });
  readonly retainedBytes = new Gauge({
    name: 'mkv_retained_bytes',
    help: 'Bytes of those blobs (per replica: a value on three volumes counts once)',
    registers: [this.registry],
  });
  readonly volumeUp = new Gauge({
    name: 'mkv_volume_up',
    help: "1 when the volume answered the master's last probe (at start, and each /readyz), 0 when it did not",
    labelNames: ['volume'],
    registers: [this.registry],
  });

  /** Label children by "method status", so counting a request does not hash its labels each time. */
  private readonly requestChildren = new Map<string, { count: { inc(): void }; time: { observe(value: number): void } }>();

  /** Counts one answered request and how long it took. */
  countRequest(method: string, status: number, seconds: number): void {
    const name = `${method} ${status}`;
    let child = this.requestChildren.get(name);
    if (!child) {
      child = { count: this.requests.labels({ method, status: String(status) }), time: this.requestSeconds.labels({ method }) };
      this.requestChildren.set(name, child);
    }
    child.count.inc();
    child.time.observe(seconds);
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'mkv_' });
  }

  /** Gauges read from the store when scraped. */
  watchStore(store: StoreView): void {
    new Gauge({
      name: 'mkv_log_last_seq',
      help: 'The seq of the last event in the log',
      registers: [this.registry],
      collect() {
        this.set(store.lastSeq());
      },
    });
    new Gauge({
      name: 'mkv_projector_lag_events',
      help: 'Events in the log that the index has not applied yet',
      registers: [this.registry],
      collect() {
        this.set(store.lastSeq() - store.checkpoint());
      },
    });
    new Gauge({
      name: 'mkv_index_size_bytes',
      help: 'Size of the LMDB index file',
      registers: [this.registry],
      collect() {
        try {
          this.set(statSync(join(store.indexDir, 'data.mdb')).size);
        } catch {
          this.set(0);
        }
      },
    });
    new Gauge({
      name: 'mkv_locks_in_flight',
      help: 'Keys locked by a write or delete in progress',
      registers: [this.registry],
      collect() {
        this.set(store.lockedKeys());
      },
    });
    new Gauge({
      name: 'mkv_key_waits',
      help: 'S3 writes and deletes waiting for a key another write or delete holds',
      registers: [this.registry],
      collect() {
        this.set(writesWaiting());
      },
    });
  }
}
