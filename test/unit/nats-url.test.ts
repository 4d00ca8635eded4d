// The --log URL with NATS credentials in it: what it parses to, how every message shows it, and
// that no way of writing it, right or wrong, puts its password or token into an error.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { nkeys } from '@nats-io/transport-node';
import { UsageError } from '../../src/errors.js';
import { natsConnectOptions, parseNatsUrl, redactNatsUrl } from '../../src/log/nats-connection.js';
import { logAccess, logAccessFlags } from '../../src/cli/common-flags.js';
import { parseFlags } from '../../src/cli/args.js';
import { serverFlags } from '../../src/cli/server.js';
import { logFlags } from '../../src/cli/log.js';
import { gcFlags } from '../../src/cli/gc.js';
import { rebalanceFlags } from '../../src/cli/rebalance.js';
import { rebuildFlags } from '../../src/cli/rebuild.js';
import { verifyFlags } from '../../src/cli/verify.js';

const SECRET = 'Zq9-secret';

/** A seed with one base32 character of its key changed. */
function damaged(seed: string): string {
  return `${seed.slice(0, 10)}${seed[10] === 'A' ? 'B' : 'A'}${seed.slice(11)}`;
}

/** The error `fn` throws: a UsageError whose message holds no form of `secret`. */
function refusal(fn: () => unknown, secret = SECRET): string {
  let message: string | undefined;
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof UsageError, `a UsageError, not ${String(error)}`);
    message = error.message;
  }
  assert.ok(message !== undefined, 'refused');
  for (const form of [secret, encodeURIComponent(secret), secret.slice(0, 6)]) assert.ok(!message.includes(form), `${form} in: ${message}`);
  return message;
}

test('a user and password in the URL: parsed, percent-decoded, shown as user:***', () => {
  assert.deepEqual(parseNatsUrl(`nats://master:${SECRET}@10.0.0.9:4222`), {
    servers: ['10.0.0.9:4222'],
    stream: 'MKV',
    tls: false,
    user: 'master',
    password: SECRET,
    shown: 'nats://master:***@10.0.0.9:4222/MKV',
  });
  const encoded = parseNatsUrl('nats://mas%40ter:p%40ss%2C%2F%3A%25%23w@h1:4222,h2/LOGS');
  assert.equal(encoded.user, 'mas@ter');
  assert.equal(encoded.password, 'p@ss,/:%#w');
  assert.deepEqual(encoded.servers, ['h1:4222', 'h2:4222']);
  assert.equal(encoded.stream, 'LOGS');
  assert.equal(encoded.shown, 'nats://mas%40ter:***@h1:4222,h2:4222/LOGS');
  // As Go's url.Parse and the NATS clients take them: the last @ ends the credentials, the first : ends the user.
  assert.equal(parseNatsUrl('nats://u:p@ss:w/rd@127.0.0.1:4222/').password, 'p@ss:w/rd');
});

test('several servers: the credentials once before the first host, or the same on each', () => {
  const once = parseNatsUrl(`nats://master:${SECRET}@h1:4222,h2:4223,[::1]:4224/MKV`);
  assert.deepEqual(once.servers, ['h1:4222', 'h2:4223', '[::1]:4224']);
  assert.equal(once.password, SECRET);
  const each = parseNatsUrl(`nats://master:${SECRET}@h1:4222, nats://master:${SECRET}@h2:4222`);
  assert.deepEqual(each.servers, ['h1:4222', 'h2:4222']);
  assert.equal(each.shown, 'nats://master:***@h1:4222,h2:4222/MKV');
  assert.match(
    refusal(() => parseNatsUrl(`nats://master:${SECRET}@h1:4222,nats://other:${SECRET}x@h2:4222`)),
    /one user/,
  );
  assert.match(
    refusal(() => parseNatsUrl(`nats://h1:4222,master:${SECRET}@h2:4222`)),
    /before the first host/,
  );
});

test('a token: nats://TOKEN@host, shown as ***', () => {
  const url = parseNatsUrl(`nats://${SECRET}@127.0.0.1:4222`);
  assert.equal(url.user, SECRET);
  assert.equal(url.password, undefined);
  assert.equal(url.shown, 'nats://***@127.0.0.1:4222/MKV');
  assert.deepEqual(natsConnectOptions(url).options, { token: SECRET });
});

test('tls:// asks for TLS; nats:// without credentials is as before', () => {
  assert.equal(parseNatsUrl('tls://nats.internal/S').tls, true);
  assert.equal(parseNatsUrl('tls://nats.internal/S').shown, 'tls://nats.internal:4222/S');
  assert.equal(parseNatsUrl('nats://h1:4222,tls://h2:4222').shown, 'tls://h1:4222,h2:4222/MKV');
  assert.deepEqual(natsConnectOptions(parseNatsUrl('tls://nats.internal')).options, { tls: {} });
  assert.deepEqual(parseNatsUrl('nats://127.0.0.1:4222'), {
    servers: ['127.0.0.1:4222'],
    stream: 'MKV',
    tls: false,
    shown: 'nats://127.0.0.1:4222/MKV',
  });
});

test('no URL that does not parse puts its secret into the error', () => {
  const bad = [
    `nats://master:${SECRET}@`,
    `nats://master:${SECRET}@host:99999`,
    `nats://master:${SECRET}@host:4222/STREAM/extra`,
    `nats://master:${SECRET}@host:4222?x=1`,
    `nats://master:${SECRET},x@host:4222`, // an unencoded comma cuts the list
    `nats://master:${SECRET}%zz@host:4222`, // a bad %-escape
    `http://master:${SECRET}@host:4222`,
    `master:${SECRET}@host:4222`,
    `nats://:${SECRET}@host:4222`,
    `nats://master:${SECRET}@h1:4222,${SECRET}@h2:4222`,
    `nats://${SECRET}@h o s t`,
  ];
  for (const url of bad) {
    const message = refusal(() => parseNatsUrl(url));
    assert.match(message, /^--log /, message);
    assert.match(message, /\*\*\*/, message);
  }
});

test('redactNatsUrl hides what stands before the last @, keeping a user name', () => {
  assert.equal(redactNatsUrl(`nats://master:${SECRET}@h:4222/MKV`), 'nats://master:***@h:4222/MKV');
  assert.equal(redactNatsUrl(`nats://${SECRET}@h:4222`), 'nats://***@h:4222');
  assert.equal(redactNatsUrl(`master:${SECRET}@h`), 'master:***@h');
  assert.equal(redactNatsUrl('nats://h:4222'), 'nats://h:4222');
  assert.ok(!redactNatsUrl(`nats://u@x:${SECRET}@h`).includes(SECRET));
});

test('the files: password, token, nkey seed; one identity; TLS material read now, never echoed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mkv-nats-url-'));
  try {
    const file = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const passwordFile = file('password', `${SECRET}\n`);
    assert.deepEqual(natsConnectOptions(parseNatsUrl('nats://master@h'), { passwordFile }).options, { user: 'master', pass: SECRET });
    assert.match(
      refusal(() => natsConnectOptions(parseNatsUrl('nats://h'), { passwordFile })),
      /needs the user in the URL/,
    );
    assert.match(
      refusal(() => natsConnectOptions(parseNatsUrl(`nats://master:${SECRET}@h`), { passwordFile })),
      /give it once/,
    );
    assert.deepEqual(natsConnectOptions(parseNatsUrl('nats://h'), { tokenFile: passwordFile }).options, { token: SECRET });
    assert.match(
      refusal(() => natsConnectOptions(parseNatsUrl('nats://h'), { tokenFile: file('empty', '\n') })),
      /empty/,
    );
    assert.match(
      refusal(() => natsConnectOptions(parseNatsUrl('nats://h'), { tokenFile: join(dir, 'missing') })),
      /ENOENT/,
    );

    const user = nkeys.createUser();
    const seed = new TextDecoder().decode(user.getSeed());
    const nkey = natsConnectOptions(parseNatsUrl('nats://h'), { nkeyFile: file('user.nk', `${seed}\n`) });
    assert.equal(nkey.identity, 'an nkey');
    const signed = nkey.options.authenticator as (nonce?: string) => { nkey: string; sig: string };
    assert.equal(signed('nonce').nkey, user.getPublicKey());
    assert.match(
      // One character of the key changed: its CRC-16 fails whatever the seed (a changed tail could match by chance).
      refusal(() => natsConnectOptions(parseNatsUrl('nats://h'), { nkeyFile: file('bad.nk', `${damaged(seed)}\n`) }), seed),
      /holds no user nkey seed/,
    );
    assert.match(
      refusal(() => natsConnectOptions(parseNatsUrl('nats://h'), { credsFile: file('bad.creds', `${SECRET}\n`) })),
      /not a NATS credentials file/,
    );
    assert.match(
      refusal(() => natsConnectOptions(parseNatsUrl(`nats://master:${SECRET}@h`), { nkeyFile: join(dir, 'user.nk') })),
      /one identity/,
    );

    const tls = natsConnectOptions(parseNatsUrl('nats://h'), { tlsCaFile: file('ca.pem', 'CA PEM') });
    assert.deepEqual(tls.options, { tls: { ca: 'CA PEM' } });
    assert.match(
      refusal(() => natsConnectOptions(parseNatsUrl('nats://h'), { tlsCertFile: join(dir, 'ca.pem') })),
      /go together/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every command that takes --log takes the --log-* files, and refuses them without --log', () => {
  const commands = {
    server: serverFlags,
    log: logFlags,
    gc: gcFlags,
    rebalance: rebalanceFlags,
    rebuild: rebuildFlags,
    verify: verifyFlags,
  };
  for (const [command, flags] of Object.entries(commands)) {
    assert.ok('log' in flags, `mkv ${command} --log`);
    for (const name of Object.keys(logAccessFlags)) assert.ok(name in flags, `mkv ${command} --${name}`);
  }
  const { flags } = parseFlags(['--log', 'nats://master@h', '--log-password-file', '/etc/p', '--log-tls-ca', '/etc/ca'], serverFlags);
  assert.deepEqual(logAccess(flags), { passwordFile: '/etc/p', tlsCaFile: '/etc/ca' });
  assert.throws(() => logAccess(parseFlags(['--log-nkey', '/etc/n'], serverFlags).flags), /--log-nkey goes with --log/);
});
