"""Running the example web apps (``crates/edbx-py/examples``) as a user would: uvicorn or
gunicorn as a separate process, serving a listening socket that the test bound itself (port 0 on
loopback, handed over by file descriptor, so no other process can take the port in between), and
driven over real HTTP. Not a test module (no ``test_`` prefix)."""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import time
import uuid
from typing import Any, Dict, List, Tuple

from eventdbx import EventDBXClient

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def listening_socket() -> socket.socket:
    """A TCP socket listening on a free loopback port, to hand to the server process."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def app_env(server: Any, **extra: str) -> Dict[str, str]:
    """The process environment for an example app talking to ``server``."""
    env = dict(os.environ)
    env.update(
        EVENTDBX_HOST=server.host,
        EVENTDBX_PORT=str(server.port),
        EVENTDBX_TOKEN=server.token,
        EVENTDBX_TENANT_ID=server.tenant,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class AppProcess:
    """An app server process serving ``sock``; its output goes to ``log_path``."""

    def __init__(self, argv: List[str], sock: socket.socket, env: Dict[str, str],
                 log_path: pathlib.Path) -> None:
        self.port: int = sock.getsockname()[1]
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            argv, env=env, pass_fds=[sock.fileno()], stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, body: Any = None,
                timeout: float = 60.0) -> Tuple[int, Any]:
        """One HTTP request on a new connection; the status and the decoded JSON body."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = None if body is None else (
                body if isinstance(body, bytes) else json.dumps(body).encode())
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
        finally:
            conn.close()

    def wait_ready(self, path: str = "/healthz", deadline_s: float = 120.0) -> None:
        """Polls ``path`` until it answers 200. The socket listens before the app is loaded, so
        an early request simply waits in the backlog; each attempt is bounded so that a process
        that died is noticed. Fails with the process's output if it exits or the deadline
        passes."""
        deadline = time.monotonic() + deadline_s
        last: object = None
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise AssertionError(f"the app server exited with {code} before it was ready:\n"
                                     f"{self.log()}")
            try:
                status, _ = self.request("GET", path, timeout=2.0)
                if status == 200:
                    return
                last = f"status {status}"
            except (OSError, http.client.HTTPException) as e:
                last = e
        raise AssertionError(f"the app server was not ready within {deadline_s} s "
                             f"(last attempt: {last}):\n{self.log()}")

    def stop(self, timeout_s: float = 60.0) -> int:
        """Asks the server to shut down (SIGTERM, a graceful stop for uvicorn and gunicorn)
        and returns its exit code; kills its whole process group if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._kill_group()
        self._log.close()
        return self.process.returncode

    def _kill_group(self) -> None:
        # gunicorn's workers share the master's process group; none may outlive the test.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def order_ids(count: int) -> List[str]:
    run = uuid.uuid4().hex[:10]
    return [f"o-{run}-{i}" for i in range(count)]


def check_exactly_once(server: Any, written: Dict[str, List[str]]) -> None:
    """Reads every order back through a fresh client of the test's own: each order's events
    are numbered 1..n without gaps, its first is the creation, and the request keys of the
    appended events are exactly those the test sent, none missing, none twice."""
    with EventDBXClient(**server.kwargs()) as fresh:
        for order_id, keys in written.items():
            events = list(fresh.iter_events(aggregate_type="orders", aggregate_id=order_id))
            versions = [e["version"] for e in events]
            assert versions == list(range(1, len(events) + 1)), (order_id, versions)
            assert events[0]["event_type"] in ("order_created", "order.created"), events[0]
            landed = [e["payload"]["request"] for e in events[1:]]
            assert sorted(landed) == sorted(keys), (
                f"{order_id}: missing {sorted(set(keys) - set(landed))}, "
                f"unexpected {sorted(set(landed) - set(keys))}, "
                f"twice {sorted(k for k in set(landed) if landed.count(k) > 1)}"
            )

