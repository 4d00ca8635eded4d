// The event log on NATS JetStream: a Raft-replicated stream that several masters share.
//
//   stream MKV, subjects mkv.>      one message per event, on the key's subject:
//     mkv.k.<base64url of the key>  (keys of up to 150 bytes)
//     mkv.h.<sha-256 hex of the key> (longer keys)
//   payload                          the event in Avro single-object form: C3 01, the schema's
//                                    CRC-64-AVRO fingerprint (little-endian), then the binary record
//                                    of schemas/event.avsc; its seq is written as 0, as the
//                                    stream's sequence is the event's seq; its time is the
//                                    publishing master's clock
//
// A write to a key can be made conditional on the last sequence of the key's subject (JetStream's
// expected-last-subject-sequence): when another master wrote the key since, the append fails
// with MKV_KEY_LOCKED (409), as a write racing on one master does. The stream denies deletes and
// purges: events leave it only by an explicit operator action outside mkv.
import { createHash, randomUUID } from 'node:crypto';
import avro from 'avsc';
import {
  AuthorizationError,
  connect,
  PermissionViolationError,
  UserAuthenticationExpiredError,
  type NatsConnection,
} from '@nats-io/transport-node';
import {
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { MkvError } from '../errors.js';
import {
  currentReader,
  decodeRenumbered,
  encodeEvent,
  eventReader,
  eventSchemaJson,
  pastSchemas,
  type EventInput,
  type EventReader,
  type LogEvent,
} from '../events/event.js';
import type { EventLog } from './event-log.js';
import { natsConnectOptions, parseNatsUrl, type NatsAccess } from './nats-connection.js';

export interface JetStreamLogOptions {
  /** nats://[USER:PASSWORD@]host:port[,host:port...][/STREAM] (log/nats-connection.ts) */
  url: string;
  /** The files of the --log-* flags: credentials, TLS. */
  access?: NatsAccess;
  /** Copies of each event the stream keeps (its Raft group size); used when the stream is created. */
  replicas?: number;
}

const EMPTY = 0xc15d213aa4d7a795n;
const FP_TABLE = Array.from({ length: 256 }, (_, i) => {
  let fp = BigInt(i);
  for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n));
  return fp;
});

/** The CRC-64-AVRO (Rabin) fingerprint of a schema's Parsing Canonical Form, as the spec defines it. */
export function rabinFingerprint(canonical: string): Buffer {
  let fp = EMPTY;
  for (const byte of Buffer.from(canonical, 'utf8')) fp = (fp >> 8n) ^ FP_TABLE[Number((fp ^ BigInt(byte)) & 0xffn)]!;
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(BigInt.asUintN(64, fp));
  return out;
}

/** The single-object fingerprint of a schema, given as JSON. */
function fingerprintOf(schemaJson: string): Buffer {
  return rabinFingerprint(JSON.stringify(avro.Type.forSchema(JSON.parse(schemaJson) as avro.Schema).schema()));
}

/** C3 01 ‖ fingerprint: the header of every Avro single-object encoded event. */
export const singleObjectHeader = Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprintOf(eventSchemaJson)]);

/** How a message is read, by its schema's fingerprint: this build's, or an earlier build's (schemas/past/). */
const messageReaders = new Map<string, EventReader>([[singleObjectHeader.subarray(2).toString('hex'), currentReader]]);
for (const schema of pastSchemas()) messageReaders.set(fingerprintOf(schema).toString('hex'), eventReader(schema));

/** The subject of a key's events. */
export function keySubject(prefix: string, key: string): string {
  const bytes = Buffer.from(key, 'utf8');
  if (bytes.length <= 150) return `${prefix}.k.${bytes.toString('base64url')}`;
  return `${prefix}.h.${createHash('sha256').update(bytes).digest('hex')}`;
}

export function encodeMessage(input: EventInput, time: number): Buffer {
  return Buffer.concat([singleObjectHeader, encodeEvent({ seq: 0, time, ...input })]);
}

export function decodeMessage(data: Uint8Array, seq: number): LogEvent {
  const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const reader =
    buffer.length >= 10 && buffer[0] === 0xc3 && buffer[1] === 0x01
      ? messageReaders.get(buffer.subarray(2, 10).toString('hex'))
      : undefined;
  if (!reader) {
    throw new MkvError(
      'MKV_CORRUPT_LOG',
      `stream message ${seq} is not an mkv event (wrong single-object header, or a schema this build does not know)`,
    );
  }
  if (reader.current) return decodeRenumbered(buffer, 10, seq);
  const { event } = reader.decode(buffer, 10);
  return { ...event, seq };
}

/** How long opening waits for JetStream to serve the stream (a cluster electing its leaders). */
const OPEN_WAIT_MS = 30_000;

/** How long closing waits for the connection to drain (a hung server would hold a shutdown forever). */
const CLOSE_WAIT_MS = 5000;

/**
 * What `promise` came to within `ms`: its value, or `settled: false` (it goes on, unobserved;
 * a rejection after the deadline is handled by the race and says nothing new). Rejects as it does.
 */
async function settleWithin<T>(promise: Promise<T>, ms: number): Promise<{ settled: true; value: T } | { settled: false }> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<{ settled: false }>((resolve) => (timer = setTimeout(() => resolve({ settled: false }), ms)));
  try {
    return await Promise.race([promise.then((value) => ({ settled: true as const, value })), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Why NATS would not take this client: its credentials, or none given, or it could not be reached. */
function refusal(error: unknown, shown: string, identity: string): string {
  const refused =
    error instanceof AuthorizationError ||
    error instanceof UserAuthenticationExpiredError ||
    /authorization violation/i.test(String(error));
  if (!refused) return `cannot reach NATS at ${shown}`;
  if (identity === 'no credentials')
    return `NATS at ${shown} wants credentials and --log gave none (nats://USER:PASSWORD@host, --log-password-file, --log-token-file, --log-nkey or --log-creds)`;
  return `NATS at ${shown} refused ${identity}`;
}

/** A permission violation, wherever nats.js put it (the error or its cause). */
function isPermissionViolation(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof PermissionViolationError || /permissions violation/i.test(cause.message)) return true;
  }
  return false;
}

/** JetStream's "wrong last sequence" (another publish to the subject came first). */
const WRONG_LAST_SEQUENCE = 10071;

export class JetStreamLog implements EventLog {
  private last = 0;
  private first = 1;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    readonly stream: string,
    readonly prefix: string,
    readonly location: string,
  ) {}

  static async open(options: JetStreamLogOptions): Promise<JetStreamLog> {
    const url = parseNatsUrl(options.url);
    const { servers, stream, shown } = url;
    const { options: access, identity } = natsConnectOptions(url, options.access);
    let nc: NatsConnection;
    try {
      nc = await connect({ ...access, servers, name: 'mkv', maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    } catch (error) {
      // A server that wants a client certificate closes the connection without a word; nats.js then waits out its timeout.
      const hint =
        access.tls && !access.tls.cert && /timeout/i.test((error as Error).message)
          ? ' (does the server want a client certificate: --log-tls-cert, --log-tls-key?)'
          : '';
      throw new MkvError('MKV_LOG_UNAVAILABLE', `${refusal(error, shown, identity)}: ${(error as Error).message}${hint}`);
    }
    const prefix = stream.toLowerCase();
    const config: Partial<StreamConfig> & { name: string } = {
      name: stream,
      subjects: [`${prefix}.>`],
      num_replicas: options.replicas ?? 1,
      deny_delete: true,
      deny_purge: true,
      duplicate_window: 120_000_000_000, // 2 minutes, in ns: a retried publish is stored once
    };
    // A cluster that just started (or lost its metadata leader) answers "not enabled" or times
    // out for a few seconds: keep asking for up to OPEN_WAIT_MS.
    const deadline = Date.now() + OPEN_WAIT_MS;
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc);
        try {
          await jsm.streams.info(stream);
        } catch (error) {
          if (!/not found/i.test((error as Error).message)) throw error;
          await jsm.streams.add(config);
        }
        const log = new JetStreamLog(nc, jetstream(nc), jsm, stream, prefix, shown);
        await log.refresh();
        return log;
      } catch (error) {
        // A permission NATS denies will not come with time: say so now.
        const denied = isPermissionViolation(error);
        if (denied || Date.now() > deadline) {
          await nc.close();
          throw new MkvError(
            'MKV_LOG_UNAVAILABLE',
            `JetStream at ${shown} did not serve stream ${stream}: ${(error as Error).message}${denied ? ` (NATS denies ${identity} a subject mkv needs: README, "the log behind NATS authentication")` : ''}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  /**
   * Throws, in one line, when this connection may not append to the stream (a reader's
   * credentials given to a master): a publish that expects its subject at a sequence it can
   * never be at, which JetStream refuses without storing anything when the user may publish,
   * and NATS refuses as a permission violation when not.
   */
  async checkMayAppend(): Promise<void> {
    try {
      await this.js.publish(keySubject(this.prefix, '/'), new Uint8Array(0), { expect: { lastSubjectSequence: Number.MAX_SAFE_INTEGER } });
    } catch (error) {
      if (!isPermissionViolation(error)) return; // the expected refusal: it may append
      throw new MkvError(
        'MKV_LOG_UNAVAILABLE',
        `NATS at ${this.location} does not let this user append to stream ${this.stream} (${(error as Error).message}): a master needs the MASTER permissions of README, "the log behind NATS authentication"`,
      );
    }
    throw new MkvError(
      'MKV_LOG_UNAVAILABLE',
      `JetStream at ${this.location} stored a publish it should have refused: is ${this.stream} an mkv stream?`,
    );
  }

  /** Whether the NATS server this connection reached asks its clients who they are (its INFO's auth_required). */
  get serverAuthenticates(): boolean {
    return this.nc.info?.auth_required === true;
  }

  /** Re-reads the stream's first and last sequence. */
  async refresh(): Promise<void> {
    const { state } = await this.jsm.streams.info(this.stream);
    this.last = Math.max(this.last, state.last_seq);
    this.first = state.messages === 0 ? this.last + 1 : state.first_seq;
  }

  async ping(timeoutMs: number): Promise<void> {
    let answered: boolean;
    try {
      answered = (await settleWithin(this.refresh(), timeoutMs)).settled;
    } catch (error) {
      throw new MkvError('MKV_LOG_UNAVAILABLE', `JetStream at ${this.location} does not answer: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (!answered)
      throw new MkvError('MKV_LOG_UNAVAILABLE', `JetStream at ${this.location} does not answer: no answer within ${timeoutMs} ms`);
  }

  get lastSeq(): number {
    return this.last;
  }

  get firstSeq(): number {
    return this.first;
  }

  /** A stream is never compacted by mkv: it starts at 1. */
  base(): number {
    return 1;
  }

  subjectOf(key: string): string {
    return keySubject(this.prefix, key);
  }

  /**
   * Publishes one event; with `expectedLastSeq`, only if the key's subject still ends at that
   * sequence (0: the key has no event yet). Resolves with the event as stored.
   */
  async publish(input: EventInput, expectedLastSeq?: number): Promise<LogEvent> {
    const time = Date.now();
    const payload = encodeMessage(input, time);
    try {
      const ack = await this.js.publish(this.subjectOf(input.key), payload, {
        msgID: randomUUID(),
        ...(expectedLastSeq !== undefined ? { expect: { lastSubjectSequence: expectedLastSeq } } : {}),
      });
      this.last = Math.max(this.last, ack.seq);
      return { seq: ack.seq, time, ...input };
    } catch (error) {
      const code = (error as { api_error?: { err_code?: number } }).api_error?.err_code;
      if (code === WRONG_LAST_SEQUENCE || /wrong last sequence/i.test((error as Error).message)) {
        throw new MkvError('MKV_KEY_LOCKED', 'another master wrote this key first; retry');
      }
      throw new MkvError('MKV_LOG_UNAVAILABLE', `appending to ${this.location} failed: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Copies events that already have their seq and time (a local log moving onto the stream):
   * each is published with the stream's expected last sequence = its seq - 1, so the stream's
   * numbering is the log's, or the import stops. Publishes are pipelined, `window` at a time.
   */
  async importEvents(events: LogEvent[], window = 1000): Promise<void> {
    for (let start = 0; start < events.length; start += window) {
      const acks = events.slice(start, start + window).map((event) => {
        const { seq, time, ...input } = event;
        return this.js.publish(this.subjectOf(event.key), encodeMessage(input, time), { expect: { lastSequence: seq - 1 } }).then((ack) => {
          if (ack.seq !== seq) throw new MkvError('MKV_CORRUPT_LOG', `event ${seq} was stored as stream seq ${ack.seq}`);
        });
      });
      const results = await Promise.allSettled(acks);
      const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failed) {
        throw new MkvError('MKV_LOG_UNAVAILABLE', `importing into ${this.location} stopped: ${(failed.reason as Error).message}`, {
          cause: failed.reason,
        });
      }
    }
    await this.refresh();
  }

  /** Appends the events in order, unconditionally (each is durable once acknowledged). */
  async append(inputs: EventInput[]): Promise<LogEvent[]> {
    const events: LogEvent[] = [];
    for (const input of inputs) events.push(await this.publish(input));
    return events;
  }

  async *readFrom(fromSeq: number, untilSeq?: number): AsyncGenerator<LogEvent[]> {
    await this.refresh();
    const until = untilSeq ?? this.last;
    if (fromSeq > until) return;
    const stream = this.follow(fromSeq, 1000);
    try {
      for await (const batch of stream) {
        const wanted = batch.at(-1)!.seq <= until ? batch : batch.filter((event) => event.seq <= until);
        if (wanted.length > 0) yield wanted;
        if (batch.at(-1)!.seq >= until) break;
      }
    } finally {
      stream.stop();
    }
  }

  /**
   * Every event from `fromSeq` on, as they are stored — by any master — until stop(): batches of
   * at most `batchMax`, each ending where the stream had nothing more to deliver at that moment.
   */
  follow(fromSeq: number, batchMax: number): AsyncIterable<LogEvent[]> & { stop(): void } {
    let stopped = false;
    let close: (() => Promise<void>) | undefined;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the iterator below is an object of its own, with its own this
    const log = this;
    return {
      stop() {
        stopped = true;
        void close?.();
      },
      async *[Symbol.asyncIterator]() {
        const consumer = await log.js.consumers.get(log.stream, {
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: Math.max(fromSeq, 1),
        });
        if (stopped) return;
        // Short heartbeats and pull expiry: when the node serving this consumer goes away, the
        // ordered consumer notices within seconds and resumes on another node where it left off.
        const messages = await consumer.consume({ max_messages: batchMax, expires: 2000, idle_heartbeat: 1000 });
        close = () => messages.close().then(() => undefined);
        if (stopped) await close();
        let batch: LogEvent[] = [];
        for await (const message of messages) {
          batch.push(decodeMessage(message.data, message.seq));
          log.last = Math.max(log.last, message.seq);
          if (batch.length >= batchMax || message.info.pending === 0) {
            yield batch;
            batch = [];
          }
        }
        if (batch.length > 0) yield batch;
      },
    };
  }

  /** Drains the connection; a server that does not answer within CLOSE_WAIT_MS is left. */
  async close(): Promise<void> {
    const drain = await settleWithin(
      this.nc.drain().then(
        () => true,
        () => false,
      ),
      CLOSE_WAIT_MS,
    );
    if (!drain.settled || !drain.value) await this.nc.close().catch(() => undefined);
  }
}
