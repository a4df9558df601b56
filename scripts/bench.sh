#!/usr/bin/env bash
# Runs the side-by-side benchmark (crates/edbx-bench) with the Python contenders: builds the
# release wheel of the Python package into a virtual environment, then runs
#     cargo run --release -p edbx-bench -- --python <that interpreter> "$@"
# The report goes to stdout (the tables of BENCHMARKS.md), progress to stderr.
#
# Environment: EDBX_CACHE_DIR (default $HOME/.cache/edbx), EDBX_PYTHON (default python3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { echo "bench: $*" >&2; }

cache="${EDBX_CACHE_DIR:-$HOME/.cache/edbx}"
python="${EDBX_PYTHON:-python3}"
scripts/ensure-tools.sh >&2

venv="$cache/py-bench-venv"
if [[ ! -x "$venv/bin/maturin" ]]; then
    say "creating $venv and installing maturin (from the Python index)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "maturin>=1.9.4,<2"
fi
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
say "building the release wheel"
(cd crates/edbx-py && "$venv/bin/maturin" build --release --quiet --out "$wheels" >&2)
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps "$wheels"/*.whl

exec cargo run --release --quiet -p edbx-bench -- --python "$venv/bin/python" "$@"
