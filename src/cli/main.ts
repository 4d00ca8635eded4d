#!/usr/bin/env node
// mkv: the command line. One file per command; this one only dispatches.
import { mkvVersion } from './version.js';
import { MkvError } from '../errors.js';
import { logProcessFailures } from '../logger.js';
import { redactNatsUrl } from '../log/nats-connection.js';
import { findCommand, formatHelp, parseFlags, requireFlags, UsageError, withOriginalFlags, type FlagSpecs, type Options } from './args.js';
import { auditCommand, auditFlags } from './audit.js';
import { gcCommand, gcFlags } from './gc.js';
import { historyCommand, historyFlags } from './history.js';
import { logCommand, logFlags } from './log.js';
import { rebalanceCommand, rebalanceFlags } from './rebalance.js';
import { rebuildCommand, rebuildFlags } from './rebuild.js';
import { restoreCommand, restoreFlags } from './restore.js';
import { serverCommand, serverFlags } from './server.js';
import { statusCommand, statusFlags } from './status.js';
import { upCommand, upFlags } from './up.js';
import { uploadsCommand, uploadsFlags } from './uploads.js';
import { verifyCommand, verifyFlags } from './verify.js';
import { volumeCommand, volumeFlags } from './volume.js';

interface Command {
  usage: string;
  description: string;
  flags: FlagSpecs;
  /** Parses the arguments after the command (every original flag accepted) and runs it. */
  run(argv: string[]): Promise<void>;
}

/** A command whose flags reach it parsed once, typed by its specs, required ones checked. */
function command<S extends FlagSpecs>(spec: {
  usage: string;
  description: string;
  flags: S;
  run(flags: Options<S>, positional: string[]): Promise<void>;
}): Command {
  return {
    ...spec,
    run(argv) {
      const { flags, positional } = parseFlags(argv, withOriginalFlags(spec.flags));
      return spec.run(requireFlags(spec.flags, flags), positional);
    },
  };
}

const commands: Record<string, Command> = {
  server: command({
    usage: 'mkv server --volumes HOST:PORT,... --db DIR [flags]',
    description: 'Runs the master: the minikeyvalue HTTP API over an event log (DIR/log) and its LMDB index (DIR/index).',
    flags: serverFlags,
    run: (flags) => serverCommand(flags),
  }),
  volume: command({
    usage: 'mkv volume --port PORT --dir DIR',
    description: 'Runs the embedded volume server (for development and tests; nginx/volume is the production one).',
    flags: volumeFlags,
    run: (flags) => volumeCommand(flags),
  }),
  up: command({
    usage: 'mkv up [--nginx] [--data ./data] [--port 3000]',
    description: 'Runs a local cluster: a master on PORT and three volumes on the next three ports. Ctrl-C stops it.',
    flags: upFlags,
    run: (flags) => upCommand(flags),
  }),
  rebuild: command({
    usage:
      'mkv rebuild --db DIR --from-log [--until-seq N | --until TIME] [--into OUT]\n       mkv rebuild --db DIR [--scan] --volumes HOST:PORT,... [--replicas 3 --subvolumes 10]',
    description:
      "Rebuilds the index: by replaying the log (--from-log: to now, or to a point in time into OUT), or, as the original's rebuild did, by rescanning the volumes " +
      '(--scan, the default when --volumes is given; what it finds is recorded as events, and it never removes a key).',
    flags: rebuildFlags,
    run: (flags) => rebuildCommand(flags),
  }),
  rebalance: command({
    usage: 'mkv rebalance --db DIR --volumes NEW,... [--replicas 3 --subvolumes 10] [--dry-run]',
    description: 'Moves every key to the volumes placement gives it for a new volume set (copies checked by size and md5).',
    flags: rebalanceFlags,
    run: (flags) => rebalanceCommand(flags),
  }),
  verify: command({
    usage: 'mkv verify --db DIR [--deep] [--repair]',
    description: 'Scrubs every replica (present, right size; --deep: right md5) and with --repair rewrites bad ones from a good copy.',
    flags: verifyFlags,
    run: (flags) => verifyCommand(flags),
  }),
  status: command({
    usage: 'mkv status [--admin http://127.0.0.1:3100] [--access-key NAME --secret-file FILE]',
    description:
      "Shows a running master's cluster: volumes up or down, keys by state, the log, request rates, the last events (its admin port's status page).",
    flags: statusFlags,
    run: (flags) => statusCommand(flags),
  }),
  history: command({
    usage: 'mkv history --db DIR KEY',
    description: 'Prints every event of a key, oldest first: seq, time, type, volumes, size, md5, and who caused it.',
    flags: historyFlags,
    run: (flags, positional) => historyCommand(flags, positional),
  }),
  audit: command({
    usage: 'mkv audit (--db DIR | --log nats://...) [--since TIME] [--until TIME] [--who ACCESS_KEY] [--prefix P] [--change TYPE,...]',
    description:
      'Prints the events of the log that match, as JSON lines, straight from the log: who (the access key, with --credentials) changed what, when, from where.',
    flags: auditFlags,
    run: (flags) => auditCommand(flags),
  }),
  log: command({
    usage:
      'mkv log dump (--db DIR | --log nats://...) [--from-seq N] [--limit N]\n       mkv log verify --db DIR\n       mkv log compact --db DIR --before TIME\n' +
      '       mkv log export (--db DIR | --log nats://...) --into NEWDIR\n       mkv log import --db DIR --log nats://host:port[/STREAM]',
    description:
      'Dumps the event log as JSON lines, verifies every block (CRC, sync markers, dense seq), compacts it into a snapshot, exports it (from DB/log or a stream) as standard Avro container segments, or imports DB/log into a JetStream stream.',
    flags: logFlags,
    run: (flags, positional) => logCommand(flags, positional),
  }),
  gc: command({
    usage: 'mkv gc --db DIR [--unlinked-before TIME] [--pending-older-than 1h] [--dry-run]',
    description: 'Hard-deletes keys unlinked before TIME and cleans up writes that never committed (both recorded as events).',
    flags: gcFlags,
    run: (flags) => gcCommand(flags),
  }),
  uploads: command({
    usage: 'mkv uploads --db DIR [--abort-older-than 24h] [--dry-run]',
    description: 'Lists the S3 multipart uploads not completed, and aborts the abandoned ones.',
    flags: uploadsFlags,
    run: (flags) => uploadsCommand(flags),
  }),
  restore: command({
    usage: 'mkv restore --db DIR --unlinked-since TIME [--dry-run]',
    description: 'Undoes every UNLINK made since TIME (the blobs are still on the volumes), as LINK does for one key.',
    flags: restoreFlags,
    run: (flags) => restoreCommand(flags),
  }),
};

function mainHelp(): string {
  const lines = ['usage: mkv COMMAND [flags]', '', 'commands:'];
  for (const [name, command] of Object.entries(commands)) lines.push(`  ${name.padEnd(8)} ${command.description}`);
  lines.push('', 'mkv COMMAND --help shows the flags of a command; mkv --version, the version.');
  return lines.join('\n') + '\n';
}

const wantsHelp = (argv: readonly string[]) => argv.some((arg) => arg === '--help' || arg === '-help' || arg === '-h');

/**
 * A password or token in a URL (--log nats://user:password@host) shows in ps while the command
 * runs: write the command line over with it as *** (on Linux, process.title takes argv's memory).
 */
function hideCredentials(argv: string[]): void {
  const shown = argv.map((arg) => arg.replace(/[A-Za-z][A-Za-z0-9+.-]*:\/\/.*@.*$/s, (url) => redactNatsUrl(url)));
  if (shown.some((arg, i) => arg !== argv[i])) process.title = [...process.argv.slice(0, 2), ...shown].join(' ');
}

async function main(argv: string[]): Promise<void> {
  hideCredentials(argv);
  if (argv.length === 1 && ['--version', '-version', 'version'].includes(argv[0]!)) {
    process.stdout.write(`${mkvVersion()}\n`);
    return;
  }
  // The command may come after flags, as in the original's README: mkv -volumes ... -db DIR server.
  const { name, rest } = findCommand(
    argv,
    Object.values(commands).map((command) => command.flags),
  );
  if (name === undefined || name === 'help') {
    if (name === undefined && argv.length > 0 && !wantsHelp(argv)) throw new UsageError(`no command given\n\n${mainHelp()}`);
    process.stdout.write(mainHelp());
    return;
  }
  const command = commands[name];
  if (!command) throw new UsageError(`unknown command ${JSON.stringify(name)}\n\n${mainHelp()}`);
  if (wantsHelp(rest)) {
    process.stdout.write(formatHelp(command.usage, command.description, withOriginalFlags(command.flags)));
    return;
  }
  await command.run(rest);
}

logProcessFailures();

/** What the system said no to, in words: errno's name, for an operator. */
const SYSTEM_ERRORS: Record<string, string> = {
  EADDRINUSE: 'already in use (another mkv, or another program, listens there): choose another port',
  EADDRNOTAVAIL: 'not an address of this machine',
  EACCES: 'permission denied',
  EPERM: 'not permitted',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'is a directory',
  EEXIST: 'a file is in the way (a directory was wanted)',
  EROFS: 'on a read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'over the disk quota',
  EMFILE: 'too many open files (raise ulimit -n)',
};

/**
 * A failure the system reported (a port in use, a directory that cannot be made) as one line
 * naming what and where; undefined for anything else, which is a bug and keeps its stack.
 */
function systemFailure(error: unknown): string | undefined {
  const { code, syscall, path, address, port } = error as NodeJS.ErrnoException & { address?: string; port?: number };
  if (typeof code !== 'string' || !(code in SYSTEM_ERRORS) || typeof syscall !== 'string') return undefined;
  const where = path ?? (port !== undefined ? `${address && address !== '::' ? `${address}:` : 'port '}${port}` : undefined);
  const what = syscall === 'listen' || syscall === 'bind' ? 'cannot listen on' : `cannot ${syscall}`;
  return `${what}${where ? ` ${where}` : ''}: ${SYSTEM_ERRORS[code]}`;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`mkv: ${error.message}\n`);
    process.exit(2);
  }
  const said = error instanceof MkvError ? `${error.code}: ${error.message}` : systemFailure(error);
  process.stderr.write(`mkv: ${said ?? (error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
