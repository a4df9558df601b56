#!/usr/bin/env bash
# Runs every test against the real EventDBX server: the Rust workspace (cargo test), `edbx ui`
# in a real browser (scripts/test-ui.sh), then the Python package built as a wheel and installed
# into a fresh virtual environment (pytest).
# Installs what is missing first (scripts/ensure-tools.sh says what and why).
# Arguments go to cargo test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/ensure-tools.sh
echo "== cargo test --workspace" >&2
cargo test --workspace "$@"
echo "== edbx ui in a real browser (chromium, playwright-core)" >&2
scripts/test-ui.sh
echo "== Python package (pytest against the installed wheel)" >&2
scripts/test-python.sh
