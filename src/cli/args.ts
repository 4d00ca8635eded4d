// Command-line flags, accepted as the original wrote them (-port 3000, -md5sum=false) and in
// the usual forms (--port 3000, --port=3000, --protect).
import { UsageError } from '../errors.js';

export type FlagType = 'string' | 'integer' | 'boolean' | 'duration' | 'list';

export interface FlagSpec {
  type: FlagType;
  help: string;
  default?: string | number | boolean | string[];
  /** Other names for the flag (without dashes). */
  aliases?: string[];
}

export type FlagSpecs = Record<string, FlagSpec>;
export type FlagValues = Record<string, string | number | boolean | string[] | undefined>;

export { UsageError } from '../errors.js';

/** Go durations as the original takes them: "1s", "500ms", "1m30s", "2h"; a bare number is seconds. */
export function parseDuration(text: string): number {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const pattern = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (const match of text.matchAll(pattern)) {
    total += Number(match[1]) * units[match[2]!]!;
    consumed += match[0].length;
  }
  if (consumed === 0 || consumed !== text.length) throw new UsageError(`not a duration: ${JSON.stringify(text)} (try 1s or 500ms)`);
  return total;
}

/** An instant: ISO 8601 (2026-11-20T12:00:00Z) or anything Date.parse reads; ms since the epoch. */
export function parseTime(text: string): number {
  const time = Date.parse(text);
  if (Number.isNaN(time)) throw new UsageError(`not a time: ${JSON.stringify(text)} (try 2026-11-20T12:00:00Z)`);
  return time;
}

function convert(name: string, spec: FlagSpec, raw: string): string | number | boolean | string[] {
  switch (spec.type) {
    case 'string':
      return raw;
    case 'integer':
      if (!/^-?\d+$/.test(raw)) throw new UsageError(`--${name} takes an integer, not ${JSON.stringify(raw)}`);
      return Number(raw);
    case 'boolean':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new UsageError(`--${name} takes true or false, not ${JSON.stringify(raw)}`);
    case 'duration':
      return parseDuration(raw);
    case 'list':
      return raw.split(',').map((item) => item.trim()).filter((item) => item !== '');
  }
}

export function parseFlags(argv: readonly string[], specs: FlagSpecs): { flags: FlagValues; positional: string[] } {
  const byName = new Map<string, [string, FlagSpec]>();
  for (const [name, spec] of Object.entries(specs)) {
    byName.set(name, [name, spec]);
    for (const alias of spec.aliases ?? []) byName.set(alias, [name, spec]);
  }
  const flags: FlagValues = {};
  for (const [name, spec] of Object.entries(specs)) {
    // Defaults may be written as on the command line ("1s"), so help shows them that way.
    flags[name] = typeof spec.default === 'string' && spec.type !== 'string' ? convert(name, spec, spec.default) : spec.default;
  }
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    const match = /^--?([A-Za-z][\w-]*)(?:=(.*))?$/s.exec(arg);
    if (!match) {
      positional.push(arg);
      continue;
    }
    const found = byName.get(match[1]!);
    if (!found) throw new UsageError(`unknown flag ${arg}`);
    const [name, spec] = found;
    let raw = match[2];
    if (raw === undefined) {
      const next = argv[i + 1];
      if (spec.type === 'boolean') {
        // Go's flag package needs -flag=false; also take "-flag false" for convenience.
        if (next === 'true' || next === 'false') {
          raw = next;
          i++;
        } else {
          raw = 'true';
        }
      } else {
        if (next === undefined) throw new UsageError(`${arg} needs a value`);
        raw = next;
        i++;
      }
    }
    flags[name] = convert(name, spec, raw);
  }
  return { flags, positional };
}

export function formatHelp(usage: string, description: string, specs: FlagSpecs): string {
  const lines = [`usage: ${usage}`, '', description, ''];
  if (Object.keys(specs).length > 0) lines.push('flags (also accepted with one dash, as the original: -port 3000):');
  for (const [name, spec] of Object.entries(specs)) {
    const names = [name, ...(spec.aliases ?? [])].map((n) => `--${n}`).join(', ');
    const value = spec.type === 'boolean' ? '' : ` ${spec.type === 'list' ? 'A,B,...' : spec.type.toUpperCase()}`;
    const fallback = spec.default === undefined || spec.default === '' ? '' : ` (default ${Array.isArray(spec.default) ? spec.default.join(',') : spec.default})`;
    lines.push(`  ${names}${value}`.padEnd(34) + ` ${spec.help}${fallback}`);
  }
  return lines.join('\n') + '\n';
}
