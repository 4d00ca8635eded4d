// Volumes that serve only what the master allowed (mkv server --volume-secret-file FILE): every
// request to a volume carries a link signed with a secret that only the master and the volumes
// hold, in stock nginx's secure_link form, so nginx checks it with no module of ours:
//
//   ?md5=<base64url md5(expires + uri + " " + op + " " + secret)>&expires=<unix seconds>
//
// `op` is "read" for GET and HEAD, "write" for PUT and DELETE, so the link a redirect hands a
// client reads that one blob until it expires, and writes nothing. Listings are reads of a
// directory's URI, which only the master signs. The secret itself never crosses the network.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';

export type VolumeOp = 'read' | 'write';

/** The op a method needs (nginx: map $request_method $mkv_op). */
export function opOf(method: string): VolumeOp {
  return method === 'GET' || method === 'HEAD' ? 'read' : 'write';
}

/** The URI as nginx's $uri has it: decoded, with runs of slashes merged (merge_slashes on). */
function nginxUri(uri: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(uri);
  } catch {
    decoded = uri;
  }
  return decoded.replace(/\/{2,}/g, '/');
}

function digest(secret: string, uri: string, op: VolumeOp, expires: number): string {
  return createHash('md5')
    .update(`${expires}${nginxUri(uri)} ${op} ${secret}`)
    .digest('base64url');
}

/** The query that signs a request for `uri` (a path on the volume) until `expires` (unix seconds). */
export function signQuery(secret: string, uri: string, op: VolumeOp, expires: number): string {
  return `md5=${digest(secret, uri, op, expires)}&expires=${expires}`;
}

/** What a volume makes of a request's link: good, expired, or missing or wrong. */
export function checkLink(
  secret: string,
  uri: string,
  op: VolumeOp,
  query: URLSearchParams,
  nowSeconds = Date.now() / 1000,
): 'ok' | 'expired' | 'bad' {
  const md5 = query.get('md5');
  const expires = Number(query.get('expires'));
  if (!md5 || !Number.isInteger(expires)) return 'bad';
  if (md5 !== digest(secret, uri, op, expires)) return 'bad';
  return expires < nowSeconds ? 'expired' : 'ok';
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
