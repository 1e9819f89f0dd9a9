#!/usr/bin/env bash
# `make docs`: the event catalog (one page per event type: what it means, its
# channel, stream and producer, headers, an example and its schema) and the
# gRPC API reference (every service, method, message and enum with its
# comments), as static HTML in build/docs (or $1), from the committed
# contract. Offline once the contract tools are installed (proto/contract).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${1:-build/docs}
# shellcheck source=proto/contract/tools.sh
. proto/contract/tools.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$buf" build proto --exclude-path proto/contract -o "$work/image.json"
python3 docs/catalog.py "$out" "$work/image.json"
