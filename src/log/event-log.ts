// The log behind one small interface, so it can live in this process (the segment log: Avro
// container files in DB/log, the embedded default) or on a replicated log service (NATS
// JetStream: jetstream-log.ts), with the projector, replay, history and export unchanged.
import type { EventInput, LogEvent } from '../events/event.js';

export interface EventLog {
  /** Where the log lives, for messages (a directory, or nats://host:port/STREAM). */
  readonly location: string;
  /** The seq of the last event; 0 for an empty log. */
  readonly lastSeq: number;
  /** The seq the log starts at: 1, or later when it was compacted. */
  readonly firstSeq: number;
  /**
   * The seq a compaction snapshot starts the log at, when the log says it was compacted
   * (events before it were folded into KeySnapshot events on purpose); else 1.
   */
  base(): number;
  /** Appends the events as one durable unit; resolves with them numbered (seq, time). */
  append(inputs: EventInput[]): Promise<LogEvent[]>;
  /** The events from `fromSeq` to `untilSeq` (inclusive; default: the end), in order, in batches. */
  readFrom(fromSeq: number, untilSeq?: number): AsyncIterable<LogEvent[]>;
  /**
   * For a log on a service: asks it for the log's state (lastSeq included), and throws when it
   * does not answer within `timeoutMs`. A log in this process has none.
   */
  ping?(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}
