#!/usr/bin/env bash
# Fuzz the decoders for a bounded time:
#   scripts/fuzz.sh [TARGET] [SECONDS]     (default: decode 60)
#   scripts/fuzz.sh all [SECONDS]          (each target in turn)
# Targets (fuzz/fuzz_targets/): `decode` (the HTTP binding, every mode),
# `json` (the structured/batched JSON decoder under tight shape limits),
# `kafka` (the Kafka binding), and `config` (the sluice.toml parser and
# validator: a package of its own in fuzz/config that links the whole host,
# built without a sanitizer; its first build takes about 15 minutes). A
# lone number is the time for `decode`; `all` runs every target.
# Installs cargo-fuzz from crates.io when it is missing. cargo-fuzz needs
# nightly compiler flags; RUSTC_BOOTSTRAP=1 enables them on the stable
# toolchain. New inputs go to fuzz/corpus/TARGET (ignored by git); the
# committed seeds in fuzz/seeds/TARGET are read as well. A crash leaves its
# input in fuzz/artifacts/TARGET and makes this script fail.
set -euo pipefail
target="${1:-decode}"
if [[ "$target" =~ ^[0-9]+$ ]]; then
    seconds="$target"
    target=decode
else
    seconds="${2:-60}"
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# The fuzz crate builds on its own (fuzz/target), with sanitizer flags that
# must not mix with the workspace's shared build directory.
unset CARGO_BUILD_BUILD_DIR CARGO_TARGET_DIR
run() {
    mkdir -p "corpus/$1"
    local where=()
    if [[ "$1" == config ]]; then
        where=(--fuzz-dir config --sanitizer none)
    fi
    RUSTC_BOOTSTRAP=1 cargo fuzz run "${where[@]}" "$1" "corpus/$1" "seeds/$1" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1
}
if [[ "$target" == all ]]; then
    for t in decode json kafka config; do run "$t"; done
else
    run "$target"
fi
