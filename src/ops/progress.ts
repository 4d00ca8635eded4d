// Progress of a long run: a progress bar on a terminal (cli-progress: count, rate, ETA),
// periodic plain lines otherwise (logs, CI), and a summary line at the end either way.
import cliProgress from 'cli-progress';

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
  const started = Date.now();
  let done = 0;
  let total = options.total;
  const rate = () => done / Math.max((Date.now() - started) / 1000, 1e-3);

  if (stream.isTTY && !options.quiet) {
    const format = total
      ? `${options.label} [{bar}] {percentage}% | {value}/{total} ${options.unit} | {rate} ${options.unit}/s | ETA {eta_formatted}`
      : `${options.label}: {value} ${options.unit} | {rate} ${options.unit}/s`;
    const bar = new cliProgress.SingleBar(
      { format, stream, hideCursor: true, clearOnComplete: true, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total ?? 0, 0, { rate: 0 });
    return {
      add(count, newTotal) {
        done += count;
        if (newTotal !== undefined) {
          total = newTotal;
          bar.setTotal(newTotal);
        }
        bar.update(done, { rate: Math.round(rate()) });
      },
      finish(summary) {
        bar.stop();
        stream.write(`${summary}\n`);
      },
    };
  }

  let lastLine = 0;
  return {
    add(count, newTotal) {
      done += count;
      if (newTotal !== undefined) total = newTotal;
      if (options.quiet) return;
      const now = Date.now();
      if (now - lastLine < (options.plainEveryMs ?? 10_000) || now - started < 1000) return;
      lastLine = now;
      const share = total ? ` / ${total} (${((100 * done) / Math.max(total, 1)).toFixed(1)}%)` : '';
      const eta = total ? `, ETA ${duration((total - done) / Math.max(rate(), 1e-9))}` : '';
      stream.write(`${options.label}: ${done}${share} ${options.unit}, ${Math.round(rate())} ${options.unit}/s${eta}\n`);
    },
    finish(summary) {
      if (!options.quiet) stream.write(`${summary}\n`);
    },
  };
}
