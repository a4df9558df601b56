"""The examples run against a real server (mypy --strict checks them in
scripts/check-python-types.sh)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def test_typed_usage_runs(server, uid):
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "typed_usage.py"), uid],
        check=True, capture_output=True, text=True, env=server.env(),
    ).stdout
    result = json.loads(out)
    assert result["total"] == "19.99" and result["version"] == 2
