#!/usr/bin/env bash
# Checks the Python package's types the way a user's type checker sees them:
#   1. mypy --strict on the package sources (python/eventdbx, its .pyi stubs included), at the
#      oldest Python mypy can target (3.10; the package supports 3.9, which mypy no longer targets)
#      and at the default one;
#   2. mypy --strict on eventdbx/aio.py itself (mypy reads aio.pyi in its place otherwise);
#   3. mypy --strict on examples/typed_usage.py and examples/sqlite_read_model.py against the
#      installed wheel (what a user's code sees: py.typed, the stubs, `from eventdbx import ...`);
#   4. mypy.stubtest: the stubs against the module as the built wheel installs it, with the
#      explained allowlist tools/stubtest-allowlist.txt.
#
# Environment: EDBX_CACHE_DIR (default $HOME/.cache/edbx), EDBX_PYTHON (default python3),
# EDBX_WHEEL (a wheel to check; built with maturin when unset), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { echo "check-python-types: $*" >&2; }

cache="${EDBX_CACHE_DIR:-$HOME/.cache/edbx}"
python="${EDBX_PYTHON:-python3}"
# Pinned, so that a new mypy release cannot turn CI red on its own.
mypy_version="2.4.1"
tools="$cache/py-build-venv"
venv="$cache/py-types-venv"
mkdir -p "$cache"

if [[ ! -x "$tools/bin/maturin" ]]; then
    say "creating $tools and installing maturin (from the Python index)"
    rm -rf "$tools"
    "$python" -m venv "$tools"
    "$tools/bin/python" -m pip install --quiet "maturin>=1.9.4,<2"
fi

wheel="${EDBX_WHEEL:-}"
if [[ -z "$wheel" ]]; then
    wheels=$(mktemp -d)
    trap 'rm -rf "$wheels"' EXIT
    say "building the wheel"
    (cd crates/edbx-py && "$tools/bin/maturin" build --quiet --out "$wheels" >&2)
    wheel=$(ls "$wheels"/*.whl)
fi

say "installing $(basename "$wheel") and mypy $mypy_version into a fresh $venv"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --no-deps "$wheel"
"$venv/bin/python" -m pip install --quiet "mypy==$mypy_version"

cd crates/edbx-py
mypy=("$venv/bin/python" -m mypy --strict --no-incremental)
say "mypy --strict python/eventdbx (Python 3.10 and $("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])'))"
"${mypy[@]}" --python-version 3.10 python/eventdbx
"${mypy[@]}" python/eventdbx
say "mypy --strict python/eventdbx/aio.py (the implementation behind aio.pyi)"
"${mypy[@]}" python/eventdbx/aio.py

# From a folder outside the sources, so that `eventdbx` is the installed wheel.
outside=$(mktemp -d)
trap 'rm -rf "$outside" "${wheels:-}"' EXIT
cp examples/typed_usage.py examples/sqlite_read_model.py "$outside/"
say "mypy --strict examples/typed_usage.py and sqlite_read_model.py against the installed wheel"
(cd "$outside" && "${mypy[@]}" typed_usage.py sqlite_read_model.py)
say "stubtest eventdbx against the installed wheel"
(cd "$outside" && "$venv/bin/python" -m mypy.stubtest eventdbx \
    --allowlist "$OLDPWD/tools/stubtest-allowlist.txt")
say "all type checks passed"
