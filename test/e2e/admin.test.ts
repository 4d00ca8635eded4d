// The admin listener: /metrics scraped and parsed as Prometheus text, /healthz, /readyz.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { http } from '../helpers/http.js';
import { until } from '../helpers/wait.js';
import {
  adminUrlOf,
  freePort,
  removeDir,
  spawnMaster,
  startVolumes,
  tempDir,
  type MkvProcess,
  type VolumeSet,
} from '../helpers/cluster.js';

let set: VolumeSet;
let db: string;
let master: MkvProcess;
let admin: string;

before(async () => {
  set = await startVolumes('embedded', 3);
  db = tempDir('mkv-admin-');
  master = await spawnMaster(['--volumes', set.volumes.join(','), '--db', db, '--admin-port', '0', '--voltimeout', '300ms']);
  admin = adminUrlOf(master);
});
after(async () => {
  master?.child.kill('SIGKILL');
  await set?.close();
  if (db) removeDir(db);
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format strictly enough to catch a malformed line. */
function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (comment) {
      if (comment[1] === 'TYPE') types.set(comment[2]!, comment[3]!);
      continue;
    }
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+]+|NaN|[+-]Inf)(?: \d+)?$/.exec(line);
    assert.ok(match, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return { samples, types };
}

test('/healthz and /readyz answer; /readyz names a volume that does not answer', async () => {
  assert.equal((await http('GET', `${admin}/healthz`)).status, 200);
  const ready = await http('GET', `${admin}/readyz`);
  assert.equal(ready.status, 200, ready.text);
  assert.deepEqual((JSON.parse(ready.text) as { checks: { log: string; projector: string } }).checks.projector, 'ok');
  await set.stop(2);
  try {
    const notReady = await http('GET', `${admin}/readyz`);
    assert.equal(notReady.status, 503);
    const { checks } = JSON.parse(notReady.text) as { checks: { volumes: Record<string, string> } };
    assert.equal(checks.volumes[set.volumes[2]!], 'refused the connection', 'the true cause, not "closed without answering"');
    assert.equal(checks.volumes[set.volumes[0]!], 'ok');
    const up = parsePrometheus((await http('GET', `${admin}/metrics`)).text).samples.filter((sample) => sample.name === 'mkv_volume_up');
    assert.deepEqual(Object.fromEntries(up.map((sample) => [sample.labels.volume, sample.value])), {
      [set.volumes[0]!]: 1,
      [set.volumes[1]!]: 1,
      [set.volumes[2]!]: 0,
    });
  } finally {
    await set.start(2);
  }
  assert.equal((await http('GET', `${admin}/readyz`)).status, 200);
  assert.equal((await http('GET', `${admin}/wehave`)).status, 404, 'the admin port is not the key space');
});

test('/metrics is Prometheus text with requests, log appends, fsync latency, lag and volume errors', async () => {
  for (let i = 0; i < 5; i++) assert.equal((await http('PUT', `${master.url}/m/${i}`, 'x')).status, 201);
  assert.equal((await http('GET', `${master.url}/m/missing`)).status, 404);
  await set.stop(1);
  try {
    assert.equal((await http('PUT', `${master.url}/m/fails`, 'x')).status, 500);
  } finally {
    await set.start(1);
  }
  const reply = await http('GET', `${admin}/metrics`);
  assert.equal(reply.status, 200);
  assert.match(reply.headers['content-type']!, /^text\/plain; version=0\.0\.4/);
  const { samples, types } = parsePrometheus(reply.text);
  const value = (name: string, labels: Record<string, string> = {}) =>
    samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
  assert.equal(value('mkv_http_requests_total', { method: 'PUT', status: '201' }), 5);
  assert.equal(value('mkv_http_requests_total', { method: 'GET', status: '404' }), 1);
  assert.equal(value('mkv_http_requests_total', { method: 'PUT', status: '500' }), 1);
  assert.equal(types.get('mkv_http_request_duration_seconds'), 'histogram');
  assert.ok(value('mkv_http_request_duration_seconds_count', { method: 'PUT' }) >= 6);
  assert.ok(value('mkv_log_appends_total') >= 10, 'WriteStarted and WriteCommitted of 5 PUTs');
  assert.ok(value('mkv_log_events_total') >= value('mkv_log_appends_total'));
  assert.equal(types.get('mkv_log_append_seconds'), 'histogram');
  assert.equal(value('mkv_log_append_seconds_count'), value('mkv_log_appends_total'));
  assert.equal(value('mkv_group_commit_events_count'), value('mkv_log_appends_total'));
  assert.equal(value('mkv_projector_lag_events'), 0);
  assert.ok(value('mkv_log_last_seq') >= 10);
  assert.ok(value('mkv_index_size_bytes') > 0);
  assert.equal(value('mkv_locks_in_flight'), 0);
  assert.ok(value('mkv_volume_errors_total', { volume: set.volumes[1]! }) >= 1, 'the dead volume is counted');
  assert.ok(value('mkv_process_resident_memory_bytes') > 0);
});

test('a master started with volumes down says, per volume, what is wrong, and starts anyway', async () => {
  const secured = await startVolumes('embedded', 1, tempDir('mkv-admin-secured-'), '0123456789abcdef0123456789abcdef');
  const downDb = tempDir('mkv-admin-down-');
  const down = `127.0.0.1:${await freePort()}`;
  // The other master's admin port: an HTTP server, but no volume (a port typed wrong).
  const notVolume = new URL(admin).host;
  const started = await spawnMaster([
    '--volumes',
    `${set.volumes[0]},${secured.volumes[0]},${down},${notVolume}`,
    '--db',
    downDb,
    '--replicas',
    '1',
  ]);
  try {
    const lines = started.output().split('\n');
    const warning = (volume: string) => lines.find((line) => line.includes(`"msg":"volume ${volume}: `)) ?? '';
    assert.match(warning(down), /refused the connection/);
    assert.match(warning(secured.volumes[0]!), /asks for a signature \(HEAD answered 403\): it holds a volume secret/);
    assert.match(warning(notVolume), /answers HTTP, but not as a volume \(HEAD \/health answered 404\)/);
    assert.equal(warning(set.volumes[0]!), '', 'a volume that answers is not warned of');
    const put = await http('PUT', `${started.url}/down/k`, 'v');
    assert.ok([201, 500].includes(put.status), put.text);
    if (put.status === 500) {
      // The client is told a volume failed; the operator's log says which and why.
      assert.match(put.text, /^MKV_VOLUME_FAILED: a volume failed to serve this request/);
      await until('the master to log why the PUT failed', () =>
        started
          .output()
          .split('\n')
          // Placement hashes the volumes' ports, which differ each run: the key may land on any of the three that fail.
          .some((line) => line.includes('"msg":"request failed"') && /refused the connection|answered \d{3}/.test(line)),
      );
    }
  } finally {
    started.child.kill('SIGKILL');
    await started.exited;
    await secured.close();
    removeDir(downDb);
  }
});
