#!/usr/bin/env bash
# Fuzzes every decoder of network bytes in edbx-wire with libFuzzer (cargo-fuzz), each target for
# ${1:-60} seconds. cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain
# accept them, so no other toolchain is needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
    echo "== $target (${seconds}s)"
    cargo fuzz run -O "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048
done
