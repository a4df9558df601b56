"""The ASGI example (``examples/asgi_orders.py``) under uvicorn, against a real server: one
``AsyncEventDBXClient`` made in the app's lifespan serves many concurrent HTTP requests, every
write lands exactly once, and failures reach the HTTP caller as the right statuses."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time

import httpx
import uvicorn  # noqa: F401 - not installed is a failure here, not a skip

from _webapps import EXAMPLES, AppProcess, app_env, check_exactly_once, listening_socket, order_ids


def start_uvicorn(server, tmp_path, **env: str) -> AppProcess:
    sock = listening_socket()
    try:
        return AppProcess(
            [sys.executable, "-m", "uvicorn", "--fd", str(sock.fileno()),
             "--app-dir", str(EXAMPLES), "--no-access-log", "asgi_orders:app"],
            sock, app_env(server, **env), tmp_path / "uvicorn.log",
        )
    finally:
        sock.close()  # the child has its own copy


def assert_clean_shutdown(app: AppProcess) -> None:
    """SIGTERM stops uvicorn gracefully: the lifespan's shutdown (closing the client) ran to the
    end, and uvicorn exits by the signal it was given, as it does after a graceful stop."""
    code = app.stop()
    log = app.log()
    assert code in (0, -signal.SIGTERM), log
    assert "Application shutdown complete." in log, log
    assert "Traceback" not in log, log


def test_concurrent_requests_through_one_client_land_exactly_once(server, tmp_path):
    app = start_uvicorn(server, tmp_path)
    try:
        app.wait_ready()
        orders = order_ids(8)
        per_order = 20
        written = {order: [f"{order}-r{i}" for i in range(per_order)] for order in orders}

        async def drive() -> None:
            limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.port}",
                                         limits=limits, timeout=120.0) as http:
                created = await asyncio.gather(*(
                    http.post("/orders", json={"order_id": o, "payload": {"total": 10}})
                    for o in orders))
                assert [r.status_code for r in created] == [201] * len(orders), \
                    [r.text for r in created]
                assert created[0].json()["event"]["aggregate_id"] == orders[0]

                # Appends and reads interleaved, 32 in flight at a time.
                calls = [("append", o, key) for o, keys in written.items() for key in keys]
                calls += [("get", o, None) for o in orders for _ in range(per_order)]
                random.Random(7).shuffle(calls)

                async def one(kind: str, order: str, key) -> None:
                    if kind == "append":
                        r = await http.post(f"/orders/{order}/events", json={
                            "event_type": "order.line_added", "payload": {"request": key}})
                        assert r.status_code == 201, r.text
                        assert r.json()["event"]["aggregate_id"] == order
                    else:
                        r = await http.get(f"/orders/{order}")
                        assert r.status_code == 200, r.text
                        assert r.json()["aggregate_id"] == order

                await asyncio.gather(*(one(*call) for call in calls))

                final = await http.get(f"/orders/{orders[0]}")
                assert final.json()["version"] == per_order + 1

                # Caller errors are 4xx with a reason, never a 500.
                again = await http.post("/orders", json={"order_id": orders[0], "payload": {}})
                assert again.status_code == 409, again.text
                missing = await http.get(f"/orders/{orders[0]}-nope")
                assert missing.status_code == 404 and missing.json()["error"] == "not_found"
                for path, body in [
                    (f"/orders/{orders[0]}/events", b"{not json"),
                    (f"/orders/{orders[0]}/events", b'{"event_type": "x", "payload": [1]}'),
                    (f"/orders/{orders[0]}/events", b'{"event_type": "Not Valid", "payload": {}}'),
                    ("/orders/-bad-id/events", b'{"event_type": "order.paid", "payload": {}}'),
                    ("/orders", b'{"payload": {}}'),
                ]:
                    r = await http.post(path, content=body,
                                        headers={"content-type": "application/json"})
                    assert r.status_code == 400, (path, body, r.status_code, r.text)
                    assert r.json()["error"] == "bad_request"

        asyncio.run(drive())
        check_exactly_once(server, written)
        assert_clean_shutdown(app)
    finally:
        app.stop()


def test_hung_and_stopped_server_map_to_504_and_503_and_a_lost_write_is_not_a_success(
        own_server, tmp_path):
    app = start_uvicorn(own_server, tmp_path, ORDERS_READ_TIMEOUT="2")
    try:
        app.wait_ready()
        [order] = order_ids(1)
        status, _ = app.request("POST", "/orders", {"order_id": order, "payload": {}})
        assert status == 201

        own_server.command("pause")
        try:
            status, body = app.request("POST", f"/orders/{order}/events",
                                       {"event_type": "order.paid", "payload": {"request": "p"}})
            assert (status, body["error"], body["outcome"]) == (504, "outcome_unknown", "unknown")
            status, body = app.request("GET", f"/orders/{order}")
            assert (status, body["error"]) == (504, "timeout")
        finally:
            own_server.command("resume")

        # The server applies the write it had received; the app did not send it twice.
        deadline = time.monotonic() + 60
        while True:
            status, body = app.request("GET", f"/orders/{order}")
            assert status == 200, body
            if body["version"] == 2:
                break
            assert body["version"] == 1 and time.monotonic() < deadline, body

        own_server.command("stop")
        status, body = app.request("GET", f"/orders/{order}")
        assert (status, body["error"]) == (503, "unavailable"), body
        assert_clean_shutdown(app)
    finally:
        app.stop()
