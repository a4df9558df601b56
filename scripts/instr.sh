#!/usr/bin/env bash
# Client instructions (callgrind) and heap allocations per call of edbx and of the raw-protocol
# ceiling, against a real server, checked against crates/edbx-instr/baseline.json (within its
# stated tolerance): a regression check that does not drift with the machine's load.
# Arguments go to edbx-instr (--write-baseline records new counts; none prints the table only).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/ensure-tools.sh
# This checkout's baseline, not the one of whichever checkout built a shared target folder's binary.
export EDBX_INSTR_BASELINE="$PWD/crates/edbx-instr/baseline.json"
exec cargo run --release --quiet -p edbx-instr -- "${@:---check}"
