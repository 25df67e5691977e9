#!/usr/bin/env bash
# User-space instructions per request of the HTTP bench's echo, counted by
# `valgrind --tool=callgrind`: the native echo (host/examples/native_echo.rs,
# the baseline), Sluice's POST /functions/echo with a fresh instance per
# event, and the same function with `reuse`. Unlike the timed bench
# (scripts/bench-http.sh), the counts repeat between runs to about 1%, so
# a change worth a few percent shows up.
#
# Each server runs under callgrind on 127.0.0.1; after a warm-up its
# counters are zeroed, `wrk -t1 -c1` runs for SECONDS, and they are dumped.
# Threads are counted separately, and Sluice's epoch thread is left out: its
# housekeeping runs on a timer, so under valgrind's slowdown it would add
# instructions per request that a real run does not have. KEEP=1 keeps the
# dumps (the script says where) for callgrind_annotate.
#
#   scripts/count-instructions.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

duration="${1:-4}"
ensure_tool wrk
ensure_tool valgrind

cargo xtask functions >/dev/null
cargo xtask build --release -q -p sluice --bin sluice --example native_echo
bin=target/release

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "the dumps are in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# A small pool: valgrind cannot reserve the default one.
{ echo_functions_toml; cat <<TOML; } > "$work/sluice.toml"
[runtime]
max_instances = 4
TOML
cp scripts/bench-event.lua "$work/post.lua"

# Valgrind counts each iteration of a `rep stosb` or `rep movsb` as one
# instruction, and glibc's memset and memcpy use them from 2 KiB up, so a
# 4 KiB page cleared or copied would count as 4,096 instructions for a few
# hundred cycles of work (a fresh instance's slot reset clears three to
# four pages). With the thresholds out of reach, glibc uses its vector
# loops for every size, which valgrind counts as the CPU executes them.
export GLIBC_TUNABLES=glibc.cpu.x86_rep_stosb_threshold=0x7fffffffffffffff:glibc.cpu.x86_rep_movsb_threshold=0x7fffffffffffffff

measure() { # name url pid prefix dump -> $work/result-NAME: "requests instructions-per-request"
  local name=$1 url=$2 pid=$3 prefix=$4 n=$5 status
  status="$(await_200 "$url" 300 0.2)" || { echo "count-instructions: $url answered $status" >&2; exit 1; }
  wrk -t1 -c1 -d2s -s "$work/post.lua" "$url" >/dev/null
  callgrind_control -z "$pid" >/dev/null
  local out; out="$(wrk -t1 -c1 -d"${duration}s" -s "$work/post.lua" "$url")"
  callgrind_control -d "$pid" >/dev/null
  sleep 1
  local requests; requests="$(awk '/requests in/ {print $1}' <<<"$out")"
  local total=0 f first
  for f in "$prefix.$pid.$n"-*; do
    # Callgrind names a function once per thread, in that thread's first
    # dump: the epoch thread is the one that calls std::thread::sleep.
    first="$prefix.$pid.1-${f##*-}"
    grep -qs "std::thread::functions::sleep" "$first" && continue
    total=$(( total + $(awk '/^summary:|^totals:/ {print $2; exit}' "$f") ))
  done
  echo "$requests $(awk -v i="$total" -v r="$requests" 'BEGIN { printf "%.1f", i / r / 1000 }')" > "$work/result-$name"
}

valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$work/native.%p" \
  "$bin/examples/native_echo" 127.0.0.1:19191 2>/dev/null & pids+=($!)
measure native http://127.0.0.1:19191/ "${pids[0]}" "$work/native" 1
read -r _ native < "$work/result-native"
kill "${pids[0]}"

RUST_LOG=warn valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$work/sluice.%p" \
  "$bin/sluice" serve --listen 127.0.0.1:19190 --admin-listen 127.0.0.1:19192 \
  --data-dir "$work/data" --config "$work/sluice.toml" >/dev/null 2>"$work/sluice.err" & pids+=($!)
measure fresh http://127.0.0.1:19190/functions/echo "${pids[1]}" "$work/sluice" 1
measure reuse http://127.0.0.1:19190/functions/echo-reuse "${pids[1]}" "$work/sluice" 2
read -r _ fresh < "$work/result-fresh"
read -r _ reuse < "$work/result-reuse"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "### Instructions per request (callgrind, user space, wrk -t1 -c1 -d${duration}s; release)"
echo
echo "| native echo (baseline) | Sluice, fresh instance | Sluice, \`reuse\` | fresh / native | reuse / native |"
echo "|---|---|---|---|---|"
echo "| ${native}k | ${fresh}k | ${reuse}k | **$(ratio "$fresh" "$native")** | $(ratio "$reuse" "$native") |"
