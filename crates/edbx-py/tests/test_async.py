"""The asyncio client: the same operations as coroutines, checked by reading back."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from eventdbx import (
    AsyncEventDBXClient,
    EventDBXAPIError,
    EventDBXConnectionError,
    EventDBXHandshakeError,
    GetAggregateResult,
)


def run(coro):
    return asyncio.run(coro)


def test_every_operation_as_a_coroutine(mode_server, uid):
    async def main() -> None:
        use_noise = not mode_server.plaintext_allowed
        kwargs = mode_server.kwargs(use_noise=use_noise)
        if use_noise:
            client = AsyncEventDBXClient(**kwargs)
        else:
            with pytest.warns(RuntimeWarning):
                client = AsyncEventDBXClient(**kwargs)
        assert not client.connected
        async with client:
            assert client.connected
            created = await client.create(
                aggregate_type="orders", aggregate_id=uid, event_type="created",
                payload_json=json.dumps({"total": 42.15}),
            )
            assert (created is True) == (not mode_server.verbose)
            await client.apply(
                aggregate_type="orders", aggregate_id=uid, event_type="paid",
                payload_json='{"status": "paid"}', note="till",
            )
            await client.send_event(
                aggregate_type="orders", aggregate_id=uid, event_type="noted", payload_json='{"n": 1}'
            )
            got = await client.get(aggregate_type="orders", aggregate_id=uid)
            assert isinstance(got, GetAggregateResult)
            assert got.aggregate["state"] == {"total": "42.15", "status": "paid", "n": "1"}
            selection = await client.select(aggregate_type="orders", aggregate_id=uid, fields=["total"])
            assert selection.selection == {"total": 42.15}
            root = await client.verify(aggregate_type="orders", aggregate_id=uid)
            assert root == got.aggregate["merkle_root"]
            await client.patch(
                aggregate_type="orders", aggregate_id=uid, event_type="fixed",
                patches=[{"op": "replace", "path": "/total", "value": 40}],
            )
            page = await client.events(aggregate_type="orders", aggregate_id=uid, take=2)
            assert [e["version"] for e in page.events] == [1, 2]
            rest = [e["version"] async for e in client.iter_events(aggregate_type="orders", aggregate_id=uid, cursor=page.next_cursor)]
            assert rest == [3, 4]
            listed = await client.list(filter_expr=f"aggregate_id = '{uid}'")
            assert [a["aggregate_id"] for a in listed.aggregates] == [uid]
            streamed = [a["aggregate_id"] async for a in client.iter_aggregates(filter_expr=f"aggregate_id = '{uid}'")]
            assert streamed == [uid]
            await client.archive(aggregate_type="orders", aggregate_id=uid, note="done")
            assert (await client.get(aggregate_type="orders", aggregate_id=uid)).aggregate["archived"]
            await client.restore(aggregate_type="orders", aggregate_id=uid)
            snapshot = json.loads(await client.create_snapshot(aggregate_type="orders", aggregate_id=uid))
            assert snapshot["version"] == 4
            fetched = await client.get_snapshot(snapshot_id=int(snapshot["snapshot_id"]))
            assert fetched.snapshot["state"]["total"] == "40"
            assert len((await client.list_snapshots(aggregate_type="orders", aggregate_id=uid)).snapshots) == 1
            assert isinstance(json.loads(await client.list_schemas()), dict)
            assert (await client.tenant_quota_recalc(tenant_id="other")) >= 0
            with pytest.raises(EventDBXAPIError) as missing:
                await client.verify(aggregate_type="orders", aggregate_id=uid + "x")
            assert missing.value.code == "aggregate_not_found"
        assert not client.connected
        with pytest.raises(EventDBXConnectionError):
            await client.get(aggregate_type="orders", aggregate_id=uid)

    run(main())


def test_lazy_connect_and_rejected_token(server, uid):
    async def main() -> None:
        client = AsyncEventDBXClient(**server.kwargs())
        # The first call opens the connection.
        assert (await client.get(aggregate_type="orders", aggregate_id=uid)).found is False
        assert client.connected
        await client.close()
        with pytest.raises(EventDBXHandshakeError) as refused:
            await AsyncEventDBXClient(**server.kwargs(token=server.token[:-4] + "AAAA")).connect()
        assert server.token not in str(refused.value)

    run(main())


def test_cancelled_call_leaves_the_connection_usable(own_server, holding_proxy, uid):
    async def main() -> None:
        async with AsyncEventDBXClient(**own_server.kwargs(port=holding_proxy.port, pool_size=1)) as client:
            await client.create(aggregate_type="orders", aggregate_id=uid, event_type="created", payload_json="{}")
            holding_proxy.hold()
            try:
                slow = asyncio.ensure_future(client.get(aggregate_type="orders", aggregate_id=uid))
                # Wait until the read is on the wire (held by the proxy), then cancel it.
                sent = await asyncio.get_running_loop().run_in_executor(None, holding_proxy.received.wait, 30)
                assert sent, "the read never left the client"
                slow.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await slow
            finally:
                holding_proxy.release()
            # The late reply of the cancelled read is discarded; this call gets its own.
            got = await client.select(aggregate_type="orders", aggregate_id=uid, fields=["x"])
            assert got.selection == {"x": None}
            assert (await client.get(aggregate_type="orders", aggregate_id=uid)).aggregate["version"] == 1

    run(main())


def test_interpreter_exits_cleanly_after_many_concurrent_calls(server, uid, tmp_path):
    """Results handed to asyncio from the runtime's threads never race the interpreter's exit."""
    script = tmp_path / "burst.py"
    script.write_text(
        "import asyncio, sys\n"
        "from eventdbx import AsyncEventDBXClient\n"
        "async def main():\n"
        "    client = AsyncEventDBXClient(token=sys.argv[1], tenant_id='default', port=int(sys.argv[2]))\n"
        "    await asyncio.gather(*(client.get(aggregate_type='orders', aggregate_id=f'x{i}') for i in range(300)))\n"
        "    await asyncio.gather(*(client.apply(aggregate_type='orders', aggregate_id=sys.argv[3], event_type='e', payload_json='{}') for i in range(20)))\n"
        "asyncio.run(main())\n"
    )
    for _ in range(5):
        done = subprocess.run(
            [sys.executable, str(script), server.token, str(server.port), uid],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr[-2000:]


def test_calls_on_two_loops_run_in_turn_on_one_thread_all_complete(server, uid):
    """A thread may run several event loops in turn; a call left in flight on one loop while
    another loop makes calls still completes when its loop runs again."""
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        client = AsyncEventDBXClient(**server.kwargs())

        async def start() -> "asyncio.Task":
            await client.create(aggregate_type="orders", aggregate_id=uid, event_type="created", payload_json="{}")
            return asyncio.ensure_future(client.get(aggregate_type="orders", aggregate_id=uid))

        pending = first.run_until_complete(start())

        async def elsewhere() -> int:
            other = AsyncEventDBXClient(**server.kwargs())
            found = await other.get(aggregate_type="orders", aggregate_id=uid)
            await other.close()
            return found.aggregate["version"]

        assert second.run_until_complete(elsewhere()) == 1
        got = first.run_until_complete(asyncio.wait_for(pending, timeout=30))
        assert got.found and got.aggregate["version"] == 1
        first.run_until_complete(client.close())
    finally:
        first.close()
        second.close()
