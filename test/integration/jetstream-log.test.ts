// The event log on a real NATS JetStream (nats-server on a loopback port): events as Avro
// single-object messages on per-key subjects, the stream sequence as the seq, conditional
// appends per key, reading back from any seq.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import avro from 'avsc';
import { eventSchemaJson, type EventInput, type LogEvent } from '../../src/events/event.js';
import { JetStreamLog, keySubject, rabinFingerprint, singleObjectHeader } from '../../src/log/jetstream-log.js';
import { parseNatsUrl } from '../../src/log/nats-connection.js';
import { natsSkipReason, startNats, type NatsServer } from '../helpers/nats.js';

const cause = { origin: 'api', client: '127.0.0.1' };
const started = (key: string): EventInput => ({ key, cause, change: { type: 'WriteStarted', volumes: ['127.0.0.1:3001/sv01'] } });
const committed = (key: string): EventInput => ({
  key,
  cause,
  change: { type: 'WriteCommitted', volumes: ['127.0.0.1:3001/sv01'], size: 5, md5: 'd41d8cd98f00b204e9800998ecf8427e' },
});

async function readAll(log: JetStreamLog, from = 1, until?: number): Promise<LogEvent[]> {
  const events: LogEvent[] = [];
  for await (const batch of log.readFrom(from, until)) events.push(...batch);
  return events;
}

test('the Rabin fingerprint is CRC-64-AVRO: the spec\'s value for "null"', () => {
  // From the Avro specification's reference implementation: fingerprint64("\"null\"") = 0x63dd24e7cc258f8a.
  assert.equal(rabinFingerprint('"null"').readBigUInt64LE().toString(16), '63dd24e7cc258f8a');
});

test('nats URLs name the servers and the stream', () => {
  const { servers, stream } = parseNatsUrl('nats://10.0.0.1:4222,10.0.0.2:4222/LOGS');
  assert.deepEqual({ servers, stream }, { servers: ['10.0.0.1:4222', '10.0.0.2:4222'], stream: 'LOGS' });
  assert.equal(parseNatsUrl('nats://127.0.0.1:4222').stream, 'MKV');
  assert.throws(() => parseNatsUrl('http://x'), /nats:\/\/\[USER:PASSWORD@\]HOST/);
});

test("a key's subject is its base64url, or a sha-256 for a long key", () => {
  assert.equal(keySubject('mkv', '/a/b c'), `mkv.k.${Buffer.from('/a/b c').toString('base64url')}`);
  assert.match(keySubject('mkv', `/${'x'.repeat(300)}`), /^mkv\.h\.[0-9a-f]{64}$/);
  assert.doesNotMatch(keySubject('mkv', '/dots.and*stars>'), /[*>]|\.\./);
});

describe('JetStream log', { skip: natsSkipReason() }, () => {
  let nats: NatsServer;
  before(async () => {
    nats = await startNats();
  });
  after(async () => {
    await nats?.stop();
  });

  test('appends get the stream sequence as seq, and read back in order from any seq', async () => {
    const log = await JetStreamLog.open({ url: `${nats.url}/ORDER` });
    try {
      assert.equal(log.lastSeq, 0);
      const first = await log.append([started('/a'), committed('/a')]);
      assert.deepEqual(
        first.map((event) => event.seq),
        [1, 2],
      );
      const many = await Promise.all(Array.from({ length: 50 }, (_, i) => log.publish(started(`/k/${i}`))));
      assert.deepEqual(
        many.map((event) => event.seq).sort((a, b) => a - b),
        Array.from({ length: 50 }, (_, i) => i + 3),
      );
      assert.equal(log.lastSeq, 52);
      const all = await readAll(log);
      assert.deepEqual(
        all.map((event) => event.seq),
        Array.from({ length: 52 }, (_, i) => i + 1),
      );
      assert.deepEqual(all[1], first[1]);
      assert.deepEqual(
        (await readAll(log, 10, 12)).map((event) => event.seq),
        [10, 11, 12],
      );
      assert.deepEqual(await readAll(log, 53), []);
    } finally {
      await log.close();
    }
  });

  test('a conditional append loses to another writer of the key with MKV_KEY_LOCKED; other keys are untouched', async () => {
    const one = await JetStreamLog.open({ url: `${nats.url}/RACE` });
    const two = await JetStreamLog.open({ url: `${nats.url}/RACE` });
    try {
      const a = await one.publish(started('/raced'), 0);
      // Both masters believe the key ends at a.seq; the first to append wins.
      const results = await Promise.allSettled([one.publish(committed('/raced'), a.seq), two.publish(committed('/raced'), a.seq)]);
      assert.equal(results.filter((result) => result.status === 'fulfilled').length, 1);
      const lost = results.find((result) => result.status === 'rejected') as PromiseRejectedResult;
      assert.equal(lost.reason.code, 'MKV_KEY_LOCKED');
      // A key with no events yet: expected 0.
      await assert.rejects(two.publish(started('/raced'), 0), { code: 'MKV_KEY_LOCKED' });
      assert.equal((await two.publish(started('/other'), 0)).seq, 3);
      assert.deepEqual(
        (await readAll(two)).map((event) => [event.seq, event.key, event.change.type]),
        [
          [1, '/raced', 'WriteStarted'],
          [2, '/raced', 'WriteCommitted'],
          [3, '/other', 'WriteStarted'],
        ],
      );
    } finally {
      await one.close();
      await two.close();
    }
  });

  test("each message is a standard Avro single-object encoding on the key's subject; the stream refuses deletes", async () => {
    const log = await JetStreamLog.open({ url: `${nats.url}/FORMAT` });
    const nc = await connect({ servers: nats.url.slice('nats://'.length) });
    try {
      await log.publish(committed('/formatted'));
      const jsm = await jetstreamManager(nc);
      const message = await jsm.streams.getMessage('FORMAT', { seq: 1 });
      assert.equal(message!.subject, keySubject('format', '/formatted'));
      const data = Buffer.from(message!.data);
      assert.deepEqual(data.subarray(0, 2), Buffer.from([0xc3, 0x01]));
      assert.deepEqual(data.subarray(0, 10), singleObjectHeader);
      // An independent reader (avsc from the schema file alone) decodes the body.
      const decoded = avro.Type.forSchema(JSON.parse(eventSchemaJson) as avro.Schema).fromBuffer(data.subarray(10)) as { key: string };
      assert.equal(decoded.key, '/formatted');
      await assert.rejects(jsm.streams.deleteMessage('FORMAT', 1));
      await assert.rejects(jsm.streams.purge('FORMAT'));
    } finally {
      await nc.close();
      await log.close();
    }
  });
});
