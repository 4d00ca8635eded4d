// evolve: the pure function the projector folds over the log. (record before, event) → record after.
import type { KeyStateName, ProjectedEvent } from '../events/event.js';

/**
 * live: served. unlinked: not served, its blob kept (LINK serves it again). pending: a write in
 * progress, or one that never finished. deleting: a DELETE in progress, or one that never finished.
 */
export type KeyState = KeyStateName;

export interface KeyRecord {
  state: KeyState;
  /** Where the blob is (live, unlinked), is being written (pending) or removed (deleting), in placement order. */
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
  return !(type === 'WriteStarted' || type === 'WriteCommitted' || type === 'WriteAborted' || type === 'WriteUndone' || type === 'KeyDeleted' || type === 'KeySnapshot');
}

/** undefined means the key does not exist. */
export function evolve(record: KeyRecord | undefined, event: ProjectedEvent): KeyRecord | undefined {
  const { seq, time, change } = event;
  switch (change.type) {
    case 'WriteStarted':
      return keyRecord('pending', change.volumes, null, null, seq, time);
    case 'WriteCommitted':
      return keyRecord('live', change.volumes, change.size, change.md5, seq, time);
    case 'WriteAborted':
    case 'KeyDeleted':
      return undefined;
    case 'WriteUndone':
      return keyRecord(change.state, change.volumes, change.size, change.md5, seq, time);
    case 'KeyUnlinked':
      return record && keyRecord('unlinked', record.volumes, record.size, record.md5, seq, time);
    case 'DeleteStarted':
      return record && keyRecord('deleting', record.volumes, record.size, record.md5, seq, time);
    case 'KeyLinked':
      return record && keyRecord('live', record.volumes, record.size, record.md5, seq, time);
    case 'KeyRelocated':
      return record && keyRecord(record.state, change.volumes, record.size, record.md5, seq, time);
    case 'KeySnapshot':
      // The record as it was when the log was compacted, stamped as it was then.
      return keyRecord(change.state, change.volumes, change.size, change.md5, change.lastSeq, change.lastTime);
    case 'ReplicaRepaired':
      return record && keyRecord(record.state, record.volumes, record.size, record.md5, seq, time);
    case 'KeyDiscovered':
      // A rescan knows where a blob is, not its story: a key the log already knows keeps its state and md5.
      return record
        ? keyRecord(record.state, change.volumes, record.size ?? change.size, record.md5, seq, time)
        : keyRecord('live', change.volumes, change.size, change.md5, seq, time);
  }
}

/** Every record built in one place, so all have one shape (a replay builds millions). */
function keyRecord(state: KeyState, volumes: string[], size: number | null, md5: string | null, seq: number, time: number): KeyRecord {
  return { state, volumes, size, md5, seq, time };
}
