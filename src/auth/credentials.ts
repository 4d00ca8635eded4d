// The credentials file of `mkv server --credentials FILE`: who may do what to which keys.
//
//   # ACCESS_KEY:SECRET_KEY  [RIGHTS]  [PREFIX ...]
//   AKIAADMIN:s3cr3t-admin-key                          every right on every key
//   reader:another-secret      read,list   /public/ /logs/
//   uploader:third-secret      read,write,list   /incoming/
//   anonymous                  read        /public/     (no credentials at all)
//
// RIGHTS is a comma list of read (GET, HEAD), write (PUT, multipart, LINK), delete (DELETE,
// UNLINK, DeleteObjects), purge (S3 DeleteObject(s) of a version --retain keeps, by its id: gone
// for good), list (?list, ?unlinked, ListObjects, ListBuckets) and admin (?history,
// ?rebalance, /metrics), or `all` (the default). PREFIXes are keys as the API sees
// them, with the leading slash (an S3 bucket b is "/b/"); a key may only be touched when it
// starts with one of them, and a listing only when its prefix does. With no prefix, every key.
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';

export const RIGHTS = ['read', 'write', 'delete', 'purge', 'list', 'admin'] as const;
export type Right = (typeof RIGHTS)[number];

export interface Grant {
  rights: ReadonlySet<Right>;
  /** Key prefixes the rights hold for; empty: every key. */
  prefixes: readonly string[];
}

export interface AccessKey extends Grant {
  accessKey: string;
  secret: string;
}

export interface Credentials {
  keys: ReadonlyMap<string, AccessKey>;
  /** What a request without credentials may do (undefined: nothing). */
  anonymous: Grant | undefined;
  /** The one region SigV4 credentials may be scoped to (mkv server --region); undefined: any. */
  region?: string;
}

function parseRights(text: string, where: string): Set<Right> {
  if (text === 'all') return new Set(RIGHTS);
  const rights = new Set<Right>();
  for (const name of text.split(',')) {
    if (!(RIGHTS as readonly string[]).includes(name))
      throw new UsageError(`${where}: "${name}" is not a right (${RIGHTS.join(', ')} or all)`);
    rights.add(name as Right);
  }
  return rights;
}

/** Parses the text of a credentials file; `source` names it in messages (never a secret). */
export function parseCredentials(text: string, source: string): Credentials {
  const keys = new Map<string, AccessKey>();
  let anonymous: Grant | undefined;
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') continue;
    const where = `${source} line ${index + 1}`;
    const [who, ...rest] = line.split(/\s+/);
    const rightsText = rest[0] !== undefined && !rest[0].startsWith('/') ? rest.shift()! : 'all';
    const prefixes = rest;
    for (const prefix of prefixes)
      if (!prefix.startsWith('/')) throw new UsageError(`${where}: a key prefix starts with /, as keys do ("${prefix}")`);
    const grant: Grant = { rights: parseRights(rightsText, where), prefixes };
    if (who === 'anonymous') {
      if (anonymous) throw new UsageError(`${where}: anonymous is given twice`);
      anonymous = grant;
      continue;
    }
    const colon = who!.indexOf(':');
    if (colon <= 0 || colon === who!.length - 1)
      throw new UsageError(`${where}: expected ACCESS_KEY:SECRET_KEY, then rights and key prefixes`);
    const accessKey = who!.slice(0, colon);
    const secret = who!.slice(colon + 1);
    if (!/^[A-Za-z0-9._~+=@-]{1,128}$/.test(accessKey))
      throw new UsageError(`${where}: an access key is 1 to 128 letters, digits or ._~+=@-`);
    if (secret.length < 8) throw new UsageError(`${where}: the secret of ${accessKey} is shorter than 8 characters`);
    if (keys.has(accessKey)) throw new UsageError(`${where}: ${accessKey} is given twice`);
    keys.set(accessKey, { accessKey, secret, ...grant });
  }
  if (keys.size === 0 && !anonymous) throw new UsageError(`${source} names no access key`);
  return { keys, anonymous };
}

/**
 * The text of the credentials file of `mkv server --credentials`, read once when the master
 * starts: its own process and each HTTP worker (sent over IPC, never put in the environment) parse it.
 */
export function readCredentials(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--credentials ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** The credentials a file's text grants, SigV4 signatures scoped to `region` when given. */
export function credentialsOf(text: string, path: string, region: string | undefined): Credentials {
  const credentials = parseCredentials(text, path);
  return region ? { ...credentials, region } : credentials;
}

/**
 * The grants whose prefix does not end in "/", as "who prefix": "/pub" covers "/publicity/" too,
 * which is seldom what was meant (the master says so at start).
 */
export function openEndedPrefixes(credentials: Credentials): string[] {
  const grants: Array<[string, Grant | undefined]> = [
    ['anonymous', credentials.anonymous],
    ...[...credentials.keys].map(([name, key]) => [name, key] as [string, Grant]),
  ];
  return grants.flatMap(([who, grant]) =>
    (grant?.prefixes ?? []).filter((prefix) => !prefix.endsWith('/')).map((prefix) => `${who} ${prefix}`),
  );
}

/** Whether `grant` allows `right` on `key` (for a listing: on every key under the prefix `key`). */
export function allows(grant: Grant | undefined, right: Right, key: string): boolean {
  if (!grant || !grant.rights.has(right)) return false;
  return grant.prefixes.length === 0 || grant.prefixes.some((prefix) => key.startsWith(prefix));
}
