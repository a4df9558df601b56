#!/usr/bin/env bash
# The one place that installs Debian packages for edbx's scripts. It says what it installs and
# why before doing it, and prints every step:
#
#   capnproto            `capnp`, the Cap'n Proto compiler: the EventDBX server's build, and the
#                        test that keeps edbx-wire's checked-in generated code current
#   clang libclang-dev   the EventDBX server's build (bindgen, for RocksDB)
#   librocksdb-dev       optional: the server links Debian's RocksDB instead of compiling its
#   libsnappy-dev        own (a 6½-minute build instead of 20)
#   valgrind             callgrind, for the instruction counts per call (crates/edbx-instr)
#   chromium             the browser `edbx ui`'s pages are tested in (scripts/test-ui.sh drives
#                        it with playwright-core), and the README's screenshots are taken with
#   nodejs npm           only when `node` is not on the PATH: playwright-core (pinned in
#                        crates/edbx-ui/tests/browser) runs on Node.js (20 or newer), and
#                        scripts/check-ui-assets.sh checks the vendored uPlot with `npm ci`
#   python3-venv         only when `python3 -m venv` does not work: the Python package is built
#                        and tested in virtual environments
#
# As root it runs `apt-get update` and `apt-get install`; otherwise it prints the command to run
# and fails. Installed packages are left alone. Other systems: install the equivalents by hand.
set -euo pipefail
say() { echo "system-packages: $*" >&2; }

required=(capnproto clang libclang-dev valgrind chromium)
optional=(librocksdb-dev libsnappy-dev)
python="${EDBX_PYTHON:-python3}"
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    required+=(python3 python3-venv)
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    required+=(nodejs npm)
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
    say "not a Debian-like system: make sure these are installed: ${required[*]} (optional: ${optional[*]})"
    exit 0
fi
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for pkg in "${required[@]}"; do installed "$pkg" || missing+=("$pkg"); done
missing_optional=()
for pkg in "${optional[@]}"; do installed "$pkg" || missing_optional+=("$pkg"); done
if ((${#missing[@]} + ${#missing_optional[@]} == 0)); then
    exit 0
fi

if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    if ((${#missing[@]})); then
        say "error: missing Debian packages: ${missing[*]}. Install them with:"
        say "    sudo apt-get update && sudo apt-get install -y ${missing[*]} ${missing_optional[*]}"
        exit 1
    fi
    say "optional packages missing (${missing_optional[*]}): the server will compile its own RocksDB"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
say "installing with apt-get: ${missing[*]} ${missing_optional[*]} (see the head of this script for why)"
say "+ apt-get update"
apt-get update -qq
if ((${#missing[@]})); then
    say "+ apt-get install -y ${missing[*]}"
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ((${#missing_optional[@]})); then
    say "+ apt-get install -y ${missing_optional[*]}"
    apt-get install -y -qq "${missing_optional[@]}" >/dev/null ||
        say "could not install ${missing_optional[*]}: the server will compile its own RocksDB"
fi
