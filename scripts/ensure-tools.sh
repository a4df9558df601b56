#!/usr/bin/env bash
# Makes sure this machine has what the tests need besides Rust: the Debian packages of
# scripts/system-packages.sh (which says what it installs and why), then the pinned EventDBX
# server (scripts/install-server.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/system-packages.sh"
"$here/install-server.sh"
