#!/usr/bin/env bash
# The API against its own OpenAPI document: schemathesis generates requests for every
# operation from /api/openapi.json and fails on any answer the document does not describe
# (status code, content type, body schema) and on any server error.
#
#   ci/api-conformance.sh [MAX_EXAMPLES]
#
# TENURE_BIN names the binary (default target/debug/tenure); SCHEMATHESIS the schemathesis
# command (default: installed into .venv-ci from PyPI on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

examples="${1:-25}"
bin="${TENURE_BIN:-target/debug/tenure}"
if [ -z "${SCHEMATHESIS:-}" ]; then
  if [ ! -x .venv-ci/bin/schemathesis ]; then
    python3 -m venv .venv-ci
    .venv-ci/bin/pip install -q 'schemathesis>=4,<5'
  fi
  SCHEMATHESIS=.venv-ci/bin/schemathesis
fi

work="$(mktemp -d)"
port="${TENURE_CONFORMANCE_PORT:-18191}"
export DATABASE_URL="sqlite://$work/tenure.db?mode=rwc"
cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" demo --customers 200 >/dev/null 2>&1
token="$("$bin" token create --name conformance --role admin | tail -n1)"
RUST_LOG=warn "$bin" serve --addr "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 50); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.2
done

# Revoking tokens comes last, on its own: fuzzed ids would revoke the token the rest uses.
conform() {
  "$SCHEMATHESIS" run "http://127.0.0.1:$port/api/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases "${PHASES:-examples,coverage,fuzzing}" \
    --max-examples "$examples" \
    --workers 2 \
    --seed 1 \
    --suppress-health-check all \
    --no-color "$@"
}
status=0
conform --exclude-path '/api/v1/tokens/{id}' || status=$?
conform --include-path '/api/v1/tokens/{id}' || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server log (last 40 lines) ---"
  tail -n 40 "$work/server.log"
fi
exit "$status"
