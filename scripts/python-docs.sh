#!/usr/bin/env bash
# Builds the Python API reference from the docstrings with pdoc (from the Python index), against
# the wheel as installed, and fails on any warning pdoc gives (pdoc has no -W: its warnings go to
# stderr, which is captured; anything there fails the build).
#
# Usage: scripts/python-docs.sh [--out DIR]   (default: a temporary folder, removed afterwards)
# Environment: EDBX_CACHE_DIR (default $HOME/.cache/edbx), EDBX_PYTHON (default python3),
# EDBX_WHEEL (a wheel to document; built with maturin when unset), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { echo "python-docs: $*" >&2; }

out=""
if [[ "${1:-}" == "--out" && -n "${2:-}" ]]; then
    out="$2"
elif (($#)); then
    say "usage: scripts/python-docs.sh [--out DIR]"
    exit 2
fi

cache="${EDBX_CACHE_DIR:-$HOME/.cache/edbx}"
python="${EDBX_PYTHON:-python3}"
pdoc_version="16.0.0"
tools="$cache/py-build-venv"
venv="$cache/py-docs-venv"
mkdir -p "$cache"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

if [[ ! -x "$tools/bin/maturin" ]]; then
    say "creating $tools and installing maturin (from the Python index)"
    rm -rf "$tools"
    "$python" -m venv "$tools"
    "$tools/bin/python" -m pip install --quiet "maturin>=1.9.4,<2"
fi
wheel="${EDBX_WHEEL:-}"
if [[ -z "$wheel" ]]; then
    say "building the wheel"
    (cd crates/edbx-py && "$tools/bin/maturin" build --quiet --out "$scratch/wheel" >&2)
    wheel=$(ls "$scratch"/wheel/*.whl)
fi
if [[ ! -x "$venv/bin/pdoc" ]] || ! "$venv/bin/python" -m pip show --quiet "pdoc" 2>/dev/null | grep -qx "Version: $pdoc_version"; then
    say "creating $venv with pdoc $pdoc_version (from the Python index)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "pdoc==$pdoc_version"
fi
"$venv/bin/python" -m pip install --quiet --no-deps --force-reinstall "$wheel"

# The public modules; pdoc follows a package's __all__, which lists names, not submodules.
modules=(eventdbx eventdbx.client eventdbx.aio eventdbx.errors eventdbx.types eventdbx.noise
         eventdbx.control_schema)
target="${out:-$scratch/html}"
say "pdoc ${modules[*]} -> $target"
status=0
(cd "$scratch" && "$venv/bin/python" -m pdoc --docformat restructuredtext --output-directory "$target" \
    "${modules[@]}") 2>"$scratch/warnings" || status=$?
if ((status != 0)) || [[ -s "$scratch/warnings" ]]; then
    cat "$scratch/warnings" >&2
    say "pdoc failed or warned (exit $status); warnings are errors here"
    exit 1
fi
for module in "${modules[@]}"; do
    page="$target/${module//.//}.html"
    [[ -s "$page" ]] || { say "no page for $module ($page)"; exit 1; }
done
say "API reference built: ${#modules[@]} modules, no warnings"
