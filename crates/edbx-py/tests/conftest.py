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
import socket
import subprocess
import threading
import uuid
from typing import Iterator, List, Tuple

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "every_python: also run on every CPython the wheel claims (scripts/test-python.sh)",
    )


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

    def env(self) -> dict:
        """The environment of a process that connects with ``EventDBXClient.from_env()``."""
        env = dict(
            os.environ,
            EVENTDBX_HOST=self.host,
            EVENTDBX_PORT=str(self.port),
            EVENTDBX_TOKEN=self.token,
            EVENTDBX_TENANT_ID=self.tenant,
        )
        env.pop("EVENTDBX_NO_NOISE", None)
        return env

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


class HoldingProxy:
    """A loopback TCP proxy to a server. After `hold()` it keeps what clients send instead of
    forwarding it, and sets `received` when the first such bytes arrive: a call is then
    observably in flight to a server that does not answer. `release()` forwards what it kept
    and goes back to forwarding. When either side closes, the other side is closed too."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.received = threading.Event()
        self._lock = threading.Lock()
        self._holding = False
        self._held: List[Tuple[socket.socket, bytes]] = []
        self._sockets: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        with self._lock:
            self.received.clear()
            self._holding = True

    def release(self) -> None:
        with self._lock:
            self._holding = False
            for sink, data in self._held:
                try:
                    sink.sendall(data)
                except OSError:
                    pass
            self._held.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()  # the server is down: so is the proxy's far side
                continue
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    sink.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if from_client:
                with self._lock:
                    if self._holding:
                        self._held.append((sink, data))
                        self.received.set()
                        continue
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture
def holding_proxy(own_server: Server) -> Iterator[HoldingProxy]:
    """A `HoldingProxy` in front of the test's own server."""
    proxy = HoldingProxy(own_server.port)
    try:
        yield proxy
    finally:
        proxy.close()
