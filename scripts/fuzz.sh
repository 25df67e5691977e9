#!/usr/bin/env bash
# Fuzz the CloudEvents decoder for a bounded time (default 60 s):
#   scripts/fuzz.sh [SECONDS]
# Installs cargo-fuzz from crates.io when it is missing. cargo-fuzz needs
# nightly compiler flags; RUSTC_BOOTSTRAP=1 enables them on the stable
# toolchain. New inputs go to fuzz/corpus/decode (ignored by git); the
# committed seeds in fuzz/seeds/decode are read as well. A crash leaves its
# input in fuzz/artifacts/decode and makes this script fail.
set -euo pipefail
seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p corpus/decode
# The fuzz crate builds on its own (fuzz/target), with sanitizer flags that
# must not mix with the workspace's shared build directory.
unset CARGO_BUILD_BUILD_DIR CARGO_TARGET_DIR
RUSTC_BOOTSTRAP=1 cargo fuzz run decode corpus/decode seeds/decode -- \
    -max_total_time="$seconds" -max_len=4096 -print_final_stats=1
