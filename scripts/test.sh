#!/usr/bin/env bash
# Runs every test of the workspace against the real EventDBX server, installing what is missing
# first (Debian packages when run as root, the pinned server into its cache folder).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/ensure-tools.sh
exec cargo test --workspace "$@"
