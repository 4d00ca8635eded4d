// The embedded volume server (`mkv volume`): the subset of stock nginx that the master and the
// rescans use, for development and tests where nginx is not installed. nginx stays the
// production volume server; test/integration/volume-contract.test.ts holds the two together.
//
//   PUT     body → <root>/.tmp/<random> → rename into place (201 new, 204 replaced); parents created
//   GET     a file (Range: one byte range → 206), or a directory "…/" as nginx's autoindex JSON
//   HEAD    as GET without the body
//   DELETE  a file: 204, missing: 404
//   /health 200 "ok" to anyone, whatever the method: a healthcheck's, serving no file
//   /.disk  GET: the disk's free and total bytes, "FREE SIZE\n" (signing.ts DISK_PATH), signed as a read
//   with a secret, as nginx/volume with one: 403 unless the request is signed for what it does
//   (signing.ts: the master's signature in headers, or a redirect's read link in the query)
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, statfsSync } from 'node:fs';
import { mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname, join, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { checkRequest, DISK_PATH, HEALTH_PATH, nginxUri, splitTarget } from './signing.js';

const TEMP_DIR = '.tmp';

export interface VolumeServerOptions {
  root: string;
  /** Serve only requests whose link is signed with this secret (signing.ts), as nginx/volume does with one. */
  secret?: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The file a request's URI (as nginxUri gives it) names, refusing anything that would touch
 * dot-files (the upload spool).
 */
function resolvePath(root: string, uri: string): { file: string; isDirectoryPath: boolean; urlPath: string } {
  const urlPath = Buffer.from(uri, 'latin1').toString('utf8');
  const segments = urlPath.split('/').filter((segment) => segment !== '');
  if (segments.some((segment) => segment.startsWith('.'))) throw new HttpError(400, 'bad path');
  return { file: join(root, ...segments), isDirectoryPath: urlPath.endsWith('/'), urlPath };
}

function httpDate(date: Date): string {
  return date.toUTCString();
}

async function listDirectory(dir: string): Promise<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  // As nginx orders them: directories first, then by name, bytewise.
  const visible = entries
    .filter((entry) => !entry.name.startsWith('.'))
    .sort((a, b) => Number(b.isDirectory()) - Number(a.isDirectory()) || Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  const lines = await Promise.all(
    visible.map(async (entry) => {
      const info = await stat(join(dir, entry.name)).catch(() => undefined);
      if (!info) return undefined;
      const mtime = httpDate(info.mtime);
      return info.isDirectory()
        ? `{ "name":${JSON.stringify(entry.name)}, "type":"directory", "mtime":"${mtime}" }`
        : `{ "name":${JSON.stringify(entry.name)}, "type":"file", "mtime":"${mtime}", "size":${info.size} }`;
    }),
  );
  // nginx's autoindex_format json, byte for byte: CRLF between entries, none after the "]".
  const entriesJson = lines.filter((line) => line !== undefined);
  return entriesJson.length === 0 ? '[\r\n]' : `[\r\n${entriesJson.join(',\r\n')}\r\n]`;
}

function parseRange(header: string, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined; // several ranges or another unit: serve the whole file, as nginx may
  const [, first, last] = match;
  if (first === '' && last === '') return undefined;
  let start: number;
  let end: number;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(first);
    end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

async function handleGet(root: string, uri: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const { file, isDirectoryPath, urlPath } = resolvePath(root, uri);
  const info = await stat(file).catch(() => undefined);
  if (!info) throw new HttpError(404, 'not found');
  if (info.isDirectory()) {
    if (!isDirectoryPath) {
      response.writeHead(301, { location: encodeURI(urlPath) + '/', 'content-length': 0 });
      response.end();
      return;
    }
    const body = Buffer.from(await listDirectory(file));
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    response.end(request.method === 'HEAD' ? undefined : body);
    return;
  }
  if (isDirectoryPath) throw new HttpError(404, 'not found');
  const headers: Record<string, string | number> = {
    'content-type': 'application/octet-stream',
    'last-modified': httpDate(info.mtime),
    etag: `"${Math.floor(info.mtimeMs / 1000).toString(16)}-${info.size.toString(16)}"`,
    'accept-ranges': 'bytes',
  };
  const range = request.headers.range ? parseRange(request.headers.range, info.size) : undefined;
  if (range === 'unsatisfiable') {
    response.writeHead(416, { 'content-range': `bytes */${info.size}`, 'content-length': 0 });
    response.end();
    return;
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? info.size - 1;
  if (range) headers['content-range'] = `bytes ${start}-${end}/${info.size}`;
  headers['content-length'] = Math.max(0, end - start + 1);
  response.writeHead(range ? 206 : 200, headers);
  if (request.method === 'HEAD' || info.size === 0) {
    response.end();
    return;
  }
  await pipeline(createReadStream(file, { start, end }), response);
}

/** Blobs are the volume's own, as nginx/volume writes them (dav_access user:rw group:r): not every local user's to read. */
const BLOB_MODE = 0o640;
const DIR_MODE = 0o750;

async function handlePut(root: string, uri: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const { file, isDirectoryPath } = resolvePath(root, uri);
  if (isDirectoryPath) throw new HttpError(409, 'cannot PUT a directory');
  const temporary = join(root, TEMP_DIR, randomBytes(12).toString('hex'));
  await mkdir(dirname(temporary), { recursive: true, mode: DIR_MODE });
  try {
    await pipeline(request, createWriteStream(temporary, { mode: BLOB_MODE }));
    if (!request.complete) throw new HttpError(400, 'request body ended early');
    const existed = await stat(file)
      .then((info) => (info.isDirectory() ? 'directory' : 'file'))
      .catch(() => undefined);
    if (existed === 'directory') throw new HttpError(409, 'a directory has that name');
    await mkdir(dirname(file), { recursive: true, mode: DIR_MODE });
    await rename(temporary, file);
    response.writeHead(existed ? 204 : 201, { 'content-length': 0 });
    response.end();
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}

async function handleDelete(root: string, uri: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const { file } = resolvePath(root, uri);
  try {
    await unlink(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new HttpError(404, 'not found');
    if (code === 'EISDIR' || code === 'EPERM') throw new HttpError(409, 'cannot DELETE a directory');
    throw error;
  }
  response.writeHead(204);
  response.end();
}

/** GET /.disk: the free and total bytes of the disk that holds `root`, as nginx serves nginx/disk-report's file. */
async function handleDisk(root: string, _uri: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') throw new HttpError(405, 'method not allowed');
  request.resume();
  const disk = statfsSync(root);
  const text = `${disk.bavail * disk.bsize} ${disk.blocks * disk.bsize}\n`;
  response.writeHead(200, { 'content-type': 'text/plain', 'content-length': text.length, 'last-modified': new Date().toUTCString() });
  response.end(request.method === 'HEAD' ? undefined : text);
}

export function createVolumeServer(options: VolumeServerOptions): Server {
  const root = options.root.endsWith(sep) ? options.root.slice(0, -1) : options.root;
  const { secret } = options;
  const server = createServer((request, response) => {
    const { path, query } = splitTarget(request.url ?? '/');
    const uri = nginxUri(path);
    const refuse = (status: number, text: string) => {
      request.resume();
      response.writeHead(status, { 'content-type': 'text/plain', 'content-length': text.length, connection: 'close' });
      response.end(request.method === 'HEAD' ? undefined : text);
    };
    if (uri === undefined) return refuse(400, 'bad request\n');
    const method = request.method ?? '';
    if (uri === HEALTH_PATH) {
      // As nginx's `location = /health { return 200 ... }`: any method, no signature, no file.
      request.resume();
      response.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3 });
      response.end(request.method === 'HEAD' ? undefined : 'ok\n');
      return;
    }
    if (secret && checkRequest(secret, { method, uri, query, headers: request.headers }) !== 'ok') return refuse(403, 'forbidden\n');
    const handler = uri.endsWith(DISK_PATH)
      ? handleDisk
      : method === 'GET' || method === 'HEAD'
        ? handleGet
        : method === 'PUT'
          ? handlePut
          : method === 'DELETE'
            ? handleDelete
            : undefined;
    const work = handler ? handler(root, uri, request, response) : Promise.reject(new HttpError(405, 'method not allowed'));
    work.catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      if (response.headersSent) {
        response.destroy();
        return;
      }
      const body = `${status === 500 ? (error as Error).message : (error as HttpError).message}\n`;
      response.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      response.end(request.method === 'HEAD' ? undefined : body);
    });
  });
  // Uploads of a gigabyte on a slow link must not be cut by Node's default 5-minute request timeout.
  server.requestTimeout = 0;
  return server;
}
