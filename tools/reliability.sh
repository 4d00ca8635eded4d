#!/usr/bin/env bash
# The long versions of the reliability suites (npm test runs short ones):
#   kill -9 under load, and a restart at once while the killed master is a zombie; a torn and
#   corrupt log; volume faults (stopped, slow, 500, 503 to everything, disk full, a DELETE that
#   times out and lands later); master faults; hostile input (bounded XML parsing, clients
#   trickling into every body path, floods of connections); races; kill -9 during the tools.
#   Loopback only; bounded rounds; about 5 minutes on 2 cores.
#
#   tools/reliability.sh            # defaults below
#   CRASH_ROUNDS=100 tools/reliability.sh
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build --silent
export MKV_CRASH_ROUNDS=${CRASH_ROUNDS:-25}
export MKV_LOG_DAMAGE_ROUNDS=${LOG_DAMAGE_ROUNDS:-20}
export MKV_RACE_ROUNDS=${RACE_ROUNDS:-200}
export MKV_BAD_CONNECTIONS=${BAD_CONNECTIONS:-10000}
node --test --test-reporter=spec --test-concurrency=1 \
  dist/test/e2e/crash.test.js \
  dist/test/e2e/log-damage.test.js \
  dist/test/integration/volume-faults.test.js \
  dist/test/e2e/master-faults.test.js \
  dist/test/e2e/bad-input.test.js \
  dist/test/unit/s3-xml.test.js \
  dist/test/integration/races.test.js \
  dist/test/e2e/tool-crash.test.js \
  dist/test/e2e/jetstream.test.js
