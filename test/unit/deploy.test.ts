// The deployment files: docker-compose.yml validated by docker-compose itself, and wired to the
// same nginx template the volume tests run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../helpers/cluster.js';

function composeSkipReason(): string | false {
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return false;
  if (process.env.CI) throw new Error('CI must install docker-compose (see .ci/run)');
  return 'docker-compose is not installed (apt-get install docker-compose)';
}

test('docker-compose.yml is valid and runs a master and three volumes on nginx/volume.conf.template', { skip: composeSkipReason() }, () => {
  const result = spawnSync('docker-compose', ['-f', join(repoRoot, 'docker-compose.yml'), 'config'], { encoding: 'utf8', cwd: repoRoot });
  assert.equal(result.status, 0, result.stderr);
  const config = result.stdout;
  for (const service of ['master', 'volume1', 'volume2', 'volume3']) assert.match(config, new RegExp(`^  ${service}:$`, 'm'));
  assert.equal(config.match(/nginx\/volume\.conf\.template/g)?.length, 3, 'each volume renders the project template');
  assert.match(config, /volume1:80,volume2:80,volume3:80/);
  assert.match(config, /restart: unless-stopped/);
  assert.match(config, /healthcheck:/);
  assert.equal(config.match(/MKV_VOLUME_SECRET/g)?.length, 4, 'the master and each volume take the volume secret');
});

test(
  'docker-compose.yml with a volume secret in the environment passes it to the master and every volume',
  { skip: composeSkipReason() },
  () => {
    const result = spawnSync('docker-compose', ['-f', join(repoRoot, 'docker-compose.yml'), 'config'], {
      encoding: 'utf8',
      cwd: repoRoot,
      env: { ...process.env, MKV_VOLUME_SECRET: 'abcdef0123456789abcdef' },
    });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.match(/MKV_VOLUME_SECRET: abcdef0123456789abcdef/g)?.length, 4);
  },
);

test('the Dockerfile builds in two stages and runs as a non-root user on a data volume', () => {
  const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
  assert.equal(dockerfile.match(/^FROM /gm)?.length, 2);
  assert.match(dockerfile, /npm ci --omit=dev/);
  assert.match(dockerfile, /^USER node$/m);
  assert.match(dockerfile, /^VOLUME \/data$/m);
  assert.ok(existsSync(join(repoRoot, 'nginx/volume.conf.template')));
  const template = readFileSync(join(repoRoot, 'nginx/volume.conf.template'), 'utf8');
  for (const directive of [
    'dav_methods PUT DELETE;',
    'create_full_put_path on;',
    'autoindex_format json;',
    'client_max_body_size 0;',
    'access_log off;',
    'sendfile on;',
    'secure_link $mkv_link;',
    'log_not_found off;',
    'location = /health {',
  ]) {
    assert.ok(template.includes(directive), directive);
  }
});
