#!/usr/bin/env bash
# Makes sure this machine has what the tests need besides Rust: the `capnp` compiler (the check
# that the generated Cap'n Proto code is current) and the pinned EventDBX server. As root the
# Debian packages are installed with apt-get; otherwise the script says what to run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v capnp >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "ensure-tools: installing capnproto with apt-get" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq capnproto >/dev/null
    else
        echo "ensure-tools: error: capnp not found; run: sudo apt-get install -y capnproto" >&2
        exit 1
    fi
fi

# The Python package's tests build a wheel in a virtual environment.
python="${EDBX_PYTHON:-python3}"
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "ensure-tools: installing python3 python3-venv with apt-get (the Python tests need venv)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
    else
        echo "ensure-tools: error: $python cannot create virtual environments; run: sudo apt-get install -y python3-venv" >&2
        exit 1
    fi
fi

"$here/install-server.sh"
