// Apache's own Avro readers, to check that the log is standard Avro as any tool reads it:
// Python's avro.datafile (Debian's python3-avro, python3-snappy) and Java's DataFileReader
// (Debian's libavro-java, run as a source file by the JDK). Each reads container files and says
// which records it found, or how it failed; a reader that spins (as Python's does on a tail of
// zeros) is cut off and reported as hanging.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './cluster.js';

export interface AvroRead {
  /** The seq of every record read, in order. */
  seqs: number[];
  /** Why the reader stopped before the end, if it did. */
  error?: string;
}

const READ_TIMEOUT_MS = 60_000;

const PYTHON = [
  'import json, sys',
  'from avro.datafile import DataFileReader',
  'from avro.io import DatumReader',
  'seqs = []',
  'try:',
  '    for path in sys.argv[1:]:',
  '        with open(path, "rb") as f:',
  '            for record in DataFileReader(f, DatumReader()):',
  '                seqs.append(record["seq"])',
  '    print(json.dumps({"seqs": seqs}))',
  'except Exception as error:',
  '    print(json.dumps({"seqs": seqs, "error": type(error).__name__ + ": " + str(error)}))',
].join('\n');

const JAVA_JARS = ['avro', 'jackson-core-asl', 'jackson-mapper-asl', 'snappy-java', 'slf4j-api', 'commons-compress', 'xz', 'paranamer'];

function run(command: string, args: string[]): AvroRead {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: READ_TIMEOUT_MS });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ETIMEDOUT')
    return { seqs: [], error: `hung (no answer in ${READ_TIMEOUT_MS} ms)` };
  if (result.status !== 0) return { seqs: [], error: `exited ${result.status}: ${result.stderr.slice(0, 500)}` };
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as AvroRead;
}

export function readWithPython(paths: string[]): AvroRead {
  return run('/usr/bin/python3', ['-c', PYTHON, ...paths]);
}

export function readWithJava(paths: string[]): AvroRead {
  const classpath = JAVA_JARS.map((jar) => `/usr/share/java/${jar}.jar`).join(':');
  return run('java', ['-cp', classpath, join(repoRoot, 'test/helpers/ReadAvro.java'), ...paths]);
}

/** Skip only where the readers are not installed, never in CI (which installs them). */
export function pythonAvroSkipReason(): string | false {
  if (spawnSync('/usr/bin/python3', ['-c', 'import avro.datafile, snappy'], { stdio: 'ignore' }).status === 0) return false;
  if (process.env.CI) throw new Error('CI must install python3-avro and python3-snappy (see .ci/run)');
  return 'python3-avro and python3-snappy are not installed';
}

export function javaAvroSkipReason(): string | false {
  const jars = JAVA_JARS.every((jar) => existsSync(`/usr/share/java/${jar}.jar`));
  if (jars && spawnSync('java', ['-version'], { stdio: 'ignore' }).status === 0) return false;
  if (process.env.CI) throw new Error('CI must install libavro-java and a JDK (see .ci/run)');
  return "Apache's Java Avro library (libavro-java) or a JDK is not installed";
}
