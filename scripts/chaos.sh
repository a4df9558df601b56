#!/usr/bin/env bash
# The chaos test of the suite (crates/edbx/tests/it/chaos.rs), run longer: 16 writers append
# through one client while the server is SIGKILLed and restarted and a proxy cuts, corrupts and
# black-holes connections; then every acknowledged write is checked present exactly once.
# Prints the ledger's figures. Usage: scripts/chaos.sh [seconds of faults, default 180]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-server.sh >&2
export EDBX_CHAOS_SECONDS="${1:-180}"
exec cargo test --release -p edbx --test it chaos -- --nocapture
