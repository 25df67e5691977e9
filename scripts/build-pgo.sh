#!/usr/bin/env bash
# A profile-guided build of the `sluice` binary, for deployments and
# benchmarks: target/pgo/sluice (target/pgo/sluice-dist with PROFILE=dist).
#
# 1. builds an instrumented sluice (`-Cprofile-generate`);
# 2. trains it on loopback for TRAIN_SECONDS per workload (default 4):
#    POST /functions/echo with a fresh instance per event and with
#    `reuse`, and POST / (the durable broker, a trigger to echo) with one
#    binary-mode event and with a structured batch of 100;
# 3. merges the profile with llvm-profdata and builds again with
#    `-Cprofile-use`.
#
# Measured in docs/performance.md, CPU per event against the release build:
# a fifth to a third less with a fresh instance, a tenth to a fifth less with
# `reuse`; with PROFILE=dist, 39-48% and 36-51% less.
# The profile is only as good as the training: a deployment whose events
# take other paths (Kafka, sources, WASI handlers) should train on those.
#
# Installs wrk, and the Debian `llvm-N` package whose major version is
# the LLVM that rustc is built with (for llvm-profdata-N), when missing.
# Two builds of the host in PROFILE (default release: about 20 minutes on
# 2 cores; PROFILE=dist adds fat LTO, 43 minutes). Both builds use the
# same cargo profile, so the profile data is applied to the code it was
# recorded from.
#
#   [PROFILE=dist] scripts/build-pgo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

seconds="${TRAIN_SECONDS:-4}"
profile="${PROFILE:-release}"
llvm_major="$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"
profdata="llvm-profdata-$llvm_major"
ensure_tool wrk
ensure_tool "$profdata" "llvm-$llvm_major"

out="$PWD/target/pgo"
profiles="$out/profiles"
rm -rf "$profiles"
mkdir -p "$profiles"

cargo xtask functions >/dev/null
# --config rather than RUSTFLAGS, so the flags reach this build only and
# not the xtask binary that runs it.
cargo xtask build --profile "$profile" -q -p sluice --bin sluice --target-dir "$out/generate" \
  --config "build.rustflags=[\"-Cprofile-generate=$profiles\"]"

work="$(mktemp -d)"
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

{ echo_functions_toml; cat <<TOML; } > "$work/sluice.toml"
[triggers.train]
filter = { type = "dev.sluice.bench" }
function = "echo"
TOML
cp scripts/bench-event.lua "$work/single.lua"
batch_lua 100 > "$work/batch.lua"

RUST_LOG=warn "$out/generate/$profile/sluice" serve --listen 127.0.0.1:19590 \
  --admin-listen 127.0.0.1:19592 --data-dir "$work/data" --config "$work/sluice.toml" \
  >"$work/sluice.log" 2>&1 &
pid=$!
status="$(await_200 http://127.0.0.1:19590/functions/echo 100 0.1)" ||
  { echo "build-pgo: the instrumented host answered $status" >&2; tail -5 "$work/sluice.log" >&2; exit 1; }
train() { # path script
  local result
  result="$(wrk -t1 -c16 -d"${seconds}s" -s "$work/$2" "http://127.0.0.1:19590$1")"
  echo "trained on $1 ($2): $(awk '/requests in/ {print $1}' <<<"$result") requests" >&2
  if grep -q 'Non-2xx' <<<"$result"; then echo "build-pgo: error responses while training" >&2; exit 1; fi
}
train /functions/echo single.lua
train /functions/echo-reuse single.lua
train / single.lua
train / batch.lua
# The profile is written when the process exits.
kill -INT "$pid"
wait "$pid" || true
pid=

"$profdata" merge -o "$out/sluice.profdata" "$profiles"
cargo xtask build --profile "$profile" -q -p sluice --bin sluice --target-dir "$out/use" \
  --config "build.rustflags=[\"-Cprofile-use=$out/sluice.profdata\"]"
bin="$out/sluice$([ "$profile" = release ] || echo "-$profile")"
cp "$out/use/$profile/sluice" "$bin"
echo "$bin"
