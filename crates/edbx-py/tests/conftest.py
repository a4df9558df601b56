"""Real EventDBX servers for the tests, started by the Rust test kit's ``edbx-test-server``
binary (the same launcher the Rust tests use: own HOME, data directory and free loopback ports).

The binary is found through ``EDBX_TEST_SERVER``, else in the cargo target folder
(``$CARGO_TARGET_DIR`` or the repository's ``target``). A missing binary or server fails the
tests with the reason; nothing is skipped.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import uuid
from typing import Iterator

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


def _server_binary() -> pathlib.Path:
    explicit = os.environ.get("EDBX_TEST_SERVER")
    if explicit:
        return pathlib.Path(explicit)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("debug", "release"):
        candidate = target / profile / "edbx-test-server"
        if candidate.exists():
            return candidate
    raise RuntimeError(
        "edbx-test-server not found: build it with `cargo build -p edbx-testkit --bin "
        "edbx-test-server` (scripts/test.sh does) or point EDBX_TEST_SERVER at it"
    )


class Server:
    """One running server: ``host``, ``port``, ``token``, and commands of the test kit
    (``stop``, ``kill``, ``restart``, ``pause``, ``resume``, ``mint``)."""

    def __init__(self, *flags: str) -> None:
        self.flags = flags
        self.process = subprocess.Popen(
            [str(_server_binary()), *flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            code = self.process.wait()
            raise RuntimeError(
                f"edbx-test-server {' '.join(flags)} exited with {code} before the server was "
                "ready (its error is on stderr above)"
            )
        info = json.loads(line)
        self.host: str = info["host"]
        self.port: int = info["port"]
        self.token: str = info["token"]
        self.tenant: str = info["tenant"]
        self.plaintext_allowed = "--no-noise" in flags
        self.verbose = "--quiet-responses" not in flags

    def command(self, line: str) -> dict:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        if not reply.get("ok"):
            raise RuntimeError(f"test server command {line!r} failed: {reply.get('error')}")
        return reply

    def mint(self, group: str, user: str, *actions: str) -> str:
        return self.command(" ".join(["mint", group, user, *actions]))["token"]

    def kwargs(self, **overrides: object) -> dict:
        """Constructor keywords for a client of this server."""
        options: dict = {
            "token": self.token,
            "tenant_id": self.tenant,
            "host": self.host,
            "port": self.port,
        }
        options.update(overrides)
        return options

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


MODES = {
    "noise-verbose": (),
    "plaintext-verbose": ("--no-noise",),
    "noise-quiet": ("--quiet-responses",),
    "plaintext-quiet": ("--no-noise", "--quiet-responses"),
}


@pytest.fixture(scope="session")
def servers() -> Iterator[dict]:
    """One server per mode, shared by the session's tests (each test uses its own ids)."""
    started: dict = {}
    try:
        for name, flags in MODES.items():
            started[name] = Server(*flags)
        yield started
    finally:
        for server in started.values():
            server.close()


@pytest.fixture(params=list(MODES))
def mode_server(request: pytest.FixtureRequest, servers: dict) -> Server:
    """Each of the four servers in turn: Noise or plaintext allowed, verbose responses on or
    off. Tests using it run once per mode."""
    return servers[request.param]


@pytest.fixture
def server(servers: dict) -> Server:
    """The default server (Noise, verbose responses)."""
    return servers["noise-verbose"]


@pytest.fixture
def own_server() -> Iterator[Server]:
    """A server of the test's own, for tests that stop, pause or kill it."""
    started = Server()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def uid() -> str:
    """A fresh id, so tests sharing a server never see each other's aggregates."""
    return "t" + uuid.uuid4().hex[:12]
