// A torn or corrupt log, as a crash or a bad disk leaves it. The newest segment's tail (a block
// whose fsync never returned) is cut off on start, and reported; nothing acknowledged is lost.
// A damaged sealed segment refuses the start, saying how to recover.
// MKV_LOG_DAMAGE_ROUNDS sets the rounds per kind of damage (2 in npm test).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { parseHeader } from '../../src/log/avro-container.js';
import { SegmentLog } from '../../src/log/segment-log.js';
import { listSegments, readSegmentEvents } from '../../src/log/segments.js';
import { logDir } from '../../src/db/paths.js';
import { getFollowing, http } from '../helpers/http.js';
import { assertIndexEqualsReplay } from '../helpers/replay.js';
import { removeDir, runMkv, spawnMaster, startVolumes, stopMaster, tempDir, type MkvProcess, type VolumeSet } from '../helpers/cluster.js';

const rounds = Number(process.env.MKV_LOG_DAMAGE_ROUNDS ?? 2);

/** True when the segment's checks (sync markers, CRCs, event decoding) find a problem. */
function verifySegmentBytes(path: string, bytes: Buffer): boolean {
  try {
    for (const events of readSegmentEvents(path, bytes)) void events;
    return false;
  } catch {
    return true;
  }
}
const randomInt = (low: number, high: number) => low + Math.floor(Math.random() * (high - low));

type Damage = 'truncate' | 'overwrite' | 'append garbage' | 'zero a sector';

/** Appends a block that no client was ever told about (its fsync "never returned"); returns where it starts. */
async function appendUnacknowledgedBlock(db: string, tag: string): Promise<{ path: string; start: number; end: number }> {
  const log = await SegmentLog.open(logDir(db));
  const path = listSegments(logDir(db)).at(-1)!.path;
  const start = statSync(path).size;
  const cause = { origin: 'api', client: null };
  await log.append(
    Array.from({ length: 5 }, (_, i) => ({
      key: `/unacked/${tag}/${i}`,
      cause,
      change: { type: 'WriteStarted' as const, volumes: ['127.0.0.1:1/sv00'] },
    })),
  );
  await log.close();
  return { path, start, end: statSync(path).size };
}

/** What was done to the block, and whether the log can tell (zeros from a block's start to the end of the file read as space reserved for it, never written). */
function damage(kind: Damage, path: string, start: number, end: number): { what: string; visible: boolean } {
  const what = damageBlock(kind, path, start, end);
  const bytes = readFileSync(path);
  return { what, visible: bytes.subarray(start).some((byte) => byte !== 0) };
}

function damageBlock(kind: Damage, path: string, start: number, end: number): string {
  switch (kind) {
    case 'truncate': {
      const at = randomInt(start + 1, end);
      truncateSync(path, at);
      return `cut at ${at}`;
    }
    case 'overwrite': {
      const at = randomInt(start + 1, end);
      const bytes = readFileSync(path);
      randomBytes(end - at).copy(bytes, at);
      writeFileSync(path, bytes);
      return `random bytes from ${at}`;
    }
    case 'append garbage': {
      truncateSync(path, start); // drop the unacknowledged block, then garbage where the next block would be
      const garbage = randomBytes(randomInt(1, 8192));
      appendFileSync(path, garbage);
      return `${garbage.length} bytes of garbage`;
    }
    case 'zero a sector': {
      const sector = Math.floor(randomInt(start, end) / 512) * 512;
      const bytes = readFileSync(path);
      bytes.fill(0, Math.max(sector, start), Math.min(sector + 512, bytes.length));
      writeFileSync(path, bytes);
      return `zeroed the sector at ${sector}`;
    }
  }
}

describe('a damaged log', () => {
  let set: VolumeSet;
  let db: string;
  let master: MkvProcess | undefined;
  const acknowledged = new Map<string, string>();

  async function start(extra: string[] = []): Promise<MkvProcess> {
    master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db, '--segment-size', '4096', ...extra]);
    return master;
  }
  async function stop(): Promise<void> {
    await stopMaster(master!);
    master = undefined;
  }

  before(async () => {
    set = await startVolumes('embedded', 3);
    db = tempDir('mkv-damage-');
    const { url } = await start();
    for (let i = 0; i < 40; i++) {
      const key = `/acked/${i}`;
      assert.equal((await http('PUT', url + key, `value ${i}`)).status, 201);
      acknowledged.set(key, `value ${i}`);
    }
    await stop();
  });
  after(async () => {
    if (master) master.child.kill('SIGKILL');
    await set?.close();
    if (db) removeDir(db);
  });

  for (const kind of ['truncate', 'overwrite', 'append garbage', 'zero a sector'] as const) {
    test(`${kind} in the newest segment's unacknowledged tail: reported, cut, nothing acknowledged lost`, async () => {
      for (let round = 0; round < rounds; round++) {
        const tag = `${kind.replace(/ /g, '-')}-${round}`;
        const block = await appendUnacknowledgedBlock(db, tag);
        const { what, visible } = damage(kind, block.path, block.start, block.end);
        const { url, output } = await start();
        try {
          if (visible) assert.match(output(), /log tail is torn or corrupt/, `${what}: the cut is reported`);
          for (const [key, value] of acknowledged) assert.equal((await getFollowing(url + key)).text, value, `${what}: ${key}`);
          const unacked = JSON.parse((await http('GET', `${url}/unacked/${tag}/?unlinked`)).text) as { keys: string[] };
          assert.deepEqual(unacked.keys, [], `${what}: the damaged block is never applied`);
          // The log goes on after the cut.
          const key = `/acked/after-${tag}`;
          assert.equal((await http('PUT', url + key, 'later')).status, 201);
          acknowledged.set(key, 'later');
        } finally {
          await stop();
        }
      }
      await assertIndexEqualsReplay(db);
    });
  }

  test('a flipped byte in a sealed segment: log verify names it, the master refuses to start and says how to recover', async () => {
    const segments = listSegments(logDir(db));
    assert.ok(segments.length >= 2, 'the log has sealed segments');
    const sealed = segments[0]!.path;
    const original = readFileSync(sealed);
    const eventsOf = (bytes: Buffer) => [...readSegmentEvents(sealed, bytes)].flat().map((event) => JSON.stringify(event));
    // A flip inside a snappy back-reference can point at identical earlier bytes: the data is
    // unchanged and the CRC rightly passes. Such a flip must decode to the very same events;
    // flip again until one does change the data, which must then be caught.
    // The flips land in the blocks: the header's schema text is not checksummed (a reader that
    // parses it refuses a broken one).
    const blocksStart = parseHeader(original).end;
    let harmless = 0;
    let damaged: Buffer;
    for (;;) {
      damaged = Buffer.from(original);
      damaged[randomInt(blocksStart, damaged.length - 20)]! ^= 1 << randomInt(0, 8);
      if (verifySegmentBytes(sealed, damaged)) break;
      assert.deepEqual(eventsOf(damaged), eventsOf(original), 'a flip the checks pass must not change the events');
      assert.ok(++harmless < 50, 'flips keep missing the data');
    }
    writeFileSync(sealed, damaged);
    try {
      const verify = await runMkv(['log', 'verify', '--db', db]);
      assert.equal(verify.status, 1);
      // A flip in a block's frame or data fails its sync marker or CRC ("bad block"); one in the
      // event count, which Avro leaves outside the CRC, is caught when the events are decoded
      // (verify) or counted against the next segment's first seq (the start-up check).
      assert.match(verify.stdout, /00000000000000000001\.avro: (bad block|block) at byte \d+/);
      const refused = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db]).then(
        () => assert.fail('the master started on a damaged log'),
        (error: Error) => error.message,
      );
      assert.match(
        refused,
        /MKV_CORRUPT_LOG: .*00000000000000000001\.avro: (bad block at byte \d+|holds seq 1 to \d+, but the next segment starts at \d+)/,
      );
      assert.match(refused, /Restore the file from a backup/);
      assert.match(refused, /mkv rebuild --db NEW --scan/);
      const { url } = await start(['--skip-log-check']);
      assert.equal((await getFollowing(`${url}/acked/0`)).text, 'value 0', 'the index is still good');
      await stop();
    } finally {
      writeFileSync(sealed, original);
    }
    assert.equal((await runMkv(['log', 'verify', '--db', db])).status, 0);
  });
});
