// mkv status: the cluster as a running master's admin port shows it (its /status.json, the
// status page's figures), printed for a terminal. With --credentials on the master, an access
// key with the admin right: --access-key NAME, its secret from --secret-file or MKV_SECRET_KEY
// (never on the command line, where ps shows it).
import { readFileSync } from 'node:fs';
import { statusText } from '../master/status-page.js';
import type { ClusterStatus } from '../master/status.js';
import { defineFlags, UsageError, type Options } from './args.js';

export const statusFlags = defineFlags({
  admin: { type: 'string', default: 'http://127.0.0.1:3100', help: "the master's admin address (its --admin-port)" },
  'access-key': { type: 'string', default: '', help: 'an access key with the admin right, when the master has --credentials' },
  'secret-file': { type: 'string', default: '', help: "a file holding that key's secret (or MKV_SECRET_KEY)" },
  json: { type: 'boolean', default: false, help: 'print /status.json as it is' },
});

export type StatusOptions = Options<typeof statusFlags>;

function authorization(flags: StatusOptions): Record<string, string> {
  const name = flags['access-key'];
  if (name === '') return {};
  const secret = flags['secret-file'] ? readFileSync(flags['secret-file'], 'utf8').trim() : (process.env.MKV_SECRET_KEY ?? '');
  if (secret === '') throw new UsageError('--access-key needs its secret: --secret-file FILE, or MKV_SECRET_KEY');
  return { authorization: `Basic ${Buffer.from(`${name}:${secret}`).toString('base64')}` };
}

export async function statusCommand(flags: StatusOptions): Promise<void> {
  const base = /^https?:\/\//.test(flags.admin) ? flags.admin : `http://${flags.admin}`;
  let answer: Response;
  try {
    answer = await fetch(new URL('/status.json', base), { headers: authorization(flags), signal: AbortSignal.timeout(30_000) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (error as Error).message;
    throw new UsageError(`no master's admin port answers at ${base} (${why}): give its --admin-port address with --admin`);
  }
  const body = await answer.text();
  if (answer.status === 401 || answer.status === 403)
    throw new UsageError(
      `${base} refused (${answer.status}): ${body.trim()}${flags['access-key'] ? '' : ' (give --access-key with the admin right)'}`,
    );
  if (answer.status !== 200) throw new UsageError(`${base}/status.json answered ${answer.status}: ${body.trim().slice(0, 200)}`);
  process.stdout.write(flags.json ? body : statusText(JSON.parse(body) as ClusterStatus));
}
