#!/usr/bin/env bash
# Tests the Python package (crates/edbx-py) the way a user gets it: builds the wheel with maturin,
# installs it into a fresh virtual environment, and runs pytest there against real servers
# started by the Rust test kit (edbx-test-server). Part of scripts/test.sh.
#
# Then the same wheel on every other CPython it claims (the "Programming Language :: Python :: 3.X"
# classifiers of crates/edbx-py/pyproject.toml, which must start at requires-python and match the
# abi3 floor of Cargo.toml): each in a fresh virtual environment with its own dependency wheels,
# running the tests marked `every_python` (the README tests and other cheap, interpreter-dependent
# ones), with only tests/requirements-every-python.txt installed beside the wheel. The interpreters
# are found under $PYENV_ROOT/versions (default ~/.pyenv); a claimed one that is missing fails
# the run.
#
# Environment:
#   EDBX_CACHE_DIR    where the virtual environments live (default $HOME/.cache/edbx)
#   EDBX_PYTHON       the interpreter to build the environments with (default python3)
#   CARGO_TARGET_DIR  cargo's target folder (default: the repository's target/)
#   PYENV_ROOT        where the other interpreters are installed (default $HOME/.pyenv)
# Arguments are passed to pytest; given any, only the main interpreter runs (a developer's
# selection), unless EDBX_EVERY_PYTHON=1.
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

# ----- every other CPython the wheel claims --------------------------------------------------
# Run before the full suite, so that the run ends with the full suite's summary.
every_python() {
pyproject=crates/edbx-py/pyproject.toml
mapfile -t claimed < <(sed -n 's/^ *"Programming Language :: Python :: \(3\.[0-9]*\)",$/\1/p' "$pyproject" | sort -V)
floor=$(sed -n 's/^requires-python = ">=\(3\.[0-9]*\)"$/\1/p' "$pyproject")
((${#claimed[@]})) || { say "no 'Programming Language :: Python :: 3.X' classifiers in $pyproject"; return 1; }
if [[ "$floor" != "${claimed[0]}" ]]; then
    say "requires-python (>=$floor) and the oldest classifier (${claimed[0]}) disagree in $pyproject"
    return 1
fi
if ! grep -q "abi3-py${floor/./}\"" crates/edbx-py/Cargo.toml; then
    say "crates/edbx-py/Cargo.toml does not build for abi3-py${floor/./}, the floor of requires-python"
    return 1
fi
main=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# Only what the marked tests need (some test dependencies do not support every claimed version),
# and only the test files that use the marker (the others may import those dependencies).
mapfile -t every_deps < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' crates/edbx-py/tests/requirements-every-python.txt)
mapfile -t every_files < <(cd crates/edbx-py && grep -l "every_python" tests/test_*.py)
((${#every_files[@]})) || { say "no test file uses the every_python marker"; return 1; }
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
for version in "${claimed[@]}"; do
    [[ "$version" == "$main" ]] && continue
    interpreter=$(ls -d "$pyenv_root"/versions/"$version".*/bin/python3 2>/dev/null | sort -V | tail -n 1)
    if [[ -z "$interpreter" ]]; then
        say "CPython $version is claimed in $pyproject but not installed under $pyenv_root/versions"
        say "install it (pyenv install $version) or stop claiming it"
        return 1
    fi
    other_venv="$cache/py-test-venv-$version"
    other_wheels="$cache/py-wheelhouse-$version"
    say "CPython $version ($interpreter): fresh $other_venv, tests marked every_python"
    rm -rf "$other_venv"
    "$interpreter" -m venv "$other_venv"
    if ! "$other_venv/bin/python" -m pip download --quiet --no-index --find-links "$other_wheels" \
            -d "$other_wheels" "${every_deps[@]}" >/dev/null 2>&1; then
        say "downloading ${every_deps[*]} for CPython $version into $other_wheels (from the Python index)"
        "$other_venv/bin/python" -m pip download --quiet --only-binary :all: -d "$other_wheels" "${every_deps[@]}"
    fi
    "$other_venv/bin/python" -m pip install --quiet --no-index --no-deps "$wheel"
    "$other_venv/bin/python" -m pip install --quiet --no-index --find-links "$other_wheels" "${every_deps[@]}"
    (cd crates/edbx-py && "$other_venv/bin/python" -m pytest -m every_python -p no:cacheprovider "${every_files[@]}")
done
say "every other claimed CPython passed: ${claimed[*]} (the full suite on $main follows)"
}

if (($# > 0)) && [[ "${EDBX_EVERY_PYTHON:-0}" != 1 ]]; then
    say "pytest arguments given: not running the other interpreters (EDBX_EVERY_PYTHON=1 does)"
else
    every_python
fi

say "running pytest"
cd crates/edbx-py
exec "$venv/bin/python" -m pytest "$@"
