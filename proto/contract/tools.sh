# shellcheck shell=bash
# Sourced by proto/contract/check.sh and docs/build.sh: installs the checkers
# pinned in proto/contract/package.json into ~/.cache/shequ-contract-tools
# (once; again when package.json changes) and sets $tools and $buf.
tools=${SHEQU_CONTRACT_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/shequ-contract-tools}
if [ ! -x "$tools/node_modules/.bin/buf" ] || ! cmp -s proto/contract/package.json "$tools/package.json"; then
  echo "installing the contract tools into $tools"
  mkdir -p "$tools"
  cp proto/contract/package.json "$tools/package.json"
  (cd "$tools" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
# shellcheck disable=SC2034 # used by the scripts that source this one
buf=$tools/node_modules/.bin/buf
