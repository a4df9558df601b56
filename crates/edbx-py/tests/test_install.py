"""The wheel as a user installs it: a fresh virtual environment whose PATH has no Rust toolchain and
no ``capnp``, ``pip install`` of the wheel alone, then the README's quickstart against a real
server. ``EDBX_WHEEL`` names the wheel under test (scripts/test-python.sh sets it)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

from test_readme import README_QUICKSTART

CHECK = textwrap.dedent(
    """
    import json
    from eventdbx import EventDBXClient
    with EventDBXClient(token=TOKEN, tenant_id="tenant-123") as client:
        events = list(client.iter_events(aggregate_type="orders", aggregate_id="ord_123"))
        aggregate = client.get(aggregate_type="orders", aggregate_id="ord_123").aggregate
    print(json.dumps({"versions": [e["version"] for e in events],
                      "archived": aggregate.get("archived", False)}))
    """
)


def test_wheel_installs_and_runs_without_a_toolchain(own_server, tmp_path):
    wheel = os.environ.get("EDBX_WHEEL")
    assert wheel, "EDBX_WHEEL is not set: run scripts/test-python.sh, which builds the wheel"
    assert pathlib.Path(wheel).is_file(), f"EDBX_WHEEL={wheel} does not exist"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    # Only the virtual environment on PATH: no cargo, rustc or capnp to fall back on.
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "EVENTDBX_PORT": str(own_server.port)}
    for tool in ("cargo", "rustc", "capnp", "maturin"):
        assert shutil.which(tool, path=env["PATH"]) is None, tool

    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", wheel],
        check=True,
        env=env,
    )
    quickstart = README_QUICKSTART.replace('token="control_token"', f"token={own_server.token!r}")
    subprocess.run([str(python), "-c", quickstart], check=True, env=env, cwd=tmp_path)

    check = CHECK.replace("TOKEN", repr(own_server.token))
    out = subprocess.run(
        [str(python), "-c", check], check=True, env=env, cwd=tmp_path, capture_output=True, text=True
    ).stdout
    assert json.loads(out) == {"versions": [1, 2, 3], "archived": False}
