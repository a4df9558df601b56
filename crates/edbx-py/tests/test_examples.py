"""The examples run against a real server (mypy --strict checks them in
scripts/check-python-types.sh)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def test_typed_usage_runs(server, uid):
    env = dict(
        os.environ,
        EVENTDBX_HOST=server.host,
        EVENTDBX_PORT=str(server.port),
        EVENTDBX_TOKEN=server.token,
        EVENTDBX_TENANT_ID=server.tenant,
    )
    env.pop("EVENTDBX_NO_NOISE", None)
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "typed_usage.py"), uid],
        check=True, capture_output=True, text=True, env=env,
    ).stdout
    result = json.loads(out)
    assert result["total"] == "19.99" and result["version"] == 2
