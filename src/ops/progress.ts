// Progress of a long run: a self-rewriting line on a terminal (count, rate, ETA), periodic plain
// lines otherwise (logs, CI), and a summary line at the end either way.

export interface Progress {
  /** Adds to the count done (and optionally raises the expected total). */
  add(done: number, total?: number): void;
  finish(summary: string): void;
}

export interface ProgressOptions {
  /** What is counted: "events", "files", "keys". */
  unit: string;
  label: string;
  total?: number;
  stream?: NodeJS.WriteStream;
  /** How often a plain line is printed when not on a terminal. */
  plainEveryMs?: number;
  quiet?: boolean;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes}m${Math.round(seconds % 60)}s` : `${Math.floor(minutes / 60)}h${minutes % 60}m`;
}

export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const tty = Boolean(stream.isTTY);
  const started = Date.now();
  let done = 0;
  let total = options.total;
  let lastDraw = 0;
  const line = () => {
    const seconds = (Date.now() - started) / 1000;
    const rate = done / Math.max(seconds, 1e-3);
    const share = total ? ` / ${total} (${((100 * done) / Math.max(total, 1)).toFixed(1)}%)` : '';
    const eta = total ? `, ETA ${duration((total - done) / Math.max(rate, 1e-9))}` : '';
    return `${options.label}: ${done}${share} ${options.unit}, ${Math.round(rate)} ${options.unit}/s${eta}`;
  };
  return {
    add(count, newTotal) {
      done += count;
      if (newTotal !== undefined) total = newTotal;
      if (options.quiet) return;
      const now = Date.now();
      if (tty && now - lastDraw >= 100) {
        stream.write(`\r${line()}\x1b[K`);
        lastDraw = now;
      } else if (!tty && now - lastDraw >= (options.plainEveryMs ?? 10_000) && now - started >= 1000) {
        stream.write(`${line()}\n`);
        lastDraw = now;
      }
    },
    finish(summary) {
      if (options.quiet) return;
      if (tty) stream.write('\r\x1b[K');
      stream.write(`${summary}\n`);
    },
  };
}
