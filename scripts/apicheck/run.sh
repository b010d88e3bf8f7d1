#!/usr/bin/env bash
# A manual check of the OpenAPI document, outside the module and CI:
#  1. lint it with Redocly (if npx is there),
#  2. generate a Go client from it with ogen,
#  3. start a real node with the demo workload and call every operation
#     through the generated client, which decodes and validates each answer.
# Usage: scripts/apicheck/run.sh   (needs the Go module proxy; npm optional)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'kill "${node:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$root"
ARSENAL_WRITE_OPENAPI="$work/openapi.json" go test -count=1 -run TestOpenAPIDocumentBuilds ./ops/operations/ >/dev/null
if command -v npx >/dev/null; then
  npx --yes @redocly/cli@2.77.0 lint "$work/openapi.json"
fi
go build -o "$work/arsenal" ./cmd/arsenal
cd "$here"
go run github.com/ogen-go/ogen/cmd/ogen@v1.25.0 --target api --package api --clean "$work/openapi.json"
token=apicheck-operator-token-0123456789
echo "$token operator apicheck" > "$work/tokens"
chmod 600 "$work/tokens"
port=${APICHECK_PORT:-47931}
ARSENAL_SECRET=apicheck-secret-0123456789abcdef "$work/arsenal" node --name apicheck@127.0.0.1 --cluster apicheck \
  --node-addr 127.0.0.1:0 --http-addr 127.0.0.1:$port --demo true --tokens-file "$work/tokens" --log-level warn \
  --audit-file "$work/audit.log" > "$work/node.log" 2>&1 &
node=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
go run . "http://127.0.0.1:$port" "$token" apicheck@127.0.0.1
echo "audit lines written at --log-level warn: $(wc -l < "$work/audit.log")"
