#!/usr/bin/env bash
# demo.sh: the whole neo-events pipeline on the local stack, in under a
# minute. `make demo` runs it after scripts/devstack.sh has exported
# NEO_EVENTS_POSTGRES_URL (database neo_events_demo) and NEO_EVENTS_REDIS_URL.
#
#   1. build bin/worker and bin/eventsctl
#   2. eventsctl demo setup --reset: fresh schemas, tenants acme and globex,
#      the demo actions (webhook, flaky, broken) in admin and both tenants
#   3. two workers (consumers demo-1, demo-2) in the background
#   4. eventsctl demo run: publish, wait, summarize; exits 1 if an event was
#      lost or a webhook signature was invalid
#
# It stops only the worker processes it started (by PID), on success, on
# error and on Ctrl-C. Re-running it is safe: setup --reset starts over.
set -euo pipefail

cd "$(dirname "$0")/.."
EVENTS=${DEMO_EVENTS:-3000}
TIMEOUT=${DEMO_TIMEOUT:-45s}
: "${NEO_EVENTS_POSTGRES_URL:?run through make demo, or eval \"\$(scripts/devstack.sh)\" first}"
: "${NEO_EVENTS_REDIS_URL:?run through make demo, or eval \"\$(scripts/devstack.sh)\" first}"

# Every binary below reads these (DESIGN §4).
export NEO_EVENTS_STREAMS_PREFIX=demo
export NEO_EVENTS_WORKER_GROUP=demo
export NEO_EVENTS_LOG_FORMAT=console
export NEO_EVENTS_LOG_LEVEL=warn
# Short intervals, so the demo's retries and shutdown take seconds.
export NEO_EVENTS_WORKER_BLOCK=500ms
export NEO_EVENTS_WORKER_SHUTDOWN_TIMEOUT=5s

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'demo: ERROR: %s\n' "$*" >&2; exit 1; }

# One fixed place, overwritten by the next run, so logs do not pile up.
LOGDIR=${DEMO_LOGDIR:-${TMPDIR:-/tmp}/neo-events-demo-logs}
mkdir -p "$LOGDIR"
NAMES=()
PIDS=()

stop_workers() {
  local i
  for i in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
  done
  for i in "${!PIDS[@]}"; do
    if wait "${PIDS[$i]}" 2>/dev/null; then
      echo "worker ${NAMES[$i]} stopped cleanly"
    else
      echo "worker ${NAMES[$i]} exited with status $? (log: $LOGDIR/${NAMES[$i]}.log)"
    fi
  done
  PIDS=()
}

on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  if [ ${#PIDS[@]} -gt 0 ]; then
    say "stopping the workers"
    stop_workers
  fi
  if [ "$rc" -ne 0 ]; then
    for n in "${NAMES[@]}"; do
      if [ -s "$LOGDIR/$n.log" ]; then
        echo "--- last lines of worker $n's log ($LOGDIR/$n.log) ---"
        tail -n 15 "$LOGDIR/$n.log"
      fi
    done
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a loopback port nothing listens on (racy, as every such
# check is; the worker fails loudly if someone takes it first).
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(( 20000 + RANDOM % 20000 ))
    if ! port_open "$p"; then echo "$p"; return 0; fi
  done
  die "no free loopback port found"
}

start_worker() {
  local name=$1 port
  port=$(free_port)
  bin/worker --demo-handlers --worker.consumer "$name" --http.addr "127.0.0.1:$port" \
    --log.format console --log.level warn >"$LOGDIR/$name.log" 2>&1 &
  PIDS+=($!)
  NAMES+=("$name")
  WORKER_PORTS+=("$port")
}

wait_ready() {
  local i
  for i in "${!PIDS[@]}"; do
    for _ in $(seq 1 100); do
      kill -0 "${PIDS[$i]}" 2>/dev/null || die "worker ${NAMES[$i]} exited early: see its log below"
      port_open "${WORKER_PORTS[$i]}" && break
      sleep 0.1
    done
    port_open "${WORKER_PORTS[$i]}" || die "worker ${NAMES[$i]} did not open 127.0.0.1:${WORKER_PORTS[$i]} within 10s"
    echo "worker ${NAMES[$i]} (pid ${PIDS[$i]}) up, metrics on http://127.0.0.1:${WORKER_PORTS[$i]}/metrics"
  done
}

say "building bin/worker and bin/eventsctl"
mkdir -p bin
go build -o bin/worker ./cmd/worker
go build -o bin/eventsctl ./cmd/eventsctl

say "eventsctl demo setup --reset"
bin/eventsctl demo setup --reset

say "starting two workers (group demo), logs in $LOGDIR"
WORKER_PORTS=()
start_worker demo-1
start_worker demo-2
wait_ready

say "eventsctl demo run --events $EVENTS"
set +e
bin/eventsctl demo run --events "$EVENTS" --timeout "$TIMEOUT"
rc=$?
set -e
for i in "${!PIDS[@]}"; do
  kill -0 "${PIDS[$i]}" 2>/dev/null || { echo "demo: worker ${NAMES[$i]} exited during the run: see its log below" >&2; rc=1; }
done
say "stopping the workers"
stop_workers
echo "worker logs: $LOGDIR"
[ "$rc" -eq 0 ] || die "the demo found a problem (exit $rc): see above"
say "demo passed"
