// Volumes that serve only what the master allowed (mkv server --volume-secret-file): every
// request to a volume carries a signature made with a secret that only the master and the
// volumes hold, in stock nginx's secure_link form, so nginx checks it with no module of ours:
//
//   md5 = base64url(md5(expires + uri + " " + op + " " + secret)), expires in unix seconds
//
// `uri` is the path as nginx's $uri has it (decoded, slashes merged, dot segments resolved), and
// `op` is what the request does, from its method and from whether the URI names a directory:
//
//   GET/HEAD of a blob      read     the only op a link in the URL may carry: a redirect's
//                                    ?md5=…&expires=… (valid --link-ttl), as a client needs it
//   GET/HEAD of a ".../"    list     the master's own requests only, with the signature in
//   PUT of a blob           put        X-Mkv-Signature: <md5>
//   DELETE of a blob        delete     X-Mkv-Expires: <unix seconds>
//   anything else           none: refused, whatever it carries
//
// Why headers: nginx writes the request line (URL and query) into its error log for a DELETE
// of a missing blob, a failed PUT and the like, so a signature in the URL was a link anyone
// reading the volumes' logs could use for minutes. Why one op per method: a signature for one
// request does nothing else — a DELETE's cannot PUT, a blob's read cannot list its directory.
// The secret itself never crosses the network. nginx/volume.conf.template holds the same rules;
// volume-server.ts checks them with checkRequest below, and the contract suite
// (test/integration/volume-contract.test.ts) holds the two together.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { UsageError } from '../errors.js';

export type VolumeOp = 'read' | 'list' | 'put' | 'delete';

/** The request headers that carry the master's signature (lower case, as Node names them). */
export const SIGNATURE_HEADER = 'x-mkv-signature';
export const EXPIRES_HEADER = 'x-mkv-expires';

/** The path that answers "ok" to anyone, signed or not, and serves nothing else (a healthcheck's). */
export const HEALTH_PATH = '/health';

/**
 * The path where a volume says its disk's free and total bytes, as df prints them
 * ("FREE SIZE\n"), to a read the master signed: the embedded volume works them out on each
 * request; nginx serves a file that nginx/disk-report rewrites every few seconds (its
 * Last-Modified says how old the figures are). A dot-path, so no blob is ever named so.
 */
export const DISK_PATH = '/.disk';

/**
 * A request target (Node's request.url) split as nginx splits it: its path — also of an
 * absolute-form target, "http://host/path" — and its query, undecoded.
 */
export function splitTarget(target: string): { path: string; query: string } {
  const authority = /^https?:\/\/[^/?]*/i.exec(target);
  const rest = authority ? target.slice(authority[0].length) : target;
  const at = rest.indexOf('?');
  const path = at === -1 ? rest : rest.slice(0, at);
  return { path: authority && path === '' ? '/' : path, query: at === -1 ? '' : rest.slice(at + 1) };
}

/**
 * A request path as nginx's $uri has it: percent-decoded (one character per byte, latin1),
 * runs of slashes merged, "." and ".." resolved; undefined where nginx answers 400 (a bad
 * escape, a NUL, ".." above the root).
 */
export function nginxUri(path: string): string | undefined {
  if (!path.startsWith('/')) return undefined;
  // The master's paths (hex, base64, "/svXX") have nothing to normalize.
  if (!/%|\/\/|\/\.|\0/.test(path)) return path;
  let decoded = '';
  for (let at = 0; at < path.length; at++) {
    const char = path[at]!;
    if (char !== '%') {
      decoded += char;
      continue;
    }
    const hex = path.slice(at + 1, at + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
    decoded += String.fromCharCode(parseInt(hex, 16));
    at += 2;
  }
  if (decoded.includes('\0')) return undefined;
  const parts = decoded.split('/');
  const kept: string[] = [];
  for (const part of parts.slice(1)) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (kept.length === 0) return undefined;
      kept.pop();
    } else kept.push(part);
  }
  const last = parts[parts.length - 1]!;
  const directory = last === '' || last === '.' || last === '..';
  return kept.length === 0 ? '/' : `/${kept.join('/')}${directory ? '/' : ''}`;
}

/**
 * The op a request needs: by its method, and for GET and HEAD by whether its URI (as
 * nginxUri gives it) names a directory, which only nginx's autoindex answers; undefined: no
 * op, so no signature lets it through.
 */
export function opOf(method: string, uri: string): VolumeOp | undefined {
  const directory = uri.endsWith('/');
  switch (method) {
    case 'GET':
    case 'HEAD':
      return directory ? 'list' : 'read';
    case 'PUT':
      return directory ? undefined : 'put';
    case 'DELETE':
      // nginx's DAV DELETE of a directory removes the whole tree: nobody signs that.
      return directory ? undefined : 'delete';
    default:
      return undefined;
  }
}

function digest(secret: string, uri: string, op: VolumeOp, expires: string): Buffer {
  return createHash('md5').update(expires).update(Buffer.from(uri, 'latin1')).update(` ${op} ${secret}`).digest();
}

/** The signature of `op` on `path` (a path on the volume, as sent) until `expires` (unix seconds). */
function signature(secret: string, path: string, op: VolumeOp, expires: number): string {
  const uri = nginxUri(path);
  if (uri === undefined) throw new Error(`cannot sign ${JSON.stringify(path)}: not a path nginx serves`);
  return digest(secret, uri, op, String(expires)).toString('base64url');
}

/** The query of a redirect's link: it reads the blob at `path` until `expires`, and does nothing else. */
export function signQuery(secret: string, path: string, expires: number): string {
  return `md5=${signature(secret, path, 'read', expires)}&expires=${expires}`;
}

/** The headers that sign the master's own request (any op) for `path` until `expires`. */
export function signHeaders(secret: string, path: string, op: VolumeOp, expires: number): Record<string, string> {
  return { [SIGNATURE_HEADER]: signature(secret, path, op, expires), [EXPIRES_HEADER]: String(expires) };
}

/** The value of query argument `name` as nginx's $arg_name takes it: the first, name matched in any case, not decoded. */
function nginxArg(query: string, name: string): string {
  for (const pair of query.split('&')) {
    const equals = pair.indexOf('=');
    if (equals !== -1 && pair.slice(0, equals).toLowerCase() === name) return pair.slice(equals + 1);
  }
  return '';
}

/** A base64url md5 as nginx's secure_link decodes it: 24 characters at most, decoding to 16 bytes (anything after "=" ignored). */
function decodeMd5(text: string): Buffer | undefined {
  if (text.length > 24) return undefined;
  const equals = text.indexOf('=');
  const body = equals === -1 ? text : text.slice(0, equals);
  if (!/^[A-Za-z0-9_-]*$/.test(body) || body.length % 4 === 1) return undefined;
  const bytes = Buffer.from(body, 'base64url');
  return bytes.length === 16 ? bytes : undefined;
}

/** A request as a volume checks it. */
export interface VolumeRequest {
  method: string;
  /** As nginxUri gives it. */
  uri: string;
  /** As splitTarget gives it. */
  query: string;
  headers: IncomingHttpHeaders;
}

/**
 * What a volume makes of a request, as nginx/volume.conf.template does: the signature from the
 * X-Mkv-Signature and X-Mkv-Expires headers when the first is there, else — for a read only —
 * from the query's md5 and expires; checked against the op of the method on the URI.
 */
export function checkRequest(
  secret: string,
  { method, uri, query, headers }: VolumeRequest,
  nowSeconds = Math.floor(Date.now() / 1000),
): 'ok' | 'expired' | 'bad' {
  const op = opOf(method, uri);
  if (op === undefined) return 'bad';
  const header = headers[SIGNATURE_HEADER];
  let md5: string;
  let expires: string;
  if (typeof header === 'string' && header !== '') {
    md5 = header;
    const given = headers[EXPIRES_HEADER];
    expires = typeof given === 'string' ? given : '';
  } else if (op === 'read') {
    md5 = nginxArg(query, 'md5');
    expires = nginxArg(query, 'expires');
  } else return 'bad';
  // nginx reads "md5,expires" and cuts at the first comma; expires is decimal digits, above 0.
  if (md5.includes(',') || !/^\d{1,18}$/.test(expires) || Number(expires) <= 0) return 'bad';
  const given = decodeMd5(md5);
  if (!given || !timingSafeEqual(given, digest(secret, uri, op, expires))) return 'bad';
  return Number(expires) < nowSeconds ? 'expired' : 'ok';
}

const SECRET = /^[A-Za-z0-9_-]{16,256}$/;
const SECRET_RULE = 'must be 16 to 256 letters, digits, - or _ (openssl rand -hex 32 makes one)';

/**
 * The volumes' secret: from the file given (--volume-secret-file), else from MKV_VOLUME_SECRET
 * (as docker-compose.yml passes it to the master and nginx alike); undefined: none. A secret is
 * what nginx's configuration can hold: 16 or more letters, digits, - or _.
 */
export function volumeSecret(file: string | undefined, environment = process.env.MKV_VOLUME_SECRET): string | undefined {
  if (file === undefined || file === '') {
    if (!environment) return undefined;
    if (!SECRET.test(environment)) throw new UsageError(`MKV_VOLUME_SECRET ${SECRET_RULE}`);
    return environment;
  }
  let secret: string;
  try {
    secret = readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new UsageError(`the volume secret file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (!SECRET.test(secret)) throw new UsageError(`the volume secret in ${file} ${SECRET_RULE}`);
  return secret;
}
