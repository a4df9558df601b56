#!/usr/bin/env bash
# Tests the Python package (crates/edbx-py) the way a user gets it: builds the wheel with maturin,
# installs it into a fresh virtual environment, and runs pytest there against real servers
# started by the Rust test kit (edbx-test-server). Part of scripts/test.sh.
#
# Environment:
#   EDBX_CACHE_DIR    where the virtual environments live (default $HOME/.cache/edbx)
#   EDBX_PYTHON       the interpreter to build the environments with (default python3)
#   CARGO_TARGET_DIR  cargo's target folder (default: the repository's target/)
# Arguments are passed to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
say() { echo "test-python: $*" >&2; }

cache="${EDBX_CACHE_DIR:-$HOME/.cache/edbx}"
python="${EDBX_PYTHON:-python3}"
target="${CARGO_TARGET_DIR:-$repo/target}"
mkdir -p "$cache"

# maturin lives in an environment of its own; pytest and pycapnp (optional, for
# load_control_schema) are kept as wheels, so the fresh test environment installs them offline.
tools="$cache/py-build-venv"
wheelhouse="$cache/py-wheelhouse"
# One requirement a line in crates/edbx-py/tests/requirements.txt (comments and blanks skipped).
mapfile -t test_deps < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' crates/edbx-py/tests/requirements.txt)
if [[ ! -x "$tools/bin/maturin" ]]; then
    say "creating $tools and installing maturin (from the Python index)"
    rm -rf "$tools"
    "$python" -m venv "$tools"
    "$tools/bin/python" -m pip install --quiet "maturin>=1.9.4,<2"
fi
if ! "$tools/bin/python" -m pip download --quiet --no-index --find-links "$wheelhouse" \
        -d "$wheelhouse" "${test_deps[@]}" >/dev/null 2>&1; then
    say "downloading ${test_deps[*]} into $wheelhouse (from the Python index)"
    "$tools/bin/python" -m pip download --quiet --only-binary :all: -d "$wheelhouse" "${test_deps[@]}"
fi

say "building the test server launcher (edbx-test-server)"
cargo build --quiet -p edbx-testkit --bin edbx-test-server
export EDBX_TEST_SERVER="$target/debug/edbx-test-server"

wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
say "building the wheel"
(cd crates/edbx-py && "$tools/bin/maturin" build --quiet --out "$wheels" >&2)
wheel=$(ls "$wheels"/*.whl)
export EDBX_WHEEL="$wheel"

# A fresh environment for every run: the tests see exactly what the wheel installs.
venv="$cache/py-test-venv"
say "installing $(basename "$wheel") into a fresh $venv"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --no-index --no-deps "$wheel"
"$venv/bin/python" -m pip install --quiet --no-index --find-links "$wheelhouse" "${test_deps[@]}"

say "running pytest"
cd crates/edbx-py
exec "$venv/bin/python" -m pytest "$@"
