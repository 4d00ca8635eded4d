// Races of PUT/DELETE/UNLINK/LINK on one key from many clients: every answer is one the
// contract allows, each success is exactly one change in the log, the final state is the log's
// last word, and index == replay(log). MKV_RACE_ROUNDS sets the rounds (20 in npm test).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { http } from '../helpers/http.js';
import { assertIndexEqualsReplay } from '../helpers/replay.js';
import { removeDir, startMaster, startVolumes, type TestMaster, type VolumeSet } from '../helpers/cluster.js';

const rounds = Number(process.env.MKV_RACE_ROUNDS ?? 20);
const CLIENTS = 24;
const md5 = (text: string) => createHash('md5').update(text).digest('hex');

let set: VolumeSet;
let master: TestMaster;
before(async () => {
  set = await startVolumes('embedded', 3);
  master = await startMaster(set.volumes);
});
after(async () => {
  await set?.close();
  if (master) removeDir(master.db);
});

interface HistoryEvent {
  seq: number;
  type: string;
  md5?: string;
}

test(`${rounds} races of ${CLIENTS} clients on one key: one winner at a time, the log has the last word`, async (t) => {
  const allowed: Record<string, number[]> = {
    PUT: [201, 403, 409],
    DELETE: [204, 404, 409],
    UNLINK: [204, 404, 409],
    LINK: [204, 404, 409],
  };
  let contested = 0;
  for (let round = 0; round < rounds; round++) {
    const key = `/race/${round}`;
    // Start from each state in turn: absent, live, unlinked.
    if (round % 3 >= 1) assert.equal((await http('PUT', master.url + key, 'initial')).status, 201);
    if (round % 3 === 2) assert.equal((await http('UNLINK', master.url + key)).status, 204);
    const before = (JSON.parse((await http('GET', `${master.url}${key}?history`)).text || '[]') as HistoryEvent[]).length;
    const methods = Array.from({ length: CLIENTS }, (_, i) => ['PUT', 'DELETE', 'UNLINK', 'LINK'][(i * 7 + round) % 4]!);
    const replies = await Promise.all(
      methods.map((method, i) => http(method, master.url + key, method === 'PUT' ? `value ${round}.${i}` : undefined)),
    );
    const history = (JSON.parse((await http('GET', `${master.url}${key}?history`)).text || '[]') as HistoryEvent[]).slice(before);
    const count = (method: string, status: number) => replies.filter((reply, i) => methods[i] === method && reply.status === status).length;
    const events = (type: string) => history.filter((event) => event.type === type).length;
    replies.forEach((reply, i) =>
      assert.ok(allowed[methods[i]!]!.includes(reply.status), `${methods[i]} answered ${reply.status}: ${reply.text}`),
    );
    contested += replies.filter((reply) => reply.status === 409).length;
    assert.equal(count('PUT', 201), events('WriteCommitted'), 'each 201 is one committed write');
    assert.equal(count('DELETE', 204), events('KeyDeleted'), 'each DELETE 204 is one deletion');
    assert.equal(count('LINK', 204), events('KeyLinked'), 'each LINK 204 is one link');
    // The final state is what the last event says.
    const last = (JSON.parse((await http('GET', `${master.url}${key}?history`)).text || '[]') as HistoryEvent[]).at(-1);
    const reply = await http('GET', master.url + key);
    if (last && ['WriteCommitted', 'KeyLinked'].includes(last.type)) {
      assert.equal(reply.status, 302, `last word ${last.type}`);
      const committed = (JSON.parse((await http('GET', `${master.url}${key}?history`)).text) as HistoryEvent[])
        .filter((e) => e.type === 'WriteCommitted')
        .at(-1)!;
      assert.equal(reply.headers['content-md5'], committed.md5);
      const winners = replies.flatMap((r, i) => (methods[i] === 'PUT' && r.status === 201 ? [md5(`value ${round}.${i}`)] : []));
      assert.ok(
        winners.length === 0 ? committed.md5 === md5('initial') : winners.includes(committed.md5!),
        'the value is the last winner’s',
      );
    } else {
      assert.equal(reply.status, 404, `last word ${last?.type ?? 'none'}`);
    }
  }
  t.diagnostic(`${rounds} rounds × ${CLIENTS} clients; ${contested} requests answered 409 while another held the key`);
  assert.ok(contested > 0, 'the clients really raced');
  await master.close();
  await assertIndexEqualsReplay(master.db);
});
