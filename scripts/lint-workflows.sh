#!/usr/bin/env bash
# Checks the release workflows in .github/workflows with two linters from the Python index:
# check-jsonschema (each file against GitHub's workflow schema, bundled offline) and zizmor
# (a static analyser of workflows: injection, credential and pinning problems; run offline).
# Both are installed once into a virtual environment in the cache folder.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cache="${EDBX_CACHE_DIR:-$HOME/.cache/edbx}"
venv="$cache/lint-venv"
if [[ ! -x "$venv/bin/zizmor" || ! -x "$venv/bin/check-jsonschema" ]]; then
    echo "lint-workflows: installing zizmor and check-jsonschema into $venv (from the Python index)" >&2
    rm -rf "$venv"
    "${EDBX_PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "zizmor>=1.0" "check-jsonschema>=0.30"
fi
shopt -s nullglob
workflows=(.github/workflows/*.yml)
((${#workflows[@]})) || { echo "lint-workflows: no workflows found" >&2; exit 1; }
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"
"$venv/bin/zizmor" --offline --min-severity low "${workflows[@]}"
