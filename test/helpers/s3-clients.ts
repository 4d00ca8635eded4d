// Real S3 clients in tests: whether one is installed, and the environment it runs in.
import { spawnSync } from 'node:child_process';

/** Skipped where a tool is missing, but never in CI, whose .ci/run installs them all. */
export function missingTool(command: string, versionArgs: string[], install: string): string | false {
  if (spawnSync(command, versionArgs, { stdio: 'ignore' }).status === 0) return false;
  if (process.env.CI) throw new Error(`CI must install ${command} (see .ci/run)`);
  return `${command} is not installed (${install})`;
}

/** The environment of a client: these credentials and nothing of the caller's AWS setup. */
export function clientEnv(accessKey: string, secretKey: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: accessKey,
    AWS_SECRET_ACCESS_KEY: secretKey,
    AWS_DEFAULT_REGION: 'us-east-1',
    ...extra,
  };
  for (const name of ['AWS_CA_BUNDLE', 'AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL']) delete env[name];
  return env;
}
