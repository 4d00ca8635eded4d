// Structured logs: one JSON line per entry on stderr. Quiet by default (warnings and errors);
// -v adds info and debug lines.

export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export function createLogger(options: { verbose?: boolean; write?: (line: string) => void } = {}): Logger {
  const threshold = options.verbose ? RANK.debug : RANK.warn;
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const emit = (level: Level, message: string, fields?: Record<string, unknown>) => {
    if (RANK[level] < threshold) return;
    const entry: Record<string, unknown> = { time: new Date().toISOString(), level, msg: message };
    for (const [name, value] of Object.entries(fields ?? {})) {
      entry[name] = value instanceof Error ? { message: value.message, code: (value as { code?: unknown }).code } : value;
    }
    write(JSON.stringify(entry) + '\n');
  };
  return {
    debug: (message, fields) => emit('debug', message, fields),
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
