"""One client shared by many threads, and by many asyncio tasks: every write lands exactly once,
every read gets its own answer."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import eventdbx
from eventdbx import AsyncEventDBXClient, EventDBXClient


def versions_and_payloads(client: EventDBXClient, aggregate_type: str, aggregate_id: str):
    events = list(client.iter_events(aggregate_type=aggregate_type, aggregate_id=aggregate_id))
    return [e["version"] for e in events], [e["payload"] for e in events]


def test_threads_share_one_client_exactly_once(server, uid):
    threads, per_thread = 16, 12
    with EventDBXClient(**server.kwargs()) as client:
        barrier = threading.Barrier(threads)

        def writer(t: int) -> list:
            barrier.wait()
            seen = []
            for i in range(per_thread):
                client.apply(
                    aggregate_type="ledger",
                    aggregate_id=f"{uid}-{t % 4}",
                    event_type="entry",
                    payload_json=json.dumps({"thread": t, "i": i}),
                )
                # Reads interleaved with the writes must see their own aggregate.
                got = client.get(aggregate_type="ledger", aggregate_id=f"{uid}-{t % 4}")
                assert got.aggregate["aggregate_id"] == f"{uid}-{t % 4}"
                seen.append(got.aggregate["version"])
            return seen

        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(writer, range(threads)))
        assert all(len(r) == per_thread for r in results)

        written = set()
        for a in range(4):
            versions, payloads = versions_and_payloads(client, "ledger", f"{uid}-{a}")
            assert versions == list(range(1, len(versions) + 1))
            for p in payloads:
                key = (p["thread"], p["i"])
                assert key not in written, f"event {key} landed twice"
                written.add(key)
        assert written == {(t, i) for t in range(threads) for i in range(per_thread)}
        # The pool grew to serve the threads, and stayed within its (default) size.
        assert 1 <= client._native.open_connections <= eventdbx._native.DEFAULTS["pool_size"]


def test_asyncio_tasks_share_one_client_exactly_once(server, uid):
    tasks, per_task = 64, 3

    async def main() -> None:
        async with AsyncEventDBXClient(**server.kwargs()) as client:

            async def writer(t: int) -> None:
                for i in range(per_task):
                    await client.apply(
                        aggregate_type="ledger",
                        aggregate_id=f"{uid}-a{t % 8}",
                        event_type="entry",
                        payload_json=json.dumps({"task": t, "i": i}),
                    )
                    got = await client.get(aggregate_type="ledger", aggregate_id=f"{uid}-a{t % 8}")
                    assert got.aggregate["aggregate_id"] == f"{uid}-a{t % 8}"

            await asyncio.gather(*(writer(t) for t in range(tasks)))

            written = set()
            for a in range(8):
                events = [e async for e in client.iter_events(aggregate_type="ledger", aggregate_id=f"{uid}-a{a}")]
                assert [e["version"] for e in events] == list(range(1, len(events) + 1))
                for e in events:
                    key = (e["payload"]["task"], e["payload"]["i"])
                    assert key not in written, f"event {key} landed twice"
                    written.add(key)
            assert written == {(t, i) for t in range(tasks) for i in range(per_task)}

    asyncio.run(main())


def test_many_pipelined_reads_get_their_own_answers(server, uid):
    with EventDBXClient(**server.kwargs()) as client:
        for i in range(20):
            client.create(
                aggregate_type="item",
                aggregate_id=f"{uid}-{i}",
                event_type="created",
                payload_json=json.dumps({"i": i}),
            )

        def read(i: int) -> int:
            got = client.get(aggregate_type="item", aggregate_id=f"{uid}-{i % 20}")
            return int(got.aggregate["state"]["i"])

        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(read, range(2000)))
        assert answers == [i % 20 for i in range(2000)]
