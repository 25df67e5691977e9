#!/usr/bin/env bash
# End-to-end HTTP benchmark: POST /functions/echo on a running Sluice host
# against a native hyper server that decodes, echoes and encodes the same
# CloudEvent (host/examples/native_echo.rs), at several concurrencies,
# with wrk as the load generator. Everything runs on 127.0.0.1 and stops by
# itself. Prints a Markdown table with the Sluice/native ratio.
#
#   scripts/bench-http.sh [SECONDS_PER_RUN] [CONCURRENCIES...]
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${1:-5}"; shift || true
concurrencies=("${@:-1 16 64}")
# shellcheck disable=SC2206
concurrencies=(${concurrencies[*]})

if ! command -v wrk >/dev/null; then
  echo "installing wrk" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi
fi

cargo xtask functions >/dev/null
cargo build --release -q -p sluice --bin sluice --example native_echo

work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cat > "$work/sluice.toml" <<TOML
[functions.echo]
path = "$PWD/target/functions/echo.wasm"
[functions.echo-reuse]
path = "$PWD/target/functions/echo.wasm"
reuse = 1000000
[runtime]
default_max_concurrency = 256
default_max_queue = 4096
TOML
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"base":"USD","quote":"EUR","rate":0.92,"amount":100}'
wrk.headers["ce-specversion"] = "1.0"
wrk.headers["ce-id"] = "bench-1"
wrk.headers["ce-source"] = "/bench"
wrk.headers["ce-type"] = "dev.sluice.bench"
wrk.headers["content-type"] = "application/json"
LUA

RUST_LOG=warn target/release/sluice serve --listen 127.0.0.1:19090 --admin-listen 127.0.0.1:19092 --data-dir "$work/data" \
  --config "$work/sluice.toml" >/dev/null & pids+=($!)
target/release/examples/native_echo 127.0.0.1:19091 2>/dev/null & pids+=($!)
for port in 19090 19091; do
  for _ in $(seq 1 200); do
    (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.05
  done
done

# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sluice_pid="${pids[0]}"
native_pid="${pids[1]}"

# wrk prints "Requests/sec: N" and, with --latency, "50% 1.23ms" lines.
# The server's CPU time per request comes from /proc/PID/stat around the run.
run() { # url concurrency server-pid -> "rps p50 p99 cpu-us-per-request"
  local out before after
  local threads=$(( $2 < 2 ? $2 : 2 ))
  before="$(cpu_ticks "$3")"
  out="$(wrk -t"$threads" -c"$2" -d"${duration}s" --latency -s "$work/post.lua" "$1")"
  after="$(cpu_ticks "$3")"
  local rps p50 p99 requests cpu
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
  requests="$(awk '/requests in/ {print $1}' <<<"$out")"
  cpu="$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
  echo "$rps $p50 $p99 $cpu"
}

echo
echo "### HTTP end to end: POST /functions/echo (wrk, ${duration}s per run, 2 cores shared with the load generator)"
echo
echo "| concurrency | native events/s (baseline) | native p50 / p99 | Sluice events/s | Sluice p50 / p99 | Sluice / native | Sluice with \`reuse\` events/s | reuse / native | server CPU µs per request: native / Sluice / reuse |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in "${concurrencies[@]}"; do
  read -r nrps np50 np99 ncpu < <(run "http://127.0.0.1:19091/" "$c" "$native_pid")
  read -r srps sp50 sp99 scpu < <(run "http://127.0.0.1:19090/functions/echo" "$c" "$sluice_pid")
  read -r rrps _ _ rcpu < <(run "http://127.0.0.1:19090/functions/echo-reuse" "$c" "$sluice_pid")
  ratio="$(awk -v a="$srps" -v b="$nrps" 'BEGIN { printf "%.2f", a / b }')"
  rratio="$(awk -v a="$rrps" -v b="$nrps" 'BEGIN { printf "%.2f", a / b }')"
  echo "| $c | $nrps | $np50 / $np99 | $srps | $sp50 / $sp99 | $ratio | $rrps | $rratio | $ncpu / $scpu / $rcpu |"
done
