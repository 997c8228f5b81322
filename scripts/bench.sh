#!/usr/bin/env bash
# bench.sh OUTDIR: the standard performance profile of neo-events (issue 4),
# about a minute and a half on a 2-core machine (two on a slow one). `make bench` runs it after
# scripts/devstack.sh.
#
#  1. Go benchmarks of the hot paths (entry codec, dispatch matching, status
#     batch building, store, retry) with allocations: OUTDIR/gobench.txt.
#  2. publisher-bench in every mode, briefly. Closed-loop runs also take
#     --baseline, so their throughput is given as a ratio of the same run's
#     raw ceilings; a --rate run's throughput is its rate, so it gets no
#     ratio and skips the probes:
#     OUTDIR/<run>.json (one JSON object each), OUTDIR/bench.json (all of
#     them) and OUTDIR/summary.txt (the human tables plus the benchmarks).
#
# With BENCH_SOAK=10m it also runs the memory soak: e2e at BENCH_SOAK_RATE
# events/s (default 10000) for that long with the workers as cmd/worker
# processes, whose RSS is reported apart (the "worker memory flat" target):
# OUTDIR/soak.json. It takes as long as it says.
#
# It fails when a bench run fails verification (lost or duplicated events).
# Packages without benchmarks, or not there yet, are noted and skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:?usage: scripts/bench.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
GO=${GO:-go}
BENCHTIME=${BENCHTIME:-300ms}
BASELINE_EVENTS=${BASELINE_EVENTS:-50000}
HOT_PACKAGES=(./event ./internal/xread ./internal/dispatch ./internal/status ./internal/store ./internal/retry)

log() { echo "bench: $*" >&2; }

machine() {
  echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit:    $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "cpus:      $(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
  echo "memory:    $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo 2>/dev/null || echo '?')"
  echo "go:        $($GO version | cut -d' ' -f3-)"
  echo "postgres:  $(psql "${NEO_EVENTS_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}" -tAc 'show server_version' 2>/dev/null || echo '?')"
  echo "redis:     $(redis-cli -u "${NEO_EVENTS_REDIS_URL:-redis://127.0.0.1:6379/0}" info server 2>/dev/null | tr -d '\r' | awk -F: '/^redis_version/ {print $2}')"
}

go_benchmarks() {
  : > "$OUT/gobench.txt"
  for pkg in "${HOT_PACKAGES[@]}"; do
    if [ ! -d "$pkg" ] || ! grep -qs '^func Benchmark' "$pkg"/*_test.go; then
      log "no benchmarks in $pkg: skipped"
      echo "# $pkg: no benchmarks" >> "$OUT/gobench.txt"
      continue
    fi
    log "go test -bench $pkg"
    if ! $GO test -run '^$' -bench . -benchmem -benchtime "$BENCHTIME" -count 1 "$pkg" >> "$OUT/gobench.txt" 2>&1; then
      log "benchmarks of $pkg failed (see gobench.txt)"
      echo "# $pkg: FAILED" >> "$OUT/gobench.txt"
    fi
  done
}

BIN="$OUT/publisher-bench"
RUNS=()
failed=0

bench_run() {
  local name=$1; shift
  log "publisher-bench $name: $*"
  RUNS+=("$name")
  {
    echo
    echo "== $name: publisher-bench $*"
  } >> "$OUT/summary.txt"
  local baseline=(--baseline --baseline-events "$BASELINE_EVENTS")
  case " $* " in *" --rate "*) baseline=() ;; esac
  if ! "$BIN" "$@" "${baseline[@]}" --quiet \
      --json-out "$OUT/$name.json" >> "$OUT/summary.txt" 2>> "$OUT/stderr.txt"; then
    log "$name FAILED (see summary.txt and stderr.txt)"
    failed=1
  fi
}

log "building publisher-bench"
$GO build -o "$BIN" ./cmd/publisher-bench
{ echo "neo-events standard bench profile"; machine; } > "$OUT/summary.txt"
: > "$OUT/stderr.txt"

go_benchmarks

bench_run publish            publish    --duration 10s
bench_run publish-10k        publish    --duration 10s --rate 10000
bench_run redis-only         redis-only --duration 5s
bench_run worker-nostatus    worker     --events 100000 --update-status=false
bench_run worker-status      worker     --events 50000
bench_run e2e                e2e        --duration 10s
bench_run e2e-5k             e2e        --duration 10s --rate 5000   # a rate 2 cores keep up with: latency without a backlog
bench_run e2e-10k            e2e        --duration 10s --rate 10000  # the target's rate

if [ -n "${BENCH_SOAK:-}" ]; then
  log "building worker for the soak"
  $GO build -o "$OUT/worker" ./cmd/worker
  name=soak
  log "publisher-bench $name: e2e --duration $BENCH_SOAK --rate ${BENCH_SOAK_RATE:-10000} (worker processes)"
  RUNS+=("$name")
  echo -e "\n== $name: publisher-bench e2e --duration $BENCH_SOAK --rate ${BENCH_SOAK_RATE:-10000} --worker-bin worker" >> "$OUT/summary.txt"
  if ! "$BIN" e2e --duration "$BENCH_SOAK" --rate "${BENCH_SOAK_RATE:-10000}" --worker-bin "$OUT/worker" \
      --drain-timeout 5m --quiet --json-out "$OUT/$name.json" >> "$OUT/summary.txt" 2>> "$OUT/stderr.txt"; then
    log "$name FAILED (see summary.txt and stderr.txt)"
    failed=1
  fi
  rm -f "$OUT/worker"
fi

{
  echo
  echo "== Go benchmarks (hot paths)"
  grep -E '^(Benchmark|#|ok|FAIL|PASS)' "$OUT/gobench.txt" || true
} >> "$OUT/summary.txt"

{
  echo '{"runs":['
  sep=""
  for r in "${RUNS[@]}"; do
    if [ -s "$OUT/$r.json" ]; then printf '%s{"name":"%s","result":%s}' "$sep" "$r" "$(cat "$OUT/$r.json")"; sep=$',\n'; fi
  done
  echo ']}'
} > "$OUT/bench.json"
rm -f "$BIN"

log "wrote $OUT/summary.txt and $OUT/bench.json"
exit $failed
