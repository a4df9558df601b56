#!/usr/bin/env bash
# Measures how fast `edbx ui`'s pages paint on a big store (BENCHMARKS.md, "edbx ui"): writes
# 100,000 aggregates of one type and one aggregate of 1,000 events into a throwaway server, then
# opens the pages in Debian's chromium (playwright-core) and reads the browser's own timings.
# Builds the release binaries first. About 10 minutes on 2 cores, most of it writing the data.
# The report goes to stdout (the table of BENCHMARKS.md), progress to stderr.
#
# Environment: CARGO_TARGET_DIR (default: the repository's target/), EDBX_UI_BENCH_AGGREGATES
# (default 100000), EDBX_UI_BENCH_EVENTS (default 1000), EDBX_UI_BENCH_RUNS (default 7).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
say() { echo "bench-ui: $*" >&2; }
target="${CARGO_TARGET_DIR:-$repo/target}"
scripts/ensure-tools.sh >&2

say "building edbx and edbx-test-server (release)"
cargo build --release --quiet -p edbx-cli -p edbx-testkit --bins
browser=crates/edbx-ui/tests/browser
(cd "$browser" && npm ci --quiet --no-audit --no-fund >/dev/null)
commit=$(git rev-parse --short HEAD)
if [[ -n "$(git status --porcelain)" ]]; then
    commit="$commit+changes"
fi
cd "$browser"
EDBX_BIN_DIR="$target/release" EDBX_UI_BENCH_COMMIT="$commit" exec node bench.mjs
