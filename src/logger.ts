// Structured logs with pino: JSON lines on stderr, pretty (pino-pretty) when stderr is a
// terminal. Quiet by default (warnings and errors); -v adds info and debug lines, one per
// request among them.
import pino from 'pino';
import pretty from 'pino-pretty';

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Errors become { message, code }: the stack of a volume timeout helps no operator. */
function plain(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields ?? {})) {
    out[name] = value instanceof Error ? { message: value.message, code: (value as { code?: unknown }).code } : value;
  }
  return out;
}

export function createLogger(options: { verbose?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = options.verbose ? 'debug' : 'warn';
  const destination =
    options.destination ??
    (process.stderr.isTTY
      ? pretty({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l' })
      : pino.destination({ dest: 2, sync: true }));
  const logger = pino(
    { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    destination,
  );
  // A disabled level costs nothing: not even the copy of its fields (debug runs once per request).
  const off = () => {};
  return {
    debug: logger.isLevelEnabled('debug') ? (message, fields) => logger.debug(plain(fields), message) : off,
    info: logger.isLevelEnabled('info') ? (message, fields) => logger.info(plain(fields), message) : off,
    warn: (message, fields) => logger.warn(plain(fields), message),
    error: (message, fields) => logger.error(plain(fields), message),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Whatever escapes every handler is logged as the rest of the logs are, one JSON line, not a trace. */
export function logProcessFailures(): void {
  const logger = createLogger({});
  process.on('uncaughtException', (error) => {
    logger.error('uncaught exception; exiting', { error: error.message, stack: error.stack });
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    logger.error(
      'unhandled promise rejection',
      reason instanceof Error ? { error: reason.message, stack: reason.stack } : { reason: String(reason) },
    );
  });
}
