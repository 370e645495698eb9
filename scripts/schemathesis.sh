#!/usr/bin/env bash
# Fuzzes the API against its own OpenAPI document with schemathesis: starts `serve --sandbox` in a
# throwaway directory (SQLite, keys and the in-memory Okta sandbox all live there, so destructive
# operations are fine), waits for /readyz, and runs every operation with the checks
# not_a_server_error, status_code_conformance, response_schema_conformance and
# content_type_conformance, authenticated with the bootstrap token (it holds every scope).
# Exits non-zero on any failure.
#
# Usage: scripts/schemathesis.sh [path/to/ssf-transmitter]
#   Without an argument the binary is built with `cargo build` (honouring CARGO_TARGET_DIR).
# Environment:
#   SCHEMATHESIS_VENV      virtualenv to use or create (default: a cache dir, see below)
#   SCHEMATHESIS_EXAMPLES  examples per operation (default 40)
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: this version installs from PyPI on Python 3.11 and runs offline (telemetry off below).
SCHEMATHESIS_VERSION=3.39.16
HYPOTHESIS_VERSION=6.131.0
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-40}"
VENV="${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ssf-transmitter-ci/schemathesis-venv}"

installed() {
  "$VENV/bin/python" - "$SCHEMATHESIS_VERSION" "$HYPOTHESIS_VERSION" 2>/dev/null <<'EOF'
import sys
from importlib.metadata import version
sys.exit(0 if (version("schemathesis"), version("hypothesis")) == tuple(sys.argv[1:3]) else 1)
EOF
}
if ! installed; then
  echo "schemathesis: installing schemathesis==$SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  # Hypothesis pinned too: 3.39.16 breaks with later Hypothesis releases ('many' object has no
  # attribute 'more').
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION" "hypothesis==$HYPOTHESIS_VERSION"
fi

if [ $# -ge 1 ]; then
  BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
else
  cargo build --quiet --locked
  BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/ssf-transmitter"
fi

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# A token only this run knows; the bootstrap token holds every scope.
TOKEN="schemathesis-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# Port 0 for both listeners: the bound address is read from the JSON log line "serving".
(
  cd "$WORK"
  exec env -u SSF_TEST_DATABASE_URL -u SSF_TEST_BACKEND SSF_ADMIN_TOKEN="$TOKEN" SSF_LISTEN=127.0.0.1:0 SSF_SANDBOX__LISTEN=127.0.0.1:0 \
    SSF_LOG_FORMAT=json SSF_LOG_FILTER=warn,ssf_transmitter::app=info \
    "$BIN" serve --sandbox
) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

BASE=""
for _ in $(seq 1 300); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "schemathesis: the server exited during start-up:" >&2
    cat "$WORK/server.log" >&2
    exit 1
  fi
  BASE="$(python3 - "$WORK/server.log" <<'EOF'
import json, sys
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    if rec.get("message") == "serving" and "issuer" in rec:
        print(rec["issuer"])
        break
EOF
)"
  if [ -n "$BASE" ] && python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/readyz", timeout=2)' "$BASE" 2>/dev/null; then
    break
  fi
  BASE=""
  sleep 0.2
done
if [ -z "$BASE" ]; then
  echo "schemathesis: the server did not become ready:" >&2
  cat "$WORK/server.log" >&2
  exit 1
fi
echo "schemathesis: fuzzing $BASE ($EXAMPLES examples per operation)"

status=0
(
  cd "$WORK"
  SCHEMATHESIS_TELEMETRY=false "$VENV/bin/schemathesis" run "$BASE/openapi.json" \
    --base-url "$BASE" \
    --header "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
    --hypothesis-max-examples "$EXAMPLES" \
    --hypothesis-derandomize \
    --hypothesis-suppress-health-check all \
    --request-timeout 60000 \
    --stateful none \
    --experimental openapi-3.1 \
    --schemathesis-io-telemetry false \
    --no-color
) || status=$?

if [ "$status" -ne 0 ]; then
  echo "schemathesis: failures (exit $status); server log warnings and errors follow" >&2
  grep -E '"level":"(WARN|ERROR)"' "$WORK/server.log" | tail -50 >&2 || true
fi
exit "$status"
