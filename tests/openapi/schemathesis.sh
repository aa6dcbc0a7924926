#!/usr/bin/env bash
# Starts `keycard serve` on a scratch SQLite journal with a known operator token and one
# webhook source (no Admin API credential: dry run), and runs schemathesis against the
# OpenAPI document it serves (/api/v1/openapi.json): generated requests, valid and not, to
# every documented operation. Fails on any server error (5xx) or any response that does not
# match the document. Bounded in time (--max-time) so it ends by itself.
#
# Usage: tests/openapi/schemathesis.sh <keycard binary> <venv bin directory with schemathesis>
set -euo pipefail
cd "$(dirname "$0")/../.."

bin="$1"
venv_bin="$2"
python="$venv_bin/python"
scratch="$(mktemp -d)"
port="$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
token="schemathesis-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
secret="whsec_$("$python" -c 'import base64,os; print(base64.b64encode(os.urandom(24)).decode())')"

cat > "$scratch/keycard.toml" <<TOML
[server]
listen = "127.0.0.1:$port"

[[server.operators]]
name = "schemathesis"
role = "operator"
token_env = "KEYCARD_SCHEMATHESIS_TOKEN"

[journal]
url = "sqlite://$scratch/journal.db"

[[sources]]
name = "hr"
kind = "keycard"
secret_env = "KEYCARD_SCHEMATHESIS_HR_SECRET"

[default]
org_role = "user"
TOML

KEYCARD_SCHEMATHESIS_TOKEN="$token" KEYCARD_SCHEMATHESIS_HR_SECRET="$secret" \
  "$bin" serve --config "$scratch/keycard.toml" >"$scratch/serve.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT

for _ in $(seq 1 50); do
  if "$python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/readyz')" 2>/dev/null; then
    break
  fi
  sleep 0.2
done

base="http://127.0.0.1:$port"
# Data to read, and the ids of it for the `{id}` parameters (schemathesis.toml).
eval "$("$python" tests/openapi/seed.py "$base" "$secret" "$token")"
export KC_EVENT_ID KC_PERSON_ID KC_ACTION_ID

# Reproducible: a fixed seed, so a failure here fails the same way on the next run.
if ! "$venv_bin/st" --no-color --config-file tests/openapi/schemathesis.toml run "$base/api/v1/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,response_schema_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}" \
  --max-time "${SCHEMATHESIS_MAX_TIME:-60}" \
  --seed "${SCHEMATHESIS_SEED:-13}" \
  --request-timeout 10; then
  echo "schemathesis reported failures; server log:" >&2
  tail -n 50 "$scratch/serve.log" >&2
  exit 1
fi
