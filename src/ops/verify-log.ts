// mkv log verify: every segment's header, every block's sync marker and CRC, every event
// decodable, seq dense and increasing across segments. After a bad block it resynchronises on
// the next sync marker (what sync markers are for), so one report shows all the damage.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { LogEvent } from '../events/event.js';
import { parseHeader, readBlock, SYNC_SIZE } from '../log/avro-container.js';
import { decodeBlockEvents, listSegments, readBase } from '../log/segment-log.js';

export interface LogSummary {
  segments: number;
  blocks: number;
  events: number;
  bytes: number;
  firstSeq: number | undefined;
  lastSeq: number | undefined;
  firstTime: number | undefined;
  lastTime: number | undefined;
  problems: string[];
}

export function verifyLog(dir: string): LogSummary {
  const summary: LogSummary = {
    segments: 0,
    blocks: 0,
    events: 0,
    bytes: 0,
    firstSeq: undefined,
    lastSeq: undefined,
    firstTime: undefined,
    lastTime: undefined,
    problems: [],
  };
  let expected: number | undefined;
  const take = (name: string, events: LogEvent[]) => {
    for (const event of events) {
      if (expected !== undefined && event.seq !== expected) {
        summary.problems.push(`${name}: seq ${event.seq} where ${expected} was expected`);
      }
      expected = event.seq + 1;
      summary.firstSeq ??= event.seq;
      summary.firstTime ??= event.time;
      summary.lastSeq = event.seq;
      summary.lastTime = event.time;
      summary.events++;
    }
  };
  const segments = listSegments(dir);
  const base = readBase(dir);
  if (segments.length > 0 && segments[0]!.firstSeq !== base) {
    summary.problems.push(`the log starts at seq ${segments[0]!.firstSeq}, but ${base === 1 ? 'it was never compacted (no BASE)' : `BASE says ${base}`}: segments are missing`);
  }
  for (const segment of segments) {
    const name = basename(segment.path);
    summary.segments++;
    const bytes = readFileSync(segment.path);
    summary.bytes += bytes.length;
    let header;
    try {
      header = parseHeader(bytes);
    } catch (error) {
      summary.problems.push(`${name}: bad header (${(error as Error).message})`);
      continue;
    }
    if (header.metadata.get('avro.codec')?.toString() !== 'snappy') summary.problems.push(`${name}: codec is not snappy`);
    if (expected !== undefined && segment.firstSeq !== expected) {
      summary.problems.push(`${name}: named for seq ${segment.firstSeq}, but seq ${expected} comes next`);
    }
    expected ??= segment.firstSeq;
    let offset = header.end;
    while (offset < bytes.length) {
      const scan = readBlock(bytes, offset, header.sync);
      if (scan.ok) {
        summary.blocks++;
        try {
          take(name, decodeBlockEvents(scan.block.records, scan.block.count, name, offset));
        } catch (error) {
          summary.problems.push(`${name}: block at byte ${offset} does not decode (${(error as Error).message})`);
        }
        offset = scan.block.end;
        continue;
      }
      summary.problems.push(`${name}: bad block at byte ${offset} (${scan.reason})`);
      const resync = bytes.indexOf(header.sync, offset + 1);
      if (resync === -1) {
        summary.problems.push(`${name}: ${bytes.length - offset} bytes from byte ${offset} to the end are unreadable`);
        break;
      }
      summary.problems.push(`${name}: skipped ${resync + SYNC_SIZE - offset} bytes to the next sync marker`);
      offset = resync + SYNC_SIZE;
    }
  }
  return summary;
}
