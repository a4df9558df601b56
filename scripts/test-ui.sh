#!/usr/bin/env bash
# Tests `edbx ui` in a real browser: Debian's chromium (scripts/system-packages.sh installs it),
# driven by playwright-core (pinned in crates/edbx-ui/tests/browser/package-lock.json, installed
# with `npm ci` from that lock), against real EventDBX servers started by the test kit
# (edbx-test-server) and `edbx ui` itself. Part of scripts/test.sh; about half a minute.
#
# Environment:
#   CARGO_TARGET_DIR  cargo's target folder (default: the repository's target/)
#   CHROMIUM          the browser binary (default: chromium on the PATH)
# Arguments are passed to `node --test` (e.g. --test-name-pattern=live).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
say() { echo "test-ui: $*" >&2; }
target="${CARGO_TARGET_DIR:-$repo/target}"

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if ((node_major < 20)); then
    say "error: Node.js 20 or newer is needed to drive the browser (playwright-core), found $(node --version 2>/dev/null || echo none)"
    exit 1
fi

say "building edbx and the test server launcher (edbx-test-server)"
cargo build --quiet -p edbx-cli -p edbx-testkit --bins

browser=crates/edbx-ui/tests/browser
say "installing playwright-core from $browser/package-lock.json (npm ci)"
(cd "$browser" && npm ci --quiet --no-audit --no-fund >/dev/null)

say "running the browser tests"
cd "$browser"
EDBX_BIN_DIR="$target/debug" exec node --test --test-reporter=spec "$@" ui.test.mjs
