#!/usr/bin/env bash
# Durable ingress benchmark: POST / (one event per request, and batches of
# 100) on a host with the durable log (the default) against the same host
# with `[durability] enabled = false`, at several concurrencies, with wrk.
# Each accepted event is delivered to `echo` (reply dropped). Prints a
# Markdown table with events/s and the durable/in-memory ratio.
#
#   scripts/bench-durable.sh [SECONDS_PER_RUN] [CONCURRENCIES...]
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${1:-5}"; shift || true
concurrencies=("${@:-1 16 64}")
# shellcheck disable=SC2206
concurrencies=(${concurrencies[*]})
batch=100

. scripts/bench-lib.sh
ensure_tool wrk
cargo xtask functions >/dev/null
# PROFILE=dev builds on the cached test build (dependencies at opt-level 2)
# with Sluice's own crate at opt-level 3, instead of a release build of
# wasmtime, as in bench-http.sh.
profile="${PROFILE:-release}"
bin="target/$([ "$profile" = dev ] && echo debug || echo "$profile")/sluice"
if [ "$profile" = dev ]; then
  cargo xtask build --profile dev --config profile.dev.opt-level=3 -q -p sluice --bin sluice
else
  cargo xtask build --profile "$profile" -q -p sluice --bin sluice
fi

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$work"/*.log; do [ -s "$f" ] && { echo "--- $f" >&2; tail -5 "$f" >&2; }; done
  rm -rf "$work"
}
trap cleanup EXIT

for mode in on off; do
  enabled=true; [ "$mode" = off ] && enabled=false
  cat > "$work/$mode.toml" <<TOML
[durability]
enabled = $enabled
[runtime]
default_max_concurrency = 256
default_max_queue = 4096
[functions.echo]
path = "$PWD/target/functions/echo.wasm"
[triggers.bench]
filter = { type = "dev.sluice.bench" }
function = "echo"
TOML
done
cp scripts/bench-event.lua "$work/single.lua"
batch_lua $batch > "$work/batch.lua"

RUST_LOG=warn "$bin" serve --listen 127.0.0.1:19190 --admin-listen 127.0.0.1:19192 --data-dir "$work/data-on" \
  --config "$work/on.toml" >"$work/on.log" 2>&1 & pids+=($!)
RUST_LOG=warn "$bin" serve --listen 127.0.0.1:19191 --admin-listen 127.0.0.1:19193 --data-dir "$work/data-off" \
  --config "$work/off.toml" >"$work/off.log" 2>&1 & pids+=($!)
for port in 19190 19191; do
  for _ in $(seq 1 200); do
    (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.05
  done
done

run() { # port script concurrency -> "rps non2xx"
  local out
  local threads=2; [ "$3" -lt 2 ] && threads=1
  out="$(wrk -t"$threads" -c"$3" -d"${duration}s" -s "$work/$2.lua" "http://127.0.0.1:$1/")"
  local rps bad
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  bad="$(awk '/Non-2xx/ {print $5}' <<<"$out")"
  echo "$rps ${bad:-0}"
}

echo
echo "### Durable ingress: POST / (wrk, ${duration}s per run, 2 cores shared with the load generator)"
echo
echo "| requests | concurrency | in-memory events/s | durable events/s | durable / in-memory | non-2xx (off / on) |"
echo "|---|---|---|---|---|---|"
for kind in single batch; do
  per=1; [ "$kind" = batch ] && per=$batch
  for c in "${concurrencies[@]}"; do
    read -r off_rps off_bad < <(run 19191 "$kind" "$c")
    sleep 1
    read -r on_rps on_bad < <(run 19190 "$kind" "$c")
    sleep 1
    off_ev="$(awk -v r="$off_rps" -v p="$per" 'BEGIN { printf "%.0f", r * p }')"
    on_ev="$(awk -v r="$on_rps" -v p="$per" 'BEGIN { printf "%.0f", r * p }')"
    ratio="$(awk -v a="$on_ev" -v b="$off_ev" 'BEGIN { printf "%.2f", a / b }')"
    label="1 event"; [ "$kind" = batch ] && label="batch of $batch"
    echo "| $label | $c | $off_ev | $on_ev | $ratio | $off_bad / $on_bad |"
  done
done
