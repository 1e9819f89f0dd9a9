# shellcheck shell=bash
# Shared by run.sh and demo.sh (sourced, not run): plain-bash probes of the local
# ports through /dev/tcp, so neither needs curl.

# port_open PORT: something accepts connections on 127.0.0.1:PORT.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# http_status PORT PATH: prints the HTTP status code of GET http://127.0.0.1:PORT/PATH
# (nothing when the port is closed or nothing answers within 2 s).
http_status() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3
    read -r -t 2 _ code _ <&3 || exit 0
    printf '%s' "$code"
  ) 2>/dev/null || true
}

# debug_bin_dir: where `cargo build` puts the debug binaries: the target
# directory cargo reports (CARGO_TARGET_DIR, a .cargo/config's build.target-dir,
# or target/), not an assumed target/debug.
debug_bin_dir() {
  local dir
  dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  [ -n "$dir" ] || return 1
  printf '%s/debug' "$dir"
}

# keep_log FILE: appends the next run to FILE after a line naming the run; a
# file over 10 MiB is moved to FILE.1 first (the one before it dropped).
keep_log() {
  local log=$1
  if [ -f "$log" ] && [ "$(wc -c <"$log")" -gt $((10 * 1024 * 1024)) ]; then
    mv -f "$log" "$log.1"
  fi
  printf '=== %s: started by make run\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$log"
}

# The services of `make run`: name, gRPC port, admin port.
# shellcheck disable=SC2034 # used by demo.sh
SHEQU_LOCAL_SERVICES=(
  "merchant-alliance 50052 9102"
  "complaints 50051 9101"
  "pensioner-care 50053 9103"
)

# ensure_local_tokens DIR: a random bearer token per role in DIR/<role>.token
# (readable by this user only) and DIR/tokens.json with their SHA-256 hashes,
# the services' SHEQU_AUTH_TOKENS_FILE; kept if DIR/tokens.json exists.
ensure_local_tokens() {
  local dir=$1 role token hash entries=()
  [ -f "$dir/tokens.json" ] && return 0
  mkdir -p "$dir"
  chmod 700 "$dir"
  for role in operator staff resident_app service; do
    token=$(head -c 32 /dev/urandom | base64 | tr -d '=+/\n')
    (umask 077 && printf '%s\n' "$token" >"$dir/$role.token")
    hash=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
    entries+=("{\"name\": \"local-$role\", \"role\": \"$role\", \"sha256\": \"$hash\"}")
  done
  local IFS=,
  printf '{"tokens": [%s]}\n' "${entries[*]}" >"$dir/tokens.json"
}
