#!/usr/bin/env bash
# Runs the side-by-side benchmark (crates/edbx-bench) with the Python contenders: builds the
# release wheel of the Python package into a virtual environment (with uvloop, for the uvloop
# rows), installs the official Python client eventdbx 0.1.8 into a second one (both are imported
# as `eventdbx`; the harness patches 0.1.8's connection bugs at run time), then runs
#     cargo run --release -p edbx-bench -- --python <the first> --python-official <the second> "$@"
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
if ! "$venv/bin/python" -c 'import uvloop' 2>/dev/null; then
    say "installing uvloop into $venv (from the Python index)"
    "$venv/bin/python" -m pip install --quiet --only-binary :all: "uvloop>=0.19,<1"
fi

# The official client, untouched: its files are never edited (python/official_0_1_8.py patches
# it in memory). Binary wheels only, so pycapnp needs no Cap'n Proto toolkit to install.
official="$cache/py-bench-official-venv"
if ! "$official/bin/python" -c 'import importlib.metadata as m; assert m.version("eventdbx") == "0.1.8"' 2>/dev/null; then
    say "creating $official with the official eventdbx 0.1.8 (from the Python index)"
    rm -rf "$official"
    "$python" -m venv "$official"
    "$official/bin/python" -m pip install --quiet --only-binary :all: "eventdbx==0.1.8"
fi

exec cargo run --release --quiet -p edbx-bench -- \
    --python "$venv/bin/python" --python-official "$official/bin/python" "$@"
