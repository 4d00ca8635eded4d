#!/usr/bin/env bash
# Runs ceph's s3-tests — the S3 compatibility suite MinIO, Ceph RGW and SeaweedFS are measured by —
# against a local cluster of this repository's build, with --credentials on, on the tests this
# server claims to pass (tools/s3-tests/selection.md says which, and why the rest are left out):
#
#   git clone https://github.com/ceph/s3-tests /path/to/s3-tests     # its public repository
#   npm run build
#   tools/s3-tests/run.sh /path/to/s3-tests [pytest arguments, e.g. -k test_bucket_list_delimiter_basic]
#   tools/s3-tests/run.sh --retain /path/to/s3-tests     # the versioning tests, on a master with --retain 1d
#
# It needs python3 with the suite's modules; on Debian: apt-get install python3-boto3 python3-munch
# python3-gevent python3-isodate python3-lxml python3-pytest python3-tz python3-httplib2 python3-yaml.
# The cluster (three `mkv volume`s and a master, on free loopback ports) lives in a temporary
# directory, removed at the end; its logs stay there while it runs. Exit status: pytest's.
set -euo pipefail
retain=()
if [ "${1:-}" = --retain ]; then
  retain=(--retain 1d)
  shift
fi
if [ $# -lt 1 ] || [ ! -f "$1/s3tests/functional/test_s3.py" ]; then
  echo "usage: $0 [--retain] /path/to/s3-tests [pytest arguments]" >&2
  exit 2
fi
suite=$(cd "$1" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
mkv=(node "$repo/dist/src/cli/main.js")
python=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/mkv-s3-tests.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# The suite's two users (its sample configuration's keys), each with every right.
main_key=0555b35654ad1656d804
main_secret=h7GhxuBLTrlhVUyxSPUKUV8r/2EI4ngqJxD7iBdBYLhwluN30JaT3Q==
alt_key=NOPQRSTUVWXYZABCDEFG
alt_secret=nopqrstuvwxyzabcdefghijklmnabcdefghijklm
printf '%s:%s\n%s:%s\n' "$main_key" "$main_secret" "$alt_key" "$alt_secret" > "$work/credentials"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/volume-secret"

volumes=()
for i in 1 2 3; do
  port=$(free_port)
  "${mkv[@]}" volume --host 127.0.0.1 --port "$port" --dir "$work/volume$i" --volume-secret-file "$work/volume-secret" \
    > "$work/volume$i.log" 2>&1 &
  pids+=($!)
  volumes+=("127.0.0.1:$port")
done
port=$(free_port)
"${mkv[@]}" server --host 127.0.0.1 --port "$port" --db "$work/db" --volumes "$(IFS=,; echo "${volumes[*]}")" \
  "${retain[@]}" --credentials "$work/credentials" --volume-secret-file "$work/volume-secret" > "$work/master.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  grep -q 'listening on' "$work/master.log" && break
  sleep 0.1
done
grep -q 'listening on' "$work/master.log" || { cat "$work/master.log" >&2; exit 1; }

# The suite reads every section of its configuration; the ones for features this server does
# not have (tenants, IAM) get the alt user's keys, and their tests are not selected.
sections=""
for section in "s3 tenant" iam "iam root" "iam alt root"; do
  sections+="[$section]
display_name = unused
user_id = unused
email = unused@example.com
tenant = unused
access_key = $alt_key
secret_key = $alt_secret

"
done
cat > "$work/s3tests.conf" <<CONF
[DEFAULT]
host = 127.0.0.1
port = $port
is_secure = False
ssl_verify = False

[fixtures]
bucket prefix = mkv-{random}-

[s3 main]
display_name = mkv
user_id = mkv
email = main@example.com
api_name = default
access_key = $main_key
secret_key = $main_secret

[s3 alt]
display_name = mkv
user_id = mkv
email = alt@example.com
access_key = $alt_key
secret_key = $alt_secret

$sections
CONF

# The selection: selection.md's rule, as pytest's -m and -k; with --retain, the tests it names for that.
if [ ${#retain[@]} -gt 0 ]; then
  names=$(grep -E '^- retain `' "$here/selection.md" | sed -E 's/^- retain `([^`]+)`.*/\1/' | paste -sd '|' | sed 's/|/ or /g')
  selected=(-k "$names")
else
  markers=$(grep -E '^- marker `' "$here/selection.md" | sed -E 's/^- marker `([^`]+)`.*/\1/' | paste -sd '|' | sed 's/|/ or /g')
  names=$(grep -E '^- name `' "$here/selection.md" | sed -E 's/^- name `([^`]+)`.*/\1/' | paste -sd '|' | sed 's/|/ or /g')
  selected=(-m "not ($markers)" -k "not ($names)")
fi
cd "$suite"
# Signed in Python, as a boto3 from PyPI signs (Debian's botocore would use python3-awscrt when installed).
BOTO_DISABLE_CRT=true S3TEST_CONF="$work/s3tests.conf" "$python" -m pytest s3tests/functional/test_s3.py -p no:cacheprovider -q \
  "${selected[@]}" "$@"
