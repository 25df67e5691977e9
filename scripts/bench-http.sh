#!/usr/bin/env bash
# End-to-end HTTP benchmark of one job, an echo of a binary-mode CloudEvent,
# served three ways on 127.0.0.1, with wrk as the load generator:
#
# - native: a hyper server that decodes, echoes and encodes the CloudEvent
#   with Sluice's binding, no wasm (host/examples/native_echo.rs): the
#   baseline;
# - `wasmtime serve` 48.0.8 running functions/http-echo (a wasi:http
#   component doing the same job), pooling allocator on, a fresh instance per
#   request (its default);
# - Sluice: POST /functions/echo, a fresh instance per event, and the same
#   function with `reuse`.
#
# Each concurrency runs ROUNDS rounds (default 3), the servers interleaved
# within a round; the table shows medians. Everything stops by itself.
# `wasmtime serve` is installed once into target/tools/wasmtime (a `cargo
# install --locked` that takes about 16 minutes on 2 cores), then reused.
#
# COMPARE_WASM=path.wasm deploys another build of echo as `echo-compare`
# (e.g. one with WASI imports, against functions/echo without them),
# measured in the same rounds; a second table shows it.
#
# SLUICE_BIN=path benches that sluice binary instead of this checkout's
# build, e.g. SLUICE_BIN=target/pgo/sluice (scripts/build-pgo.sh).
#
#   scripts/bench-http.sh [SECONDS_PER_RUN] [CONCURRENCIES...]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

duration="${1:-5}"; shift || true
concurrencies=("${@:-1 16 64}")
# shellcheck disable=SC2206
concurrencies=(${concurrencies[*]})
rounds="${ROUNDS:-3}"

ensure_tool wrk

wasmtime_version=48.0.8
wasmtime="$PWD/target/tools/wasmtime/bin/wasmtime"
# WASMTIME_SERVE=0 leaves `wasmtime serve` out (its columns show "-").
serve_wasmtime="${WASMTIME_SERVE:-1}"
if [ "$serve_wasmtime" != 0 ] && ! "$wasmtime" --version 2>/dev/null | grep -q "$wasmtime_version"; then
  echo "installing wasmtime-cli $wasmtime_version into target/tools/wasmtime (once; about 16 minutes on 2 cores)" >&2
  cargo install --locked --quiet "wasmtime-cli@$wasmtime_version" --root target/tools/wasmtime
fi

# PROFILE=dev builds on the cached test build instead of a release build
# of wasmtime (long on 2 cores): its dependencies are already optimised
# (opt-level 2), and Sluice's own crate is built at opt-level 3 here.
profile="${PROFILE:-release}"
bin="target/$([ "$profile" = dev ] && echo debug || echo "$profile")"
cargo xtask functions >/dev/null
if [ "$profile" = dev ]; then
  cargo xtask build --profile dev --config profile.dev.opt-level=3 -q -p sluice --bin sluice --example native_echo
else
  cargo xtask build --profile "$profile" -q -p sluice --bin sluice --example native_echo
fi

work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

{ echo_functions_toml; cat <<TOML; } > "$work/sluice.toml"
[runtime]
default_max_concurrency = 256
default_max_queue = 4096
TOML
compare="${COMPARE_WASM:-}"
if [ -n "$compare" ]; then
  printf '[functions.echo-compare]\npath = "%s"\n' "$(realpath "$compare")" >> "$work/sluice.toml"
fi
cp scripts/bench-event.lua "$work/post.lua"

RUST_LOG=warn "${SLUICE_BIN:-$bin/sluice}" serve --listen 127.0.0.1:19090 --admin-listen 127.0.0.1:19092 --data-dir "$work/data" \
  --config "$work/sluice.toml" >/dev/null & pids+=($!)
"$bin/examples/native_echo" 127.0.0.1:19091 2>/dev/null & pids+=($!)
touch "$work/wasmtime.log"
if [ "$serve_wasmtime" != 0 ]; then
  "$wasmtime" serve -O pooling-allocator=y --addr 127.0.0.1:19093 \
    target/functions/http-echo.wasm 2>"$work/wasmtime.log" & pids+=($!)
fi

# Every server must answer the bench's request with 200 before it is
# measured (a server that failed to start, or answers 4xx/5xx, would
# otherwise show up as a fast row of errors).
probe() { # url -> HTTP status
  curl -s -o /dev/null -w '%{http_code}' -X POST -H 'ce-specversion: 1.0' -H 'ce-id: probe-1' \
    -H 'ce-source: /bench' -H 'ce-type: dev.sluice.bench' -H 'content-type: application/json' \
    --data '{"base":"USD","quote":"EUR","rate":0.92,"amount":100}' "$1" || true
}
urls=(http://127.0.0.1:19091/ http://127.0.0.1:19090/functions/echo http://127.0.0.1:19090/functions/echo-reuse)
[ "$serve_wasmtime" != 0 ] && urls+=(http://127.0.0.1:19093/)
[ -n "$compare" ] && urls+=(http://127.0.0.1:19090/functions/echo-compare)
for url in "${urls[@]}"; do
  status=000
  for _ in $(seq 1 200); do
    status="$(probe "$url")"
    [ "$status" = 200 ] && break
    sleep 0.05
  done
  if [ "$status" != 200 ]; then
    echo "bench-http: $url answered $status instead of 200; wasmtime serve said:" >&2
    cat "$work/wasmtime.log" >&2
    exit 1
  fi
done

# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sluice_pid="${pids[0]}"
native_pid="${pids[1]}"
wasmtime_pid="${pids[2]:-}"

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
  if grep -q "Non-2xx" <<<"$out"; then
    echo "bench-http: error responses from $1 at concurrency $2:" >&2
    echo "$out" >&2
    exit 1
  fi
  grep "Socket errors" <<<"$out" | sed "s|^|bench-http: $1 at concurrency $2: |" >&2 || true
  cpu="$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
  echo "$rps $p50 $p99 $cpu"
}

# The median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }

echo
echo "### HTTP end to end: an echo of one CloudEvent (wrk, $rounds rounds of ${duration}s, medians; profile $profile; 2 cores shared with the load generator; load before: $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| concurrency | native events/s (baseline) | \`wasmtime serve\` events/s | Sluice events/s | Sluice with \`reuse\` events/s | Sluice / native | Sluice / \`wasmtime serve\` | reuse / native | p50 / p99: native, \`wasmtime serve\`, Sluice | server CPU µs per request: native / \`wasmtime serve\` / Sluice / reuse |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for c in "${concurrencies[@]}"; do
  : > "$work/rounds"
  for _ in $(seq 1 "$rounds"); do
    {
      echo "native $(run "http://127.0.0.1:19091/" "$c" "$native_pid")"
      if [ "$serve_wasmtime" != 0 ]; then
        echo "wasmtime $(run "http://127.0.0.1:19093/" "$c" "$wasmtime_pid")"
      else
        echo "wasmtime - - - -"
      fi
      echo "sluice $(run "http://127.0.0.1:19090/functions/echo" "$c" "$sluice_pid")"
      echo "reuse $(run "http://127.0.0.1:19090/functions/echo-reuse" "$c" "$sluice_pid")"
      if [ -n "$compare" ]; then
        echo "compare $(run "http://127.0.0.1:19090/functions/echo-compare" "$c" "$sluice_pid")"
      fi
    } >> "$work/rounds"
  done
  col() { awk -v s="$1" -v f="$2" '$1 == s { print $f }' "$work/rounds" | median; }
  # p50/p99 as wrk prints them (with units): those of the median round by events/s.
  lat() { awk -v s="$1" '$1 == s { print $2, $3 "/" $4 }' "$work/rounds" | sort -g | awk -v n="$rounds" 'NR == int((n + 1) / 2) { print $2 }'; }
  n="$(col native 2)"; w="$(col wasmtime 2)"; s="$(col sluice 2)"; r="$(col reuse 2)"
  cp "$work/rounds" "$work/rounds-$c"
  echo "| $c | $n | $w | $s | $r | **$(ratio "$s" "$n")** | **$(ratio "$s" "$w")** | $(ratio "$r" "$n") | $(lat native), $(lat wasmtime), $(lat sluice) | $(col native 5) / $(col wasmtime 5) / $(col sluice 5) / $(col reuse 5) |"
done

if [ -n "$compare" ]; then
  echo
  echo "### The same rounds: functions/echo against \`COMPARE_WASM\` ($compare)"
  echo
  echo "| concurrency | native events/s | Sluice, echo | Sluice, compared build | echo / native | compared / native | echo / compared | server CPU µs per request: native / echo / compared |"
  echo "|---|---|---|---|---|---|---|---|"
  for c in "${concurrencies[@]}"; do
    col() { awk -v s="$1" -v f="$2" '$1 == s { print $f }' "$work/rounds-$c" | median; }
    n="$(col native 2)"; s="$(col sluice 2)"; k="$(col compare 2)"
    echo "| $c | $n | $s | $k | $(ratio "$s" "$n") | $(ratio "$k" "$n") | $(ratio "$s" "$k") | $(col native 5) / $(col sluice 5) / $(col compare 5) |"
  done
fi
