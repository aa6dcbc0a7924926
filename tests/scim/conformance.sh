#!/usr/bin/env bash
# Starts `keycard serve` with one SCIM source on a scratch SQLite journal (no Admin API
# credential: dry run) and runs scim2-tester against it. Fails on any check scim2-tester
# reports as an error (a violated MUST of RFC 7643/7644).
#
# Usage: tests/scim/conformance.sh <keycard binary> <python with tests/scim/requirements.txt>
set -euo pipefail
cd "$(dirname "$0")/../.."

bin="$1"
python="$2"
scratch="$(mktemp -d)"
port="$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
token="scim-conformance-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

cat > "$scratch/keycard.toml" <<TOML
[server]
listen = "127.0.0.1:$port"

[journal]
url = "sqlite://$scratch/journal.db"

[[sources]]
name = "idp"
kind = "scim"
token_env = "KEYCARD_SCIM_CONFORMANCE_TOKEN"

[default]
org_role = "user"
TOML

KEYCARD_SCIM_CONFORMANCE_TOKEN="$token" "$bin" serve --config "$scratch/keycard.toml" \
  >"$scratch/serve.log" 2>&1 &
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

if ! "$python" tests/scim/run_scim2_tester.py "http://127.0.0.1:$port/scim/v2/idp" "$token"; then
  echo "scim2-tester reported failures; server log:" >&2
  tail -n 50 "$scratch/serve.log" >&2
  exit 1
fi
