#!/usr/bin/env bash
# Runs the quickstart (crates/edbx/examples/quickstart.rs). With EVENTDBX_TOKEN set it talks to
# that server (EVENTDBX_HOST, EVENTDBX_PORT, EVENTDBX_TENANT_ID, EVENTDBX_NO_NOISE); otherwise it
# starts a local throwaway server, installing the pinned one first if this machine lacks it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -z "${EVENTDBX_TOKEN:-}" ]]; then
    scripts/install-server.sh >&2
fi
exec cargo run --quiet -p edbx --example quickstart
