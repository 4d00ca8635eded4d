// The log behind NATS authentication: real nats-server processes on loopback ports, run from the
// configuration the README documents (per-user permissions: masters publish to the stream's
// subjects, readers only read), one with a token, and TLS with a CA of the test's own making.
// Masters and tools are the CLI as a user runs it; no password, token or seed may appear in
// anything they print, in /readyz, or in a file they write.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, nkeys, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { encodeMessage, keySubject } from '../../src/log/jetstream-log.js';
import {
  freePort,
  removeDir,
  repoRoot,
  runMkv,
  spawnMaster,
  startVolumes,
  stopMaster,
  tempDir,
  type MkvProcess,
  type VolumeSet,
} from '../helpers/cluster.js';
import { http } from '../helpers/http.js';
import { natsSkipReason, startNats, type NatsServer } from '../helpers/nats.js';

// Characters a URL must percent-encode, and characters a nats-server config string keeps as they are.
const MASTER_PASSWORD = `m@st,er/#%:${Date.now().toString(36)}Qx`;
const READER_PASSWORD = `rEad3r-${process.pid}-Kw`;
const WRONG_PASSWORD = 'not-the-Pa55word';
const TOKEN = `t0ken-${process.pid}-Vz`;
const masterUser = nkeys.createUser();
const MASTER_SEED = new TextDecoder().decode(masterUser.getSeed());
const SECRETS = [MASTER_PASSWORD, encodeURIComponent(MASTER_PASSWORD), READER_PASSWORD, WRONG_PASSWORD, TOKEN, MASTER_SEED];

function assertNoSecret(text: string, where: string): void {
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `${where} shows a secret (${secret.slice(0, 3)}…):\n${text}`);
}

/** The nats-server configuration of the README's section on NATS authentication, as written there. */
function readmeNatsConfig(): string {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.indexOf('#### The log behind NATS authentication');
  assert.ok(section >= 0, 'the README has a section "The log behind NATS authentication"');
  const block = /```conf\n([\s\S]*?)```/.exec(readme.slice(section));
  assert.ok(block, 'with the nats-server configuration in a ```conf block');
  return block[1]!;
}

/** The README's configuration on this test's port and store, with this test's secrets (and `extra` lines). */
function authorizedConfig(extra = ''): (server: { port: number; storeDir: string }) => string {
  return ({ port, storeDir }) => {
    const config = readmeNatsConfig()
      .replace(/^listen: .*$/m, `listen: 127.0.0.1:${port}`)
      .replace(/store_dir: [^ }]+/, `store_dir: "${storeDir}"`)
      .replace('MASTER_PASSWORD', MASTER_PASSWORD)
      .replace('READER_PASSWORD', READER_PASSWORD)
      .replace('MASTER_NKEY', masterUser.getPublicKey());
    assert.ok(config.includes(`listen: 127.0.0.1:${port}`) && config.includes(storeDir) && config.includes(masterUser.getPublicKey()));
    return `${config}\n${extra}\n`;
  };
}

const masterUrl = (nats: NatsServer, password = MASTER_PASSWORD) => `nats://master:${encodeURIComponent(password)}@127.0.0.1:${nats.port}`;
const readerUrl = (nats: NatsServer) => `nats://reader:${READER_PASSWORD}@127.0.0.1:${nats.port}`;

/** PUT then GET (following the redirect) through a master: its log takes and serves events. */
async function putAndGet(master: MkvProcess, key: string, value: string): Promise<void> {
  const put = await http('PUT', `${master.url}${key}`, value);
  assert.equal(put.status, 201, put.text);
  const found = await http('GET', `${master.url}${key}`);
  assert.equal(found.status, 302, found.text);
  assert.equal((await http('GET', found.headers.location!)).text, value);
}

/** A command that must stop at once: one line on stderr, nothing on stdout, no secret. */
async function refused(args: string[], status: number): Promise<string> {
  const result = await runMkv(args);
  assertNoSecret(result.stdout + result.stderr, `mkv ${args[0]}`);
  assert.equal(result.status, status, result.stderr);
  assert.equal(result.stdout, '');
  assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr);
  return result.stderr;
}

describe('the log behind NATS authentication (the README configuration)', { skip: natsSkipReason() }, () => {
  let nats: NatsServer;
  let set: VolumeSet;
  let root: string;
  let seedFile: string;
  before(async () => {
    nats = await startNats({ config: authorizedConfig() });
    set = await startVolumes('embedded', 2);
    root = tempDir('mkv-nats-auth-');
    seedFile = join(root, 'master.nk');
    writeFileSync(seedFile, `${MASTER_SEED}\n`);
  });
  after(async () => {
    await set?.close();
    await nats?.stop();
    if (root) removeDir(root);
  });

  const server = (db: string, ...log: string[]) => [
    '--db',
    join(root, db),
    '--volumes',
    set.volumes.join(','),
    '--replicas',
    '1',
    '--log',
    ...log,
  ];

  test('without credentials, or with a wrong password, a master stops at once: one clear line, no secret', async () => {
    const none = await refused(['server', '--port', '0', '--host', '127.0.0.1', ...server('none', `nats://127.0.0.1:${nats.port}`)], 1);
    assert.match(none, /^mkv: MKV_LOG_UNAVAILABLE: NATS at nats:\/\/127\.0\.0\.1:\d+\/MKV wants credentials and --log gave none/);
    const wrong = await refused(['server', '--port', '0', '--host', '127.0.0.1', ...server('wrong', masterUrl(nats, WRONG_PASSWORD))], 1);
    assert.match(
      wrong,
      /^mkv: MKV_LOG_UNAVAILABLE: NATS at nats:\/\/master:\*\*\*@127\.0\.0\.1:\d+\/MKV refused user master: Authorization Violation$/m,
    );
    // A URL that does not parse (an unencoded comma in the password) is a usage error, shown redacted.
    const garbled = await refused(['log', 'dump', '--log', `nats://master:${WRONG_PASSWORD},x@127.0.0.1:${nats.port}`], 2);
    assert.match(garbled, /^mkv: --log nats:\/\/master:\*\*\*@127\.0\.0\.1:\d+: expected nats:\/\//);
  });

  test('with the password in the URL, a master serves PUT and GET; it, /readyz and the tools show the log as master:***', async () => {
    const adminPort = await freePort();
    const master = await spawnMaster([...server('url', masterUrl(nats)), '--admin-port', String(adminPort)]);
    try {
      await putAndGet(master, '/auth/url', 'through a password');
      assert.doesNotMatch(master.output(), /takes clients without credentials/);
      // Nor does ps show it, once the master runs (Linux: the command line as /proc has it).
      const commandLine = `/proc/${master.child.pid}/cmdline`;
      if (existsSync(commandLine)) {
        const shown = readFileSync(commandLine, 'utf8');
        assert.match(shown, new RegExp(`--log nats://master:\\*\\*\\*@127\\.0\\.0\\.1:${nats.port}`));
        assertNoSecret(shown, 'the command line');
      }
      assert.match(master.output(), new RegExp(`log nats://master:\\*\\*\\*@127\\.0\\.0\\.1:${nats.port}/MKV at seq`));
      // /readyz names the log when it does not answer.
      nats.freeze();
      let readyz;
      try {
        readyz = await http('GET', `http://127.0.0.1:${adminPort}/readyz`);
      } finally {
        nats.thaw();
      }
      assert.equal(readyz.status, 503, readyz.text);
      assert.match(
        JSON.parse(readyz.text).checks.log,
        new RegExp(`^JetStream at nats://master:\\*\\*\\*@127\\.0\\.0\\.1:${nats.port}/MKV does not answer`),
      );
      assertNoSecret(readyz.text, '/readyz');
      for (let ready = false; !ready;) ready = (await http('GET', `http://127.0.0.1:${adminPort}/readyz`)).status === 200;
    } finally {
      await stopMaster(master);
    }
    assertNoSecret(master.output(), 'the master');

    // A reader reads the stream: dump (two names for the one server: the credentials serve both), and a point-in-time copy.
    const dump = await runMkv(['log', 'dump', '--log', `${readerUrl(nats)},localhost:${nats.port}/MKV`]);
    assert.equal(dump.status, 0, dump.stderr);
    assert.match(dump.stdout, /"key":"\/auth\/url"/);
    assertNoSecret(dump.stdout + dump.stderr, 'mkv log dump');
    const into = join(root, 'point-in-time');
    const rebuilt = await runMkv([
      'rebuild',
      '--db',
      join(root, 'url'),
      '--from-log',
      '--until-seq',
      '1',
      '--into',
      into,
      '--log',
      readerUrl(nats),
    ]);
    assert.equal(rebuilt.status, 0, rebuilt.stderr);
    assertNoSecret(rebuilt.stdout + rebuilt.stderr, 'mkv rebuild');
    const pointInTime = readFileSync(join(into, 'POINT_IN_TIME.json'), 'utf8');
    assertNoSecret(pointInTime, 'POINT_IN_TIME.json');
    assert.equal(JSON.parse(pointInTime).source, `nats://reader:***@127.0.0.1:${nats.port}/MKV`);
  });

  test('only masters publish: a reader forges no event and cannot touch the stream; a master cannot alter or remove it', async () => {
    const master = await spawnMaster(server('victim', masterUrl(nats)));
    let reader: NatsConnection | undefined;
    let admin: NatsConnection | undefined;
    try {
      await putAndGet(master, '/auth/victim', 'keep me');
      reader = await connect({ servers: `127.0.0.1:${nats.port}`, user: 'reader', pass: READER_PASSWORD });
      const readerJsm = await jetstreamManager(reader);
      const before = (await readerJsm.streams.info('MKV')).state.last_seq;
      const forged = encodeMessage(
        { key: '/auth/victim', cause: { origin: 'api', client: '6.6.6.6' }, change: { type: 'KeyDeleted', retained: false } },
        Date.now(),
      );
      const subject = keySubject('mkv', '/auth/victim');
      await assert.rejects(jetstream(reader).publish(subject, forged, { timeout: 2000 }));
      // Without waiting for an ack, and into the inboxes where masters take the stream's deliveries.
      reader.publish(subject, forged);
      reader.publish('_INBOX.forged', forged);
      await reader.flush();
      await assert.rejects(readerJsm.streams.deleteMessage('MKV', 1));
      await assert.rejects(readerJsm.streams.purge('MKV'));
      await assert.rejects(readerJsm.streams.update('MKV', { subjects: ['mkv.>', 'forged.>'] }));
      await assert.rejects(readerJsm.streams.delete('MKV'));
      // Masters append, and no more.
      admin = await connect({ servers: `127.0.0.1:${nats.port}`, user: 'master', pass: MASTER_PASSWORD });
      const masterJsm = await jetstreamManager(admin);
      await assert.rejects(masterJsm.streams.update('MKV', { deny_delete: false }));
      await assert.rejects(masterJsm.streams.add({ name: 'MKV', subjects: ['mkv.>'] }));
      await assert.rejects(masterJsm.streams.purge('MKV'));
      await assert.rejects(masterJsm.streams.delete('MKV'));
      assert.equal((await readerJsm.streams.info('MKV')).state.last_seq, before);
      const still = await http('GET', `${master.url}/auth/victim`, undefined, { 'min-log-seq': String(before) });
      assert.equal(still.status, 302);
    } finally {
      await reader?.close();
      await admin?.close();
      await stopMaster(master);
    }
    // A subject the user may not use stops a tool at once, naming it (not after JetStream's start-up wait).
    const denied = await refused(['log', 'dump', '--log', `${readerUrl(nats)}/OTHER`], 1);
    assert.match(denied, /Permissions Violation for Publish to "\$JS\.API\.STREAM\.INFO\.OTHER" \(NATS denies user reader a subject/);
    // A master given the reader's credentials (it may read, not append) stops at once, saying so.
    const before = await runMkv(['log', 'dump', '--log', `${readerUrl(nats)}/MKV`]);
    const misconfigured = await refused(['server', '--host', '127.0.0.1', '--port', '0', ...server('as-reader', readerUrl(nats))], 1);
    assert.match(
      misconfigured,
      /does not let this user append to stream MKV \(Permissions Violation for Publish to "mkv\.k\..*the MASTER permissions/,
    );
    assert.equal((await runMkv(['log', 'dump', '--log', `${readerUrl(nats)}/MKV`])).stdout, before.stdout, 'the stream is as it was');
  });

  test('--log-nkey: a master signs in with a user nkey seed file; --log-password-file keeps the password off the command line', async () => {
    const byNkey = await spawnMaster([...server('nkey', `nats://127.0.0.1:${nats.port}`), '--log-nkey', seedFile]);
    try {
      await putAndGet(byNkey, '/auth/nkey', 'signed with an nkey');
    } finally {
      await stopMaster(byNkey);
    }
    assertNoSecret(byNkey.output(), 'the master with --log-nkey');
    const passwordFile = join(root, 'password');
    writeFileSync(passwordFile, `${MASTER_PASSWORD}\n`);
    const byFile = await spawnMaster([
      ...server('password-file', `nats://master@127.0.0.1:${nats.port}`),
      '--log-password-file',
      passwordFile,
    ]);
    try {
      await putAndGet(byFile, '/auth/password-file', 'the password from a file');
      assert.ok(!byFile.child.spawnargs.join(' ').includes(MASTER_PASSWORD));
    } finally {
      await stopMaster(byFile);
    }
    assertNoSecret(byFile.output(), 'the master with --log-password-file');
    // A seed file that holds no seed is refused before connecting, without its text.
    const badSeed = join(root, 'bad.nk');
    writeFileSync(badSeed, `${MASTER_SEED.slice(0, -4)}\n`);
    assert.match(
      await refused(['log', 'dump', '--log', `nats://127.0.0.1:${nats.port}`, '--log-nkey', badSeed], 2),
      /holds no user nkey seed/,
    );
  });
});

describe('a NATS server that takes anyone', { skip: natsSkipReason() }, () => {
  let nats: NatsServer;
  let set: VolumeSet;
  let root: string;
  before(async () => {
    nats = await startNats();
    set = await startVolumes('embedded', 1);
    root = tempDir('mkv-nats-open-');
  });
  after(async () => {
    await set?.close();
    await nats?.stop();
    if (root) removeDir(root);
  });

  test('a master on it says so when it starts', async () => {
    const master = await spawnMaster(['--db', join(root, 'db'), '--volumes', set.volumes.join(','), '--replicas', '1', '--log', nats.url]);
    await stopMaster(master);
    assert.match(master.output(), /"msg":"the NATS server takes clients without credentials: anyone who reaches it reads every key name/);
  });
});

describe('the log behind a NATS token', { skip: natsSkipReason() }, () => {
  let nats: NatsServer;
  let set: VolumeSet;
  let root: string;
  before(async () => {
    nats = await startNats({
      config: ({ port, storeDir }) =>
        `listen: 127.0.0.1:${port}\njetstream { store_dir: "${storeDir}" }\nauthorization { token: "${TOKEN}" }\n`,
    });
    set = await startVolumes('embedded', 1);
    root = tempDir('mkv-nats-token-');
  });
  after(async () => {
    await set?.close();
    await nats?.stop();
    if (root) removeDir(root);
  });

  test('nats://TOKEN@host and --log-token-file sign in; a wrong token is refused, shown as ***', async () => {
    const master = await spawnMaster([
      '--db',
      join(root, 'db'),
      '--volumes',
      set.volumes.join(','),
      '--replicas',
      '1',
      '--log',
      `nats://${TOKEN}@127.0.0.1:${nats.port}`,
    ]);
    try {
      await putAndGet(master, '/token/k', 'by token');
      assert.match(master.output(), new RegExp(`log nats://\\*\\*\\*@127\\.0\\.0\\.1:${nats.port}/MKV`));
    } finally {
      await stopMaster(master);
    }
    assertNoSecret(master.output(), 'the master');
    const tokenFile = join(root, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    const dump = await runMkv(['log', 'dump', '--log', `nats://127.0.0.1:${nats.port}`, '--log-token-file', tokenFile]);
    assert.equal(dump.status, 0, dump.stderr);
    assert.match(dump.stdout, /"key":"\/token\/k"/);
    const wrong = await refused(['log', 'dump', '--log', `nats://${WRONG_PASSWORD}@127.0.0.1:${nats.port}`], 1);
    assert.match(wrong, /NATS at nats:\/\/\*\*\*@127\.0\.0\.1:\d+\/MKV refused a token: Authorization Violation/);
  });
});

const opensslSkipReason = () => (spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0 ? false : 'openssl is not installed');

describe('the log over TLS, with a CA of its own', { skip: natsSkipReason() || opensslSkipReason() }, () => {
  let open: NatsServer;
  let verifying: NatsServer;
  let set: VolumeSet;
  let root: string;
  const pem = (name: string) => join(root, name);
  const openssl = (...args: string[]) => {
    const result = spawnSync('openssl', args, { cwd: root, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
  };
  /** A key and a certificate signed by the test's CA, for 127.0.0.1 (by address only: nats.js names no server then). */
  const issue = (name: string, usage: 'serverAuth' | 'clientAuth') => {
    openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${name}-key.pem`,
      '-subj',
      `/CN=${name}`,
      '-out',
      `${name}.csr`,
    );
    writeFileSync(pem(`${name}.ext`), `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=${usage}\n`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca-key.pem',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    );
  };
  before(async () => {
    root = tempDir('mkv-nats-tls-');
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'ca-key.pem',
      '-subj',
      '/CN=mkv test CA',
      '-days',
      '2',
      '-out',
      'ca.pem',
    );
    issue('server', 'serverAuth');
    issue('client', 'clientAuth');
    const tls = (verify: boolean) =>
      `tls { cert_file: "${pem('server.pem')}", key_file: "${pem('server-key.pem')}", ca_file: "${pem('ca.pem')}"${verify ? ', verify: true' : ''} }`;
    open = await startNats({ config: authorizedConfig(tls(false)) });
    verifying = await startNats({ config: authorizedConfig(tls(true)) });
    set = await startVolumes('embedded', 1);
  });
  after(async () => {
    await set?.close();
    await open?.stop();
    await verifying?.stop();
    if (root) removeDir(root);
  });

  const server = (db: string, url: string, ...files: string[]) => [
    '--db',
    join(root, db),
    '--volumes',
    set.volumes.join(','),
    '--replicas',
    '1',
    '--log',
    url,
    ...files,
  ];

  test('--log-tls-ca: a master trusts the servers its CA signed, and no other', async () => {
    const untrusted = await refused(
      [
        'server',
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        ...server('untrusted', `tls://master:${encodeURIComponent(MASTER_PASSWORD)}@127.0.0.1:${open.port}`),
      ],
      1,
    );
    assert.match(untrusted, /^mkv: MKV_LOG_UNAVAILABLE: cannot reach NATS at tls:\/\/master:\*\*\*@127\.0\.0\.1:\d+\/MKV: .*certificate/);
    const master = await spawnMaster(server('trusted', masterUrl(open), '--log-tls-ca', pem('ca.pem')));
    try {
      await putAndGet(master, '/tls/k', 'over TLS');
    } finally {
      await stopMaster(master);
    }
    assertNoSecret(master.output(), 'the master over TLS');
  });

  test('--log-tls-cert and --log-tls-key: a server that verifies clients takes the master with its certificate only', async () => {
    const anonymous = await refused(['log', 'dump', '--log', masterUrl(verifying), '--log-tls-ca', pem('ca.pem')], 1);
    assert.match(
      anonymous,
      /^mkv: MKV_LOG_UNAVAILABLE: cannot reach NATS at nats:\/\/master:\*\*\*@127\.0\.0\.1:\d+\/MKV: .*--log-tls-cert/,
    );
    const tlsFiles = ['--log-tls-ca', pem('ca.pem'), '--log-tls-cert', pem('client.pem'), '--log-tls-key', pem('client-key.pem')];
    const master = await spawnMaster(server('client-cert', masterUrl(verifying), ...tlsFiles));
    try {
      await putAndGet(master, '/tls/client', 'with a client certificate');
    } finally {
      await stopMaster(master);
    }
    assertNoSecret(master.output(), 'the master with a client certificate');
  });
});
