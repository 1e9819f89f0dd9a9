#!/usr/bin/env bash
# `make run`: the whole system on this machine. Builds the binaries, starts a NATS
# server with JetStream of its own (port 14222, data under $SHEQU_DATA_DIR/nats,
# so it does not collide with a NATS already running) and each service on SQLite
# under $SHEQU_DATA_DIR, waits until each listens, and stops everything on Ctrl-C.
# A second run finds the data of the first.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
data=${SHEQU_DATA_DIR:-$root/data}
nats_port=${SHEQU_LOCAL_NATS_PORT:-14222}
logs=$data/logs

cd "$root"
cargo build --bins --quiet
mkdir -p "$data/nats" "$logs"

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping…"
  # Services first (they flush their outboxes), NATS last.
  for (( i=${#pids[@]}-1; i>=0; i-- )); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  echo "stopped; data kept in $data"
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

wait_for_port() { # name port pid
  for _ in $(seq 1 100); do
    if ! kill -0 "$3" 2>/dev/null; then
      echo "$1 exited; see $logs/$1.log" >&2
      tail -n 20 "$logs/$1.log" >&2 || true
      exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not start listening on port $2; see $logs/$1.log" >&2
  exit 1
}

nats-server -js -a 127.0.0.1 -p "$nats_port" -sd "$data/nats" >"$logs/nats.log" 2>&1 &
pids+=($!)
wait_for_port nats "$nats_port" "${pids[-1]}"

export SHEQU_NATS_URL=nats://127.0.0.1:$nats_port
export SHEQU_DATA_DIR=$data
unset SHEQU_DATABASE_URL SHEQU_GRPC_ADDR

start_service() { # name port
  "target/debug/$1" >"$logs/$1.log" 2>&1 &
  pids+=($!)
  wait_for_port "$1" "$2" "${pids[-1]}"
}
export SHEQU_COMPLAINTS_URL=http://127.0.0.1:50051
export SHEQU_ALLIANCE_URL=http://127.0.0.1:50052
start_service merchant-alliance 50052
start_service complaints 50051
start_service pensioner-care 50053

cat <<MSG
shequ is running (Ctrl-C stops it):
  NATS (JetStream)    nats://127.0.0.1:$nats_port                                       data $data/nats
  merchant-alliance   gRPC 127.0.0.1:50052   admin http://127.0.0.1:9102/metrics   db $data/merchant-alliance.db
  complaints          gRPC 127.0.0.1:50051   admin http://127.0.0.1:9101/metrics   db $data/complaints.db
  pensioner-care      gRPC 127.0.0.1:50053   admin http://127.0.0.1:9103/metrics   db $data/pensioner-care.db
logs: $logs/
MSG
# Runs until Ctrl-C, or until any process exits on its own (then all stop).
wait -n "${pids[@]}" || true
echo "a process exited on its own; see $logs/" >&2
