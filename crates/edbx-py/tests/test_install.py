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

import pytest
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


def _fake_official_distribution(folder: pathlib.Path) -> None:
    """An installed-looking ``eventdbx`` 0.1.8 distribution (its dist-info only), as pip leaves
    it when the official client was installed before this one and then overwritten."""
    info = folder / "eventdbx-0.1.8.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: eventdbx\nVersion: 0.1.8\n")
    (info / "RECORD").write_text(
        "eventdbx/__init__.py,sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,1157\n"
        "eventdbx-0.1.8.dist-info/METADATA,,\n"
        "eventdbx-0.1.8.dist-info/RECORD,,\n"
    )


IMPORT = "import warnings; warnings.simplefilter('always'); import eventdbx"


@pytest.mark.every_python
def test_both_distributions_installed_is_reported_at_import(tmp_path):
    # Alone: no warning at all (an error if there were one).
    alone = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import eventdbx"], capture_output=True, text=True,
        cwd=tmp_path,
    )
    assert alone.returncode == 0, alone.stderr

    _fake_official_distribution(tmp_path / "site")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    both = subprocess.run(
        [sys.executable, "-c", IMPORT], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert both.returncode == 0, both.stderr
    assert "RuntimeWarning" in both.stderr
    assert "Both the 'edbx' and the 'eventdbx' distributions are installed" in both.stderr
    assert "edbx's files are the ones imported" in both.stderr
    assert "pip uninstall -y eventdbx edbx && pip install edbx" in both.stderr
    assert both.stderr.count("RuntimeWarning") == 1
