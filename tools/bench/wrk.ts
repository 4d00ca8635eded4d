// wrk (Debian's `wrk`), driven from the benchmarks: a fixed URL, or a random path per request
// from a list (so a GET benchmark reads many keys, not one hot key).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface WrkResult {
  requestsPerSec: number;
  avgMs: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Responses that were neither 2xx nor 3xx. */
  non2xx3xx: number;
  socketErrors: number;
}

export interface WrkOptions {
  /** http://host:port (and the path when `paths` is not given). */
  url: string;
  /** Request paths chosen at random, one per request. */
  paths?: string[];
  seconds?: number;
  connections?: number;
  threads?: number;
}

const script = `
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
init = function(args) math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16)) end
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
`;

function milliseconds(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!match) return NaN;
  const value = Number(match[1]);
  return { us: value / 1000, ms: value, s: value * 1000, m: value * 60_000 }[match[2] as 'us' | 'ms' | 's' | 'm'];
}

export async function wrk(options: WrkOptions): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), 'mkv-wrk-'));
  try {
    const args = [`-t${options.threads ?? 2}`, `-c${options.connections ?? 100}`, `-d${options.seconds ?? 10}s`, '--latency'];
    const env = { ...process.env };
    if (options.paths) {
      writeFileSync(join(dir, 'paths'), options.paths.join('\n') + '\n');
      writeFileSync(join(dir, 'random.lua'), script);
      args.push('-s', join(dir, 'random.lua'));
      env.WRK_PATHS = join(dir, 'paths');
    }
    args.push(options.url);
    const { stdout } = await promisify(execFile)('wrk', args, { env, timeout: ((options.seconds ?? 10) + 30) * 1000 });
    const number = (pattern: RegExp) => Number(pattern.exec(stdout)?.[1] ?? 0);
    const latency = /Latency\s+(\S+)/.exec(stdout)?.[1] ?? '';
    const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
    return {
      requestsPerSec: number(/Requests\/sec:\s+([\d.]+)/),
      avgMs: milliseconds(latency),
      p50Ms: milliseconds(/^\s+50%\s+(\S+)$/m.exec(stdout)?.[1] ?? ''),
      p99Ms: milliseconds(/^\s+99%\s+(\S+)$/m.exec(stdout)?.[1] ?? ''),
      requests: number(/(\d+) requests in/),
      non2xx3xx: number(/Non-2xx or 3xx responses: (\d+)/),
      socketErrors: errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatWrk(name: string, result: WrkResult): string {
  return (
    `${name.padEnd(10)} ${Math.round(result.requestsPerSec)} req/s, avg ${result.avgMs.toFixed(2)} ms, p50 ${result.p50Ms.toFixed(2)} ms, ` +
    `p99 ${result.p99Ms.toFixed(2)} ms (${result.requests} requests` +
    (result.non2xx3xx > 0 ? `, ${result.non2xx3xx} not 2xx/3xx` : '') +
    (result.socketErrors > 0 ? `, ${result.socketErrors} socket errors` : '') +
    ')'
  );
}
