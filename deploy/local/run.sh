#!/usr/bin/env bash
# `make run`: the whole system on this machine. Builds the binaries, starts a NATS
# server with JetStream of its own (port 14222, data under $SHEQU_DATA_DIR/nats,
# so it does not collide with a NATS already running) and each service on SQLite
# under $SHEQU_DATA_DIR, waits until each one's admin /readyz answers 200, and
# stops everything on Ctrl-C. A second run finds the data of the first, and
# appends to the logs of the first (data/logs/<name>.log, moved to .1 past 10 MiB).
# The binaries are where cargo builds them (CARGO_TARGET_DIR is honoured).
#
# Two settings differ from a service's defaults so that `make demo`
# (deploy/local/demo.sh) can show the time limits and the visit policy at work
# within minutes rather than hours:
# - complaints reads deploy/local/time-limits.json: the district's standard table
#   for every priority, and one override, municipal_facilities × urgent with a
#   1-minute response and 2-minute resolution limit, so an unanswered urgent
#   municipal-facilities complaint (a missing manhole cover) is escalated about a
#   minute after it comes in. That pair is the one the README tour never uses, so
#   the tour's due times are the standard ones. Checked every 5 s
#   (SHEQU_SWEEP_INTERVAL_SECS).
# - pensioner-care looks for overdue visits every 5 s instead of every minute.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
data=${SHEQU_DATA_DIR:-$root/data}
nats_port=${SHEQU_LOCAL_NATS_PORT:-14222}
logs=$data/logs
time_limits=$root/deploy/local/time-limits.json
ready_timeout_secs=30

cd "$root"
# shellcheck source=deploy/local/common.sh
. deploy/local/common.sh

# Something already answering on one of the ports (a `make run` in another
# terminal, say) would pass for the services started here: refuse to start.
for port in "$nats_port" 50052 9102 50051 9101 50053 9103; do
  if port_open "$port"; then
    echo "error: port $port is in use on 127.0.0.1: is shequ already running (another \`make run\`)? \`ss -ltnp 'sport = :$port'\` shows what holds it" >&2
    exit 1
  fi
done

cargo build --bins --quiet
bin=$(debug_bin_dir) || { echo "error: cargo metadata did not name the target directory" >&2; exit 1; }
mkdir -p "$data/nats" "$logs"

pids=() names=()
stop() {
  trap - INT TERM HUP EXIT
  echo
  echo "stopping…"
  # Services first (they flush their outboxes), NATS last.
  for (( i=${#pids[@]}-1; i>=0; i-- )); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  echo "stopped; data kept in $data"
}
trap 'stop; exit 0' INT TERM HUP
trap stop EXIT

fail() { # name message
  local log=$logs/$1.log
  if grep -q '^Error: ' "$log" 2>/dev/null; then
    # The service's own error, without the backtrace RUST_BACKTRACE may add.
    echo "error: $1 $2; from $log:" >&2
    sed -n '/^Error: /,/^Stack backtrace:/p' "$log" | grep -v '^Stack backtrace:' | head -n 20 >&2
  else
    echo "error: $1 $2; the end of $log:" >&2
    tail -n 20 "$log" >&2 || true
  fi
  exit 1
}

# Waits until `name` listens on `port` and, given an admin port, until its
# /readyz answers 200; fails with the log's tail when the process exits or
# ready_timeout_secs pass.
wait_ready() { # name pid port [admin_port]
  local deadline=$((SECONDS + ready_timeout_secs))
  while :; do
    if ! kill -0 "$2" 2>/dev/null; then
      fail "$1" "exited while starting"
    fi
    if port_open "$3" && { [ -z "${4:-}" ] || [ "$(http_status "$4" /readyz)" = 200 ]; } &&
      kill -0 "$2" 2>/dev/null; then
      return 0
    fi
    if (( SECONDS >= deadline )); then
      if [ -n "${4:-}" ]; then
        fail "$1" "was not ready within ${ready_timeout_secs}s (port $3, http://127.0.0.1:$4/readyz answers '$(http_status "$4" /readyz)')"
      fi
      fail "$1" "did not listen on port $3 within ${ready_timeout_secs}s"
    fi
    sleep 0.2
  done
}

# NATS runs in a session of its own, so Ctrl-C (which the terminal sends to the
# services too) stops the services first, flushing their outboxes to NATS, and
# NATS last.
keep_log "$logs/nats.log"
setsid nats-server -js -a 127.0.0.1 -p "$nats_port" -sd "$data/nats" >>"$logs/nats.log" 2>&1 &
pids+=($!) names+=(nats)
wait_ready nats "${pids[-1]}" "$nats_port"

export SHEQU_NATS_URL=nats://127.0.0.1:$nats_port
export SHEQU_DATA_DIR=$data
unset SHEQU_DATABASE_URL SHEQU_AUTH_DISABLED
# Bearer tokens of this machine's own, made on the first run and kept with the
# data: one per role, the services holding only their SHA-256 hashes.
auth=$data/auth
ensure_local_tokens "$auth"
export SHEQU_AUTH_TOKENS_FILE=$auth/tokens.json
export SHEQU_SERVICE_TOKEN_FILE=$auth/service.token
export SHEQU_COMPLAINTS_URL=http://127.0.0.1:50051
export SHEQU_ALLIANCE_URL=http://127.0.0.1:50052

start_service() { # name grpc_port admin_port [VAR=value…]
  local name=$1 grpc=$2 admin=$3
  shift 3
  keep_log "$logs/$name.log"
  env SHEQU_GRPC_ADDR="127.0.0.1:$grpc" SHEQU_ADMIN_ADDR="127.0.0.1:$admin" "$@" \
    "$bin/$name" >>"$logs/$name.log" 2>&1 &
  pids+=($!) names+=("$name")
  wait_ready "$name" "${pids[-1]}" "$grpc" "$admin"
}
start_service merchant-alliance 50052 9102
start_service complaints 50051 9101 \
  SHEQU_TIME_LIMITS_FILE="$time_limits" SHEQU_SWEEP_INTERVAL_SECS=5
start_service pensioner-care 50053 9103 SHEQU_SWEEP_INTERVAL_SECS=5

cat <<MSG
shequ is running and ready (Ctrl-C stops it):
  NATS (JetStream)    nats://127.0.0.1:$nats_port                                       data $data/nats
  merchant-alliance   gRPC 127.0.0.1:50052   admin http://127.0.0.1:9102/metrics   db $data/merchant-alliance.db
  complaints          gRPC 127.0.0.1:50051   admin http://127.0.0.1:9101/metrics   db $data/complaints.db
  pensioner-care      gRPC 127.0.0.1:50053   admin http://127.0.0.1:9103/metrics   db $data/pensioner-care.db
time limits: deploy/local/time-limits.json (standard, but municipal_facilities × urgent: 1 min / 2 min)
logs: $logs/ (kept across runs)
tokens: $auth/{operator,staff,resident_app,service}.token (only their hashes in $auth/tokens.json)

In another terminal, paste these lines; then try \`shequctl complaints list\`,
\`shequctl events tail\`, or \`make demo\`:

  export PATH="$bin:\$PATH"
  export SHEQU_TOKEN_FILE="$auth/operator.token"
  export SHEQU_NATS_URL="nats://127.0.0.1:$nats_port"

MSG
# Runs until Ctrl-C, or until any process exits (then all stop).
exited=
wait -n -p exited "${pids[@]}" || true
for i in "${!pids[@]}"; do
  if [ "${pids[i]}" = "$exited" ]; then
    echo "${names[i]} exited; see $logs/${names[i]}.log" >&2
  fi
done
