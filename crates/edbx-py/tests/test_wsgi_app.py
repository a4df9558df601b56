"""The WSGI example (``examples/wsgi_orders.py``) under ``gunicorn --preload -w 4``, against a
real server. The app makes its blocking ``EventDBXClient`` at import time, in the master
process; the four workers are forked from it and use the client they inherited. Hundreds of
mixed reads and writes from several threads must all succeed, and every write land exactly
once."""

from __future__ import annotations

import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import gunicorn  # noqa: F401 - not installed is a failure here, not a skip

from _webapps import EXAMPLES, AppProcess, app_env, check_exactly_once, listening_socket, order_ids


def start_gunicorn(server, tmp_path, *flags: str) -> AppProcess:
    sock = listening_socket()
    try:
        return AppProcess(
            [sys.executable, "-m", "gunicorn", *flags, "--bind", f"fd://{sock.fileno()}",
             "--pythonpath", str(EXAMPLES), "--graceful-timeout", "30",
             # gunicorn's control socket would default to one path in $HOME for every instance.
             "--control-socket", str(tmp_path / "gunicorn.ctl"), "wsgi_orders:app"],
            sock, app_env(server), tmp_path / "gunicorn.log",
        )
    finally:
        sock.close()  # the master has its own copy


def test_preloaded_client_serves_forked_workers(server, tmp_path):
    app = start_gunicorn(server, tmp_path, "--preload", "--workers", "4")
    try:
        app.wait_ready()
        orders = order_ids(10)
        per_order = 20  # 10 creates, then 200 appends and 200 reads
        written = {order: [f"{order}-r{i}" for i in range(per_order)] for order in orders}
        calls = [("append", o, key) for o, keys in written.items() for key in keys]
        calls += [("get", o, None) for o in orders for _ in range(per_order)]
        random.Random(11).shuffle(calls)
        failures: list = []
        lock = threading.Lock()

        def one(call) -> None:
            kind, order, key = call
            try:
                if kind == "create":
                    status, body = app.request("POST", "/orders", {"order_id": order, "payload": {}})
                    ok = status == 201
                elif kind == "append":
                    status, body = app.request("POST", f"/orders/{order}/events", {
                        "event_type": "order.line_added", "payload": {"request": key}})
                    ok = status == 201 and body["event"]["aggregate_id"] == order
                else:
                    status, body = app.request("GET", f"/orders/{order}")
                    ok = status == 200 and body["aggregate_id"] == order
                if not ok:
                    with lock:
                        failures.append((kind, order, key, status, body))
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                with lock:
                    failures.append((kind, order, key, type(e).__name__, str(e)))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, [("create", o, None) for o in orders]))  # then the mixed load
            list(pool.map(one, calls))

        total = len(orders) + len(calls)
        assert not failures, (f"{len(failures)} of {total} requests failed; first: "
                              f"{failures[:5]}\n{app.log()[-4000:]}")
        check_exactly_once(server, written)
        # A graceful stop, and no worker crashed, hung or panicked on the way.
        code = app.stop()
        log = app.log()
        assert code == 0, log
        for sign in ("panicked", "SIGSEGV", "WORKER TIMEOUT", "SIGKILL", "Traceback"):
            assert sign not in log, log
    finally:
        app.stop()


def test_workers_recycled_during_an_outage_boot_and_recover(own_server, tmp_path):
    """Without --preload each worker imports the app, and --max-requests recycles workers:
    one that boots while EventDBX is down must not fail (gunicorn would stop every worker);
    it answers 503 until EventDBX is back, then serves."""
    app = start_gunicorn(own_server, tmp_path, "--workers", "2", "--max-requests", "2")
    try:
        app.wait_ready()
        status, _ = app.request("POST", "/orders", {"order_id": "before", "payload": {}})
        assert status == 201, app.log()[-4000:]
        own_server.command("stop")
        try:
            # Enough requests to recycle every worker at least twice while EventDBX is down.
            statuses = [app.request("GET", "/orders/before")[0] for _ in range(12)]
        finally:
            own_server.command("restart")
        assert set(statuses) <= {503}, (statuses, app.log()[-4000:])
        assert app.process.poll() is None, f"gunicorn stopped:\n{app.log()[-4000:]}"
        # Back: every worker, old or booted during the outage, serves again.
        deadline = time.monotonic() + 60
        served = 0
        while served < 8:
            assert time.monotonic() < deadline, app.log()[-4000:]
            status, body = app.request("GET", "/orders/before")
            if status == 200:
                assert body["aggregate_id"] == "before"
                served += 1
            else:
                assert status == 503, (status, body)
    finally:
        app.stop()
