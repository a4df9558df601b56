#!/usr/bin/env bash
# Takes the README's screenshots of `edbx ui` (docs/images/ui-overview.png, ui-type.png,
# ui-aggregate.png) in Debian's chromium against a throwaway server holding a small order book.
# Its writes are spread over EDBX_UI_SHOTS_MINUTES (default 4) minutes so that the activity chart
# shows something; the script takes that long.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
target="${CARGO_TARGET_DIR:-$repo/target}"
scripts/ensure-tools.sh >&2
cargo build --quiet -p edbx-cli -p edbx-testkit --bins
browser=crates/edbx-ui/tests/browser
(cd "$browser" && npm ci --quiet --no-audit --no-fund >/dev/null)
cd "$browser"
EDBX_BIN_DIR="$target/debug" exec node screenshots.mjs
