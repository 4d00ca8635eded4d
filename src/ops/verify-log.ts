// mkv log verify: every segment's header, every block's sync marker and CRC, every event
// decodable, seq dense and increasing across segments. After a bad block it resynchronises on
// the next sync marker (what sync markers are for), so one report shows all the damage.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { LogEvent } from '../events/event.js';
import { parseHeader, walkBlocks } from '../log/avro-container.js';
import { decodeBlockEvents, listSegments, readBase, segmentReader } from '../log/segments.js';

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
    summary.problems.push(
      `the log starts at seq ${segments[0]!.firstSeq}, but ${base === 1 ? 'it was never compacted (no BASE)' : `BASE says ${base}`}: segments are missing`,
    );
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
    for (const step of walkBlocks(bytes, header, 'skip')) {
      if (step.ok) {
        summary.blocks++;
        try {
          take(name, decodeBlockEvents(step.block.records, step.block.count, name, step.block.offset, segmentReader(header)));
        } catch (error) {
          summary.problems.push(`${name}: block at byte ${step.block.offset} does not decode (${(error as Error).message})`);
        }
        continue;
      }
      summary.problems.push(`${name}: bad block at byte ${step.offset} (${step.reason})`);
      if (step.resumeAt === undefined)
        summary.problems.push(`${name}: ${bytes.length - step.offset} bytes from byte ${step.offset} to the end are unreadable`);
      else summary.problems.push(`${name}: skipped ${step.resumeAt - step.offset} bytes to the next sync marker`);
    }
  }
  return summary;
}
