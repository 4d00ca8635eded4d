// Command-line flags, accepted as the original wrote them (-port 3000, -md5sum=false) and in
// the usual forms (--port 3000, --port=3000, --protect).
import { UsageError } from '../errors.js';
import { defaultConfig } from '../config.js';

/** volumes: a list of volume servers' host:port, each checked (volumeAddresses). */
export type FlagType = 'string' | 'integer' | 'boolean' | 'duration' | 'list' | 'volumes';

export interface FlagSpec {
  readonly type: FlagType;
  readonly help: string;
  /** Written as on the command line ("1s" for a duration), so --help shows it that way. */
  readonly default?: string | number | boolean | readonly string[];
  /** Other names for the flag (without dashes). */
  readonly aliases?: readonly string[];
  /** The command cannot run without it (checked by requireFlags, after --help). */
  readonly required?: boolean;
  /** Accepted because the original took it with every command, and meaningless to this one. */
  readonly ignored?: boolean;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;
export type FlagValues = Record<string, string | number | boolean | string[] | undefined>;

/** What a flag of this type parses to: durations in milliseconds, lists as arrays. */
type ValueOf<T extends FlagType> = T extends 'string'
  ? string
  : T extends 'integer' | 'duration'
    ? number
    : T extends 'boolean'
      ? boolean
      : string[];

/** The parsed flags of a command, typed by its specs: a flag with a default is always there. */
export type ParsedFlags<S extends FlagSpecs> = {
  -readonly [K in keyof S]: S[K] extends { default: unknown } ? ValueOf<S[K]['type']> : ValueOf<S[K]['type']> | undefined;
};

/** ParsedFlags once requireFlags has checked them: a required flag is there too. */
export type Options<S extends FlagSpecs> = {
  -readonly [K in keyof S]: S[K] extends { default: unknown } | { required: true }
    ? ValueOf<S[K]['type']>
    : ValueOf<S[K]['type']> | undefined;
};

/** Declares a command's flags, keeping each one's type for ParsedFlags and Options. */
export function defineFlags<const S extends FlagSpecs>(specs: S): S {
  return specs;
}

/** Checks that every required flag was given; says which is missing and what it is. */
export function requireFlags<S extends FlagSpecs>(specs: S, flags: ParsedFlags<S>): Options<S> {
  for (const [name, spec] of Object.entries(specs)) {
    const value = (flags as FlagValues)[name];
    if (spec.required && (value === undefined || value === '' || (Array.isArray(value) && value.length === 0))) {
      throw new UsageError(`--${name} is required: ${spec.help}`);
    }
  }
  return flags as Options<S>;
}

export { UsageError } from '../errors.js';

/**
 * The original's flags (its main.go), with its defaults. Its one flag set served every command,
 * so its users' scripts pass all of them to each: every command here takes them too, and one it
 * has no use for is accepted and ignored.
 */
export const originalFlags = defineFlags({
  port: { type: 'integer', default: 3000, help: 'port to listen on (0: any free port)' },
  db: { type: 'string', help: 'the database directory: the event log (DIR/log) and the index (DIR/index)' },
  fallback: { type: 'string', default: '', help: 'host:port to redirect missing keys to' },
  replicas: { type: 'integer', default: defaultConfig.replicas, help: 'copies of every value' },
  subvolumes: { type: 'integer', default: defaultConfig.subvolumes, help: 'subvolumes (directories sv00, sv01, ...) per volume' },
  volumes: { type: 'volumes', help: 'volume servers, host:port,host:port,...' },
  protect: { type: 'boolean', default: false, help: 'refuse DELETE of a key that was not UNLINKed first' },
  v: { type: 'boolean', default: false, aliases: ['verbose'], help: 'debug logs' },
  md5sum: { type: 'boolean', default: true, help: 'compute the md5 of every value' },
  voltimeout: { type: 'duration', default: durationText(defaultConfig.voltimeoutMs), help: 'deadline of the HEAD a GET sends to a volume' },
});

/** A command's flags and the original's it does not take itself (marked ignored, so parsed but never typed). */
export function withOriginalFlags<S extends FlagSpecs>(specs: S): S {
  const taken = new Set(Object.entries(specs).flatMap(([name, spec]) => [name, ...(spec.aliases ?? [])]));
  const all: Record<string, FlagSpec> = { ...specs };
  for (const [name, spec] of Object.entries(originalFlags)) if (!taken.has(name)) all[name] = { ...spec, ignored: true };
  return all as S;
}

/**
 * Finds the command among the arguments: the first one that is neither a flag nor a flag's value,
 * so flags may come before it (the original's form, mkv -volumes ... -db DIR server) or after.
 * A flag takes the next argument as its value unless it is boolean or written --flag=value; the
 * specs of every command tell which (a name means the same kind of flag in all of them).
 */
export function findCommand(argv: readonly string[], specsOfCommands: readonly FlagSpecs[]): { name: string | undefined; rest: string[] } {
  const kinds = new Map<string, FlagType>();
  const everyCommand: FlagSpecs[] = [originalFlags, ...specsOfCommands];
  for (const specs of everyCommand) {
    for (const [name, spec] of Object.entries(specs)) for (const alias of [name, ...(spec.aliases ?? [])]) kinds.set(alias, spec.type);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return { name: argv[i + 1], rest: [...argv.slice(0, i), ...argv.slice(i + 2)] };
    const flag = /^--?([A-Za-z][\w-]*)(=.*)?$/s.exec(arg);
    if (!flag) return { name: arg, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
    if (flag[2] !== undefined) continue;
    const kind = kinds.get(flag[1]!);
    if (kind === undefined) continue; // unknown: the command's parser names it
    const next = argv[i + 1];
    if (kind !== 'boolean' || next === 'true' || next === 'false') i++;
  }
  return { name: undefined, rest: [...argv] };
}

/**
 * Go durations as the original takes them: "1s", "500ms", "1m30s", "2h", and days, "30d" (a
 * retention window's unit; Go has none). A number without a unit is refused, as Go's flags
 * refuse it ("0" aside): "--abort-older-than 24" is not a day.
 */
export function parseDuration(text: string): number {
  if (/^0+(\.0+)?$/.test(text)) return 0;
  if (/^\d+(\.\d+)?$/.test(text))
    throw new UsageError(`not a duration: ${JSON.stringify(text)} has no unit (${text}s, ${text}m or ${text}h?)`);
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const pattern = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (const match of text.matchAll(pattern)) {
    total += Number(match[1]) * units[match[2]!]!;
    consumed += match[0].length;
  }
  if (consumed === 0 || consumed !== text.length) throw new UsageError(`not a duration: ${JSON.stringify(text)} (try 1s or 500ms)`);
  return total;
}

/** Milliseconds as a Go duration the flags take back ("1s", "10m", "1h", "500ms"), for defaults and help. */
export function durationText(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const)
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** An instant: ISO 8601 (2026-11-20T12:00:00Z) or anything Date.parse reads; ms since the epoch. */
export function parseTime(text: string): number {
  // RFC 3339 (or its date alone): Date.parse alone takes "5" and "-5" for days of 2001.
  const time = /^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?)?$/i.test(text) ? Date.parse(text) : NaN;
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
      return listItems(raw);
    case 'volumes':
      return volumeAddresses(name, listItems(raw));
  }
}

function listItems(raw: string): string[] {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/**
 * Volume servers as placement names them: host:port each (a host name, an IPv4 address or a
 * [bracketed] IPv6 one), no scheme or path, none twice — two "replicas" on one server are one copy.
 */
export function volumeAddresses(name: string, items: string[]): string[] {
  const seen = new Set<string>();
  for (const item of items) {
    const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(item);
    if (scheme) throw new UsageError(`--${name}: ${JSON.stringify(item)}: give host:port, without ${scheme[0]}`);
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(item);
    if (!match)
      throw new UsageError(`--${name}: ${JSON.stringify(item)} is not host:port (a volume server's address and port, e.g. 127.0.0.1:3001)`);
    const port = Number(match[2]);
    if (port < 1 || port > 65535) throw new UsageError(`--${name}: ${JSON.stringify(item)}: the port must be 1 to 65535`);
    if (seen.has(item.toLowerCase()))
      throw new UsageError(`--${name}: ${item} is given twice (each replica must be on a volume of its own)`);
    seen.add(item.toLowerCase());
  }
  return items;
}

export function parseFlags<S extends FlagSpecs>(argv: readonly string[], specs: S): { flags: ParsedFlags<S>; positional: string[] } {
  const byName = new Map<string, [string, FlagSpec]>();
  for (const [name, spec] of Object.entries(specs)) {
    byName.set(name, [name, spec]);
    for (const alias of spec.aliases ?? []) byName.set(alias, [name, spec]);
  }
  const flags: FlagValues = {};
  for (const [name, spec] of Object.entries(specs)) {
    // Defaults may be written as on the command line ("1s"), so help shows them that way.
    const fallback = spec.default;
    flags[name] =
      typeof fallback === 'string' && spec.type !== 'string'
        ? convert(name, spec, fallback)
        : Array.isArray(fallback)
          ? [...(fallback as string[])]
          : (fallback as string | number | boolean | undefined);
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
  return { flags: flags as ParsedFlags<S>, positional };
}

export function formatHelp(usage: string, description: string, specs: FlagSpecs): string {
  const lines = [`usage: ${usage}`, '', description, ''];
  const own = Object.entries(specs).filter(([, spec]) => !spec.ignored);
  const ignored = Object.entries(specs)
    .filter(([, spec]) => spec.ignored)
    .map(([name]) => `--${name}`);
  if (own.length > 0) lines.push('flags (also accepted with one dash, as the original: -port 3000):');
  for (const [name, spec] of own) {
    const names = [name, ...(spec.aliases ?? [])].map((n) => `--${n}`).join(', ');
    const value =
      spec.type === 'boolean'
        ? ''
        : ` ${spec.type === 'list' ? 'A,B,...' : spec.type === 'volumes' ? 'HOST:PORT,...' : spec.type.toUpperCase()}`;
    const fallback = spec.required
      ? ' (required)'
      : spec.default === undefined || spec.default === ''
        ? ''
        : ` (default ${Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default)})`;
    lines.push(`  ${names}${value}`.padEnd(34) + ` ${spec.help}${fallback}`);
  }
  if (ignored.length > 0)
    lines.push('', `also accepted, as the original took every flag with every command, and ignored here: ${ignored.join(' ')}`);
  return lines.join('\n') + '\n';
}
