// evolve: the pure function the projector folds over the log. (record before, event) → record after.
import type { LogEvent } from '../events/event.js';

/** What the projection reads of an event: not its cause. */
export type ProjectedEvent = Pick<LogEvent, 'seq' | 'time' | 'key' | 'change'>;

export type KeyState = 'live' | 'unlinked' | 'pending';

export interface KeyRecord {
  state: KeyState;
  /** Where the blob is (live, unlinked) or is being written (pending), in placement order. */
  volumes: string[];
  size: number | null;
  md5: string | null;
  /** The seq and time of the last event that changed this key. */
  seq: number;
  time: number;
}

/**
 * Whether evolve needs the record before the event. Only the events that replace a record whole
 * (or remove it) do not; any other, including ones added later, gets the record.
 */
export function needsPrevious(event: ProjectedEvent): boolean {
  const type = event.change.type;
  return !(type === 'WriteStarted' || type === 'WriteCommitted' || type === 'WriteAborted' || type === 'KeyDeleted' || type === 'KeySnapshot');
}

/** undefined means the key does not exist. */
export function evolve(record: KeyRecord | undefined, event: ProjectedEvent): KeyRecord | undefined {
  const stamp = { seq: event.seq, time: event.time };
  const change = event.change;
  switch (change.type) {
    case 'WriteStarted':
      return { state: 'pending', volumes: change.volumes, size: null, md5: null, ...stamp };
    case 'WriteCommitted':
      return { state: 'live', volumes: change.volumes, size: change.size, md5: change.md5, ...stamp };
    case 'WriteAborted':
    case 'KeyDeleted':
      return undefined;
    case 'KeyUnlinked':
      return record && { ...record, state: 'unlinked', ...stamp };
    case 'KeyLinked':
      return record && { ...record, state: 'live', ...stamp };
    case 'KeyRelocated':
      return record && { ...record, volumes: change.volumes, ...stamp };
    case 'KeySnapshot':
      // The record as it was when the log was compacted, stamped as it was then.
      return { state: change.state, volumes: change.volumes, size: change.size, md5: change.md5, seq: change.lastSeq, time: change.lastTime };
    case 'ReplicaRepaired':
      return record && { ...record, ...stamp };
    case 'KeyDiscovered':
      // A rescan knows where a blob is, not its story: a key the log already knows keeps its state and md5.
      return record
        ? { ...record, volumes: change.volumes, size: record.size ?? change.size, ...stamp }
        : { state: 'live', volumes: change.volumes, size: change.size, md5: change.md5, ...stamp };
  }
}
