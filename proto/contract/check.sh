#!/usr/bin/env bash
# `make contract-check`: the contract against its last release
# (proto/contract/released), with the checkers of proto/contract/package.json
# installed into ~/.cache/shequ-contract-tools (npm):
#   - `buf breaking` on proto/shequ/**/*.proto, after a self-test showing it
#     refuses a field renamed in a copy of the release;
#   - the official AsyncAPI parser on proto/events/asyncapi.yaml: no error, no
#     warning.
# The event schemas are checked against the release by proto/tests/contract.rs
# (`make test`).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

# shellcheck source=proto/contract/tools.sh
. proto/contract/tools.sh
failures=0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r proto/contract/released/shequ "$work/"
sed -i 's/string complaint_id = 1;/string complaint_ident = 1;/' "$work/shequ/complaints/v1/complaints.proto"
if "$buf" breaking "$work" --against proto/contract/released >/dev/null 2>&1; then
  echo "FAIL  buf breaking accepted a renamed field: the check cannot fail"
  failures=$((failures + 1))
else
  echo "PASS  buf breaking refuses a field renamed in a copy of the release ($("$buf" --version))"
fi
if out=$("$buf" breaking proto --exclude-path proto/contract --against proto/contract/released 2>&1); then
  echo "PASS  buf breaking: proto/shequ keeps the released .proto files"
else
  echo "FAIL  buf breaking: a change breaks the released .proto files (make it a new package version, or \`make contract-release\` for a deliberate release):"
  printf '%s\n' "$out" | sed 's/^/      /'
  failures=$((failures + 1))
fi
if out=$(NODE_PATH="$tools/node_modules" node proto/contract/check-asyncapi.cjs proto/events/asyncapi.yaml 2>&1); then
  echo "PASS  @asyncapi/parser: $(tail -n 1 <<<"$out")"
else
  echo "FAIL  @asyncapi/parser:"
  printf '%s\n' "$out" | sed 's/^/      /'
  failures=$((failures + 1))
fi
((failures == 0))
