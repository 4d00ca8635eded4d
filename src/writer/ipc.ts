// The Writer across a process boundary: HTTP workers (cluster) call the one writer in the
// primary over the cluster IPC channel.
//
//   worker: RemoteWriter.lock/lockAndAppend/append/... ──{mkv:'call', id, op, ...}──▶ primary: serveWriter
//   worker: resolve/reject + refresh the index ◀──{mkv:'reply', id, ...}── LocalWriter (locks, log, LMDB)
//
// The primary answers an append only after the index has committed the events, and the worker
// refreshes its LMDB read snapshot before it resolves the call: a worker reads its own writes.
// Locks are owned by the worker that took them; when a worker dies, its locks are released
// (a write it had started stays pending, as after any crash, and a later write cleans it up),
// and so are its overwrites in flight (their blobs stay named in the record, for the next
// overwrite or gc to give up).
//
// The messages one side produces in one turn of its event loop go out as one (an Outbox): a
// group commit answers many appends at once, and each IPC write costs a syscall and wakes the
// other process, which costs more CPU than encoding the message (docs/design-figures.md).
import { isMkvError, MkvError, type ErrorCode } from '../errors.js';
import type { EventInput, LogEvent } from '../events/event.js';
import type { Writer } from './writer.js';

type Operation =
  | { op: 'lock' | 'unlock'; key: string }
  | { op: 'append'; events: EventInput[] }
  | { op: 'appendAndUnlock'; events: EventInput[]; key: string }
  | { op: 'lockAndAppend'; key: string; seenSeq: number; events: EventInput[] }
  | { op: 'startOverwrite'; key: string; seenSeq: number; event: EventInput }
  | { op: 'finishOverwrite'; key: string; version: number; events: EventInput[] };
type Call = { mkv: 'call'; id: number } & Operation;

/** `events` absent: the call appends nothing (lock, unlock, or a lockAndAppend whose key had changed). */
type Reply = { mkv: 'reply'; id: number; events?: LogEvent[]; error?: { code: ErrorCode; message: string } };
/** Several calls or replies sent in one message. */
type Batch<T> = { mkv: 'batch'; messages: T[] };

/** The end of an IPC channel: a cluster Worker in the primary, `process` in a worker. */
export interface Channel {
  send(message: unknown): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
  readonly connected?: boolean;
}

function mkvKind(message: unknown): unknown {
  return typeof message === 'object' && message !== null ? (message as { mkv?: unknown }).mkv : undefined;
}

/** The messages of one kind in what arrived: itself, or the members of its batch. */
function unpack<T>(message: unknown, kind: 'call' | 'reply'): T[] {
  const mkv = mkvKind(message);
  if (mkv === kind) return [message as T];
  if (mkv === 'batch') return (message as Batch<T>).messages.filter((each) => mkvKind(each) === kind);
  return [];
}

/** Collects the messages of one event-loop turn and sends them as one. */
class Outbox<T> {
  private queued: T[] = [];

  constructor(private readonly send: (message: T | Batch<T>) => void) {}

  push(message: T): void {
    this.queued.push(message);
    // After the microtasks of this turn: every reply a group commit resolves goes in one write.
    if (this.queued.length === 1) process.nextTick(() => this.flush());
  }

  flush(): void {
    const messages = this.queued;
    if (messages.length === 0) return;
    this.queued = [];
    this.send(messages.length === 1 ? messages[0]! : { mkv: 'batch', messages });
  }
}

function errorReply(error: unknown): Reply['error'] {
  if (isMkvError(error)) return { code: error.code, message: error.message };
  return { code: 'MKV_INTERNAL', message: (error as Error)?.message ?? String(error) };
}

export interface WriterService {
  /** Keys this worker holds locked. */
  readonly locked: ReadonlySet<string>;
  /** The overwrites this worker has in flight: versions by key. */
  readonly overwriting: ReadonlyMap<string, ReadonlySet<number>>;
  /** Stops answering the worker and releases its locks (call when the worker has exited). */
  release(): Promise<void>;
}

/** Primary side: answers one worker's calls with the local writer. */
export function serveWriter(channel: Channel, writer: Writer): WriterService {
  const locked = new Set<string>();
  const overwriting = new Map<string, Set<number>>();
  let released = false;
  const outbox = new Outbox<Reply>((message) => {
    if (!released && channel.connected !== false) channel.send(message);
  });
  const reply = (message: Reply) => outbox.push(message);
  const listener = (message: unknown) => {
    for (const call of unpack<Call>(message, 'call')) serve(call);
  };
  const serve = (message: Call) => {
    const { id } = message;
    let outcome: Promise<LogEvent[] | undefined>;
    // A lock taken for the worker: the worker's to release, or given back if it died meanwhile.
    const taken = (key: string) => {
      if (released) void writer.unlock(key);
      else locked.add(key);
    };
    switch (message.op) {
      case 'lock':
        outcome = writer.lock(message.key).then(() => {
          taken(message.key);
          return undefined;
        });
        break;
      case 'lockAndAppend':
        outcome = writer.lockAndAppend(message.key, message.seenSeq, message.events).then((events) => {
          taken(message.key);
          return events;
        });
        break;
      case 'unlock':
        locked.delete(message.key);
        outcome = writer.unlock(message.key).then(() => undefined);
        break;
      case 'append':
        outcome = writer.append(message.events);
        break;
      case 'appendAndUnlock':
        locked.delete(message.key);
        outcome = writer.appendAndUnlock(message.events, message.key);
        break;
      case 'startOverwrite': {
        const { key } = message;
        outcome = writer.startOverwrite(key, message.seenSeq, message.event).then((started) => {
          if (!started) return undefined;
          if (released) void writer.finishOverwrite(key, started.seq, []);
          else overwriting.set(key, (overwriting.get(key) ?? new Set()).add(started.seq));
          return [started];
        });
        break;
      }
      case 'finishOverwrite': {
        const versions = overwriting.get(message.key);
        versions?.delete(message.version);
        if (versions?.size === 0) overwriting.delete(message.key);
        outcome = writer.finishOverwrite(message.key, message.version, message.events);
        break;
      }
    }
    outcome.then(
      (events) => reply(events ? { mkv: 'reply', id, events } : { mkv: 'reply', id }),
      (error: unknown) => reply({ mkv: 'reply', id, error: errorReply(error) }),
    );
  };
  channel.on('message', listener);
  return {
    locked,
    overwriting,
    async release() {
      released = true;
      channel.off('message', listener);
      for (const key of locked) await writer.unlock(key);
      locked.clear();
      for (const [key, versions] of overwriting) for (const version of versions) await writer.finishOverwrite(key, version, []);
      overwriting.clear();
    },
  };
}

/** Worker side: the Writer the handlers use, each call a message to the primary. */
export class RemoteWriter implements Writer {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (events: LogEvent[] | undefined) => void; reject: (error: unknown) => void }>();
  private closed = false;
  /** Resolves close() once the calls in flight have their replies. */
  private drained: (() => void) | undefined;
  private readonly outbox = new Outbox<Call>((message) => {
    // Calls queued as the channel closed were failed by disconnected().
    if (!this.closed && this.channel.connected !== false) this.channel.send(message);
  });
  private readonly listener = (message: unknown) => {
    const replies = unpack<Reply>(message, 'reply');
    if (replies.length === 0) return;
    // The primary has committed before it replied; read from a new LMDB snapshot from now on.
    this.refresh();
    for (const reply of replies) {
      const call = this.pending.get(reply.id);
      if (!call) continue;
      this.pending.delete(reply.id);
      if (reply.error) call.reject(new MkvError(reply.error.code, reply.error.message));
      else call.resolve(reply.events);
    }
    if (this.pending.size === 0) this.drained?.();
  };

  constructor(
    private readonly channel: Channel,
    /** Drops the worker's cached read snapshot, so its next read sees the primary's last commit. */
    private readonly refresh: () => void,
    /** Whether the primary's writer shares its log with other masters. */
    readonly sharedLog = false,
  ) {
    channel.on('message', this.listener);
  }

  private call(operation: Operation): Promise<LogEvent[] | undefined> {
    if (this.closed || this.channel.connected === false) {
      return Promise.reject(new MkvError('MKV_LOG_UNAVAILABLE', 'the writer process is gone; the server is restarting or stopping'));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.outbox.push({ mkv: 'call', id, ...operation });
    });
  }

  async lock(key: string): Promise<void> {
    await this.call({ op: 'lock', key });
  }

  async unlock(key: string): Promise<void> {
    await this.call({ op: 'unlock', key });
  }

  lockAndAppend(key: string, seenSeq: number, events: EventInput[]): Promise<LogEvent[] | undefined> {
    return this.call({ op: 'lockAndAppend', key, seenSeq, events });
  }

  async append(events: EventInput[]): Promise<LogEvent[]> {
    return (await this.call({ op: 'append', events })) ?? [];
  }

  async appendAndUnlock(events: EventInput[], key: string): Promise<LogEvent[]> {
    return (await this.call({ op: 'appendAndUnlock', events, key })) ?? [];
  }

  async startOverwrite(key: string, seenSeq: number, event: EventInput): Promise<LogEvent | undefined> {
    return (await this.call({ op: 'startOverwrite', key, seenSeq, event }))?.[0];
  }

  async finishOverwrite(key: string, version: number, events: EventInput[]): Promise<LogEvent[]> {
    return (await this.call({ op: 'finishOverwrite', key, version, events })) ?? [];
  }

  /** Fails every call still waiting (the channel to the primary is gone). */
  disconnected(): void {
    this.closed = true;
    for (const call of this.pending.values()) call.reject(new MkvError('MKV_LOG_UNAVAILABLE', 'the writer process is gone'));
    this.pending.clear();
    this.drained?.();
    this.channel.off('message', this.listener);
  }

  /** Waits for the calls in flight. */
  async close(): Promise<void> {
    if (this.pending.size > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    this.closed = true;
    this.channel.off('message', this.listener);
  }

  get healthy(): boolean {
    return !this.closed && this.channel.connected !== false;
  }
}
