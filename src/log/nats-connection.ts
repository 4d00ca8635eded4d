// How mkv reaches NATS: the --log URL and the --log-* files beside it, turned into nats.js's
// connection options, and the URL as every message shows it.
//
//   nats://[USER:PASSWORD@ | TOKEN@]HOST[:PORT][,HOST[:PORT]...][/STREAM]
//   tls://...                          the same, TLS required (as --log-tls-* also require it)
//
//   --log-password-file FILE  the password of nats://USER@host (then USER@ names a user, not a token)
//   --log-token-file FILE     a token (nats-server: authorization { token })
//   --log-nkey FILE           a user nkey seed, SU... (authorization { users = [{ nkey: U... }] })
//   --log-creds FILE          a .creds file: user JWT and its seed (an operator-mode server)
//   --log-tls-ca FILE, --log-tls-cert FILE, --log-tls-key FILE
//
// One identity for the whole cluster: the credentials written before the first host serve every
// server of the list (and those the cluster gossips). In the URL, percent-encode what would cut
// it: `%` `,` `@` in a user, `%` `,` in a password. A secret is never printed: every message
// names the log by `shown`, nats://USER:***@host:port/STREAM (a token: nats://***@...), and a URL
// that does not parse is shown redacted the same way.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity } from 'node:tls';
import { credsAuthenticator, nkeyAuthenticator, nkeys, type Authenticator, type ConnectionOptions } from '@nats-io/transport-node';
import { UsageError } from '../errors.js';

/** The files that hold the log's credentials and TLS material (the --log-* flags). */
export interface NatsAccess {
  passwordFile?: string;
  tokenFile?: string;
  nkeyFile?: string;
  credsFile?: string;
  tlsCaFile?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

/** A --log URL taken apart. */
export interface NatsUrl {
  /** host:port of each server. */
  servers: string[];
  stream: string;
  /** tls:// */
  tls: boolean;
  /** The user of USER:PASSWORD@ or USER@ (percent-decoded). */
  user?: string;
  /** The PASSWORD of USER:PASSWORD@; USER@ without one is a token when no password file is given. */
  password?: string;
  /** The URL as messages show it: the password or token as ***. */
  shown: string;
}

const USAGE = 'expected nats://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][/STREAM] (or tls://...)';

/**
 * `url` with whatever stands between its scheme and its last `@` hidden (a user name before a
 * `:` stays): for a URL that did not parse, and as a last guard on any text that may hold one.
 */
export function redactNatsUrl(url: string): string {
  const at = url.lastIndexOf('@');
  if (at < 0) return url;
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(url)?.[0] ?? '';
  const userinfo = url.slice(scheme.length, at);
  const user = /^[A-Za-z0-9._~-]*(?=:)/.exec(userinfo)?.[0];
  return `${scheme}${user === undefined ? '' : `${user}:`}***${url.slice(at)}`;
}

function decode(part: string, raw: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new UsageError(`--log ${redactNatsUrl(raw)}: a bad %-escape in the credentials (write % as %25)`);
  }
}

/** A host (name, IPv4, or [IPv6]) and an optional port: what a server of the list may be. */
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)(?::(\d{1,5}))?$/;

export function parseNatsUrl(url: string): NatsUrl {
  const bad = (why: string) => new UsageError(`--log ${redactNatsUrl(url)}: ${why}`);
  const whole = /^(nats|tls):\/\/(.*?)(?:\/([A-Za-z0-9_-]+))?\/?$/is.exec(url.trim());
  const hint = url.includes('@') ? ' (in the credentials, write % , @ as %25 %2C %40)' : '';
  if (!whole) throw bad(USAGE + hint);
  let tls = whole[1]!.toLowerCase() === 'tls';
  const stream = whole[3] ?? 'MKV';
  let userinfo: string | undefined;
  const servers: string[] = [];
  for (const [i, item] of whole[2]!.split(',').entries()) {
    if (/^\s*tls:\/\//i.test(item)) tls = true; // one server that wants TLS: the cluster does
    const entry = item.trim().replace(/^(nats|tls):\/\//i, '');
    const at = entry.lastIndexOf('@');
    if (at >= 0) {
      const given = entry.slice(0, at);
      if (userinfo !== undefined && given !== userinfo)
        throw bad('one user for every server: give the credentials once, before the first host');
      if (userinfo === undefined && i > 0) throw bad('give the credentials once, before the first host (they serve every server)');
      userinfo = given;
    }
    const hostPort = HOST_PORT.exec(entry.slice(at + 1));
    const port = Number(hostPort?.[2] ?? 4222);
    if (!hostPort || port < 1 || port > 65535) throw bad(USAGE + hint);
    servers.push(`${hostPort[1]}:${port}`);
  }
  let user: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    user = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), url);
    if (colon >= 0) password = decode(userinfo.slice(colon + 1), url);
    if (user === '' && password !== undefined) throw bad('a password needs a user: nats://USER:PASSWORD@host');
    if (user === '' || password === '') throw bad('empty credentials before @');
  }
  const scheme = tls ? 'tls' : 'nats';
  const identity = userinfo === undefined ? '' : password === undefined ? '***@' : `${encodeURIComponent(user!)}:***@`;
  return {
    servers,
    stream,
    tls,
    ...(user !== undefined ? { user } : {}),
    ...(password !== undefined ? { password } : {}),
    shown: `${scheme}://${identity}${servers.join(',')}/${stream}`,
  };
}

/** A secret file's text without its final line break; refused when empty or unreadable. */
function readSecret(flag: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`${flag} ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const secret = text.replace(/[\r\n]+$/, '');
  if (secret === '') throw new UsageError(`${flag} ${file} is empty`);
  return secret;
}

/** A user nkey seed file (as `nk -gen user` writes it, or any file with an SU... line). */
function nkeyAuth(file: string): Authenticator {
  const seed = /^\s*(SU[A-Z2-7]+)\s*$/m.exec(readSecret('--log-nkey', file))?.[1];
  try {
    if (!seed) throw new Error('no seed');
    nkeys.fromSeed(new TextEncoder().encode(seed));
  } catch {
    throw new UsageError(`--log-nkey ${file} holds no user nkey seed (a line SU...)`);
  }
  return nkeyAuthenticator(new TextEncoder().encode(seed));
}

/** A .creds file: a user JWT and its nkey seed, each between ----- lines. */
function credsAuth(file: string): Authenticator {
  const auth = credsAuthenticator(new TextEncoder().encode(readSecret('--log-creds', file)));
  try {
    auth('check');
  } catch {
    throw new UsageError(`--log-creds ${file} is not a NATS credentials file (a user JWT and an nkey seed, each between ----- lines)`);
  }
  return auth;
}

function readPem(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`${flag} ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * For servers given by IP address: nats.js names no server to node's TLS check then, which
 * checks the certificate against "localhost" instead. A certificate is taken when it is valid
 * for the name node checks or for one of the listed addresses (the servers of one cluster, whose
 * certificates the one CA signed). Node passes the option on; nats.js hands its tls options to it.
 */
function serverIdentityCheck(servers: string[]): { checkServerIdentity?: typeof checkServerIdentity } {
  const addresses = servers
    .map((server) => server.slice(0, server.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1'))
    .filter((host) => isIP(host));
  if (addresses.length === 0) return {};
  return {
    checkServerIdentity(name, certificate) {
      const failures = [name, ...addresses].map((host) => checkServerIdentity(host, certificate));
      return failures.includes(undefined) ? undefined : failures[1];
    },
  };
}

/**
 * nats.js's options for `url` and the files: one identity at most (a user and password, a token,
 * an nkey or a creds file), TLS when tls:// or a --log-tls-* file asks for it. Files are read
 * now, so a missing or bad one stops the command before it connects.
 */
export function natsConnectOptions(url: NatsUrl, access: NatsAccess = {}): { options: Partial<ConnectionOptions>; identity: string } {
  const options: Partial<ConnectionOptions> = {};
  const identities: string[] = [];
  if (access.passwordFile !== undefined) {
    if (url.user === undefined) throw new UsageError('--log-password-file needs the user in the URL: nats://USER@host:port');
    if (url.password !== undefined) throw new UsageError('the password is in --log and in --log-password-file: give it once');
    options.user = url.user;
    options.pass = readSecret('--log-password-file', access.passwordFile);
    identities.push(`user ${url.user}`);
  } else if (url.password !== undefined) {
    options.user = url.user!;
    options.pass = url.password;
    identities.push(`user ${url.user}`);
  } else if (url.user !== undefined) {
    options.token = url.user;
    identities.push('a token');
  }
  if (access.tokenFile !== undefined) {
    if (options.token !== undefined) throw new UsageError('a token is in --log and in --log-token-file: give it once');
    options.token = readSecret('--log-token-file', access.tokenFile);
    identities.push('a token');
  }
  if (access.nkeyFile !== undefined) {
    options.authenticator = nkeyAuth(access.nkeyFile);
    identities.push('an nkey');
  }
  if (access.credsFile !== undefined) {
    options.authenticator = credsAuth(access.credsFile);
    identities.push('a creds file');
  }
  if (identities.length > 1) throw new UsageError(`--log: one identity, not ${identities.join(' and ')}`);
  const { tlsCaFile, tlsCertFile, tlsKeyFile } = access;
  if ((tlsCertFile === undefined) !== (tlsKeyFile === undefined)) throw new UsageError('--log-tls-cert and --log-tls-key go together');
  if (url.tls || tlsCaFile !== undefined || tlsCertFile !== undefined) {
    options.tls = {
      ...(tlsCaFile !== undefined ? { ca: readPem('--log-tls-ca', tlsCaFile) } : {}),
      ...(tlsCertFile !== undefined ? { cert: readPem('--log-tls-cert', tlsCertFile) } : {}),
      ...(tlsKeyFile !== undefined ? { key: readPem('--log-tls-key', tlsKeyFile) } : {}),
      ...serverIdentityCheck(url.servers),
    };
  }
  return { options, identity: identities[0] ?? 'no credentials' };
}
