"""Catch-up subscriptions from Python: the iterator, the async iterator, checkpoints, the
projection helper, and the SQLite read-model example killed mid-run. Each test follows an
aggregate type of its own (its uid), so tests sharing a server do not see each other."""

from __future__ import annotations

import asyncio
import json
import pathlib
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Dict, List

import pytest

from eventdbx import (
    AsyncEventDBXClient,
    EventDBXCheckpointError,
    EventDBXClient,
    EventDBXInputError,
    EventDBXTypeError,
    FileCheckpointStore,
    Projection,
    SubscribedEvent,
)

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def write(client: EventDBXClient, aggregate_type: str, aggregate_id: str, **payload: object) -> None:
    client.apply(
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        event_type="noted",
        payload_json=json.dumps(payload),
    )


def versions(events: List[SubscribedEvent]) -> Dict[str, List[int]]:
    out: Dict[str, List[int]] = {}
    for e in events:
        out.setdefault(e.aggregate_id, []).append(e.version)
    return out


def wait_until(what: str, condition, limit: float = 60.0) -> None:
    """Waits on a state (not a time); fails after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def test_catches_up_in_version_order_and_goes_on_from_a_checkpoint(server, uid):
    with EventDBXClient(**server.kwargs()) as client:
        for n in range(1, 4):
            write(client, uid, "a", n=n)
            write(client, uid, "b", n=n)
        feed = client.subscribe(aggregate_types=[uid], until_caught_up=True)
        events = list(feed)
        assert versions(events) == {"a": [1, 2, 3], "b": [1, 2, 3]}
        assert feed.caught_up
        assert events[0].event["aggregate_type"] == uid
        assert events[0].payload == {"n": 1}
        assert events[0].event_type == "noted"
        midway = events[2].checkpoint
        end = feed.checkpoint
        assert end is not None and end.startswith("esub1;")

        write(client, uid, "a", n=4)
        write(client, uid, "c", n=1)
        again = list(client.subscribe(aggregate_types=[uid], checkpoint=end, until_caught_up=True))
        assert versions(again) == {"a": [4], "c": [1]}
        rest = list(client.subscribe(aggregate_types=[uid], checkpoint=midway, until_caught_up=True))
        assert versions(events[:3] + rest) == {"a": [1, 2, 3, 4], "b": [1, 2, 3], "c": [1]}


def test_follows_live_writes_from_another_thread(server, uid):
    with EventDBXClient(**server.kwargs()) as client:
        feed = client.subscribe(aggregate_types=[uid], poll_interval=(0.01, 0.2))

        def writer() -> None:
            for n in range(60):
                write(client, uid, f"x{n % 6}", n=n)

        thread = threading.Thread(target=writer)
        thread.start()
        got: List[SubscribedEvent] = []
        deadline = time.monotonic() + 60
        while len(got) < 60:
            assert time.monotonic() < deadline, f"{len(got)} of 60 events delivered"
            batch = feed.next_batch(timeout=0.5)
            assert batch is not None
            got.extend(batch)
        thread.join()
        assert len(got) == 60
        assert all(v == list(range(1, 11)) for v in versions(got).values())


def test_the_asyncio_client_subscribes_as_an_async_iterator(server, uid):
    async def main() -> None:
        async with AsyncEventDBXClient(**server.kwargs()) as client:
            for n in range(1, 3):
                await client.apply(
                    aggregate_type=uid, aggregate_id="q", event_type="noted",
                    payload_json=json.dumps({"n": n}),
                )
            feed = client.subscribe(aggregate_types=[uid], until_caught_up=True)
            got = [e async for e in feed]
            assert versions(got) == {"q": [1, 2]}
            checkpoint = feed.checkpoint
            await client.apply(
                aggregate_type=uid, aggregate_id="q", event_type="noted", payload_json="{}"
            )
            again = client.subscribe(aggregate_types=[uid], checkpoint=checkpoint, until_caught_up=True)
            assert versions([e async for e in again]) == {"q": [3]}
            # A checkpoint that is not one is refused when the subscription starts.
            with pytest.raises(EventDBXCheckpointError):
                await client.subscribe(checkpoint="nonsense").next_batch()

    asyncio.run(main())


def test_bad_arguments_and_checkpoints_are_refused_before_sending(server, uid):
    with EventDBXClient(**server.kwargs()) as client:
        with pytest.raises(EventDBXTypeError):
            client.subscribe(aggregate_types=uid)  # type: ignore[arg-type]
        with pytest.raises(EventDBXInputError):
            client.subscribe(start="later")
        with pytest.raises(EventDBXInputError):
            client.subscribe(overlap=0)
        with pytest.raises(EventDBXCheckpointError) as raised:
            client.subscribe(checkpoint="esub1;t=*")
        assert isinstance(raised.value, ValueError)
        theirs = list(client.subscribe(aggregate_types=[uid], until_caught_up=True))
        assert theirs == []
        checkpoint = client.subscribe(aggregate_types=[uid], until_caught_up=True)
        list(checkpoint)
        with pytest.raises(EventDBXCheckpointError, match="aggregate types"):
            client.subscribe(aggregate_types=[uid + "x"], checkpoint=checkpoint.checkpoint)


def test_a_projection_keeps_its_checkpoint_in_a_file(server, uid, tmp_path):
    path = tmp_path / "projection.ckpt"
    seen: List[int] = []
    with EventDBXClient(**server.kwargs()) as client:
        for n in range(1, 4):
            write(client, uid, "p", n=n)

        def run() -> None:
            Projection(
                client, lambda e: seen.append(e.version), FileCheckpointStore(path),
                aggregate_types=[uid], until_caught_up=True, save_every=2,
            ).run()

        run()
        assert seen == [1, 2, 3]
        assert path.read_text().startswith("esub1;")
        run()
        assert seen == [1, 2, 3]
        write(client, uid, "p", n=4)
        run()
        assert seen == [1, 2, 3, 4]

        # A failing handler stops it; the event it failed on comes again next time.
        write(client, uid, "p", n=5)

        def fail(event: SubscribedEvent) -> None:
            raise RuntimeError("disk full")

        with pytest.raises(RuntimeError, match="disk full"):
            Projection(
                client, fail, FileCheckpointStore(path), aggregate_types=[uid], until_caught_up=True
            ).run()
        run()
        assert seen == [1, 2, 3, 4, 5]
    with pytest.raises(EventDBXCheckpointError):
        FileCheckpointStore(tmp_path / "x").save("not a checkpoint")


def test_an_async_projection_awaits_its_handler(server, uid, tmp_path):
    seen: List[int] = []

    async def handler(event: SubscribedEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event.version)

    async def main() -> None:
        async with AsyncEventDBXClient(**server.kwargs()) as client:
            for n in range(1, 3):
                await client.apply(
                    aggregate_type=uid, aggregate_id="z", event_type="noted", payload_json="{}"
                )
            await Projection(
                client, handler, FileCheckpointStore(tmp_path / "a.ckpt"),
                aggregate_types=[uid], until_caught_up=True,
            ).run_async()

    asyncio.run(main())
    assert seen == [1, 2]


def _applied(database: pathlib.Path) -> int:
    """Events the model holds (0 before the example made its tables)."""
    if not database.exists():
        return 0
    with sqlite3.connect(database, timeout=30) as db:
        try:
            row = db.execute(
                "SELECT COALESCE(SUM(events), 0), (SELECT COUNT(*) FROM checkpoints) FROM accounts"
            ).fetchone()
        except sqlite3.OperationalError:
            return 0  # the tables are not there yet
    return int(row[0]) if row[1] else 0


def test_the_sqlite_read_model_killed_mid_run_equals_a_fold_of_the_store(server, uid, tmp_path):
    database = tmp_path / "model.db"
    env = server.env()
    command = [sys.executable, str(EXAMPLES / "sqlite_read_model.py"), str(database), "--type", uid]
    stop = threading.Event()
    written: List[int] = []

    def writer() -> None:
        with EventDBXClient(**server.kwargs()) as client:
            n = 0
            while not stop.is_set() or n < 120:
                n += 1
                write(client, uid, f"acct{n % 15}", amount=n, status=f"s{n}")
            written.append(n)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for run in range(2):
            before = _applied(database)
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL
            )
            # Killed once it has committed batches past where it started.
            wait_until(f"run {run} commits events", lambda: _applied(database) >= before + 20)
            process.send_signal(signal.SIGKILL)
            process.wait()
    finally:
        stop.set()
        thread.join()
    subprocess.run(command + ["--until-caught-up"], env=env, check=True, timeout=120)

    # The fold of the store, computed here from every event.
    expected = {}
    with EventDBXClient(**server.kwargs()) as client:
        for aggregate in client.iter_aggregates(filter_expr=f"aggregate_type = '{uid}'"):
            events = list(client.iter_events(aggregate_type=uid, aggregate_id=aggregate["aggregate_id"]))
            expected[aggregate["aggregate_id"]] = (
                len(events),
                len(events),
                float(sum(e["payload"]["amount"] for e in events)),
                events[-1]["payload"]["status"],
            )
    with sqlite3.connect(database) as db:
        model = {
            row[0]: tuple(row[1:])
            for row in db.execute("SELECT aggregate_id, version, events, total, status FROM accounts")
        }
    assert sum(count for count, *_ in expected.values()) == written[0]
    assert model == expected


def _written(client: EventDBXClient, aggregate_type: str, aggregates: int, events: int) -> threading.Thread:
    """A thread that appends `events` events spread over `aggregates` aggregates."""

    def run() -> None:
        for n in range(events):
            write(client, aggregate_type, f"a{n % aggregates}", n=n)

    writer = threading.Thread(target=run)
    writer.start()
    return writer


def _exactly_once(events: List[SubscribedEvent], aggregates: int, total: int) -> None:
    seen = versions(events)
    per = {f"a{i}": list(range(1, total // aggregates + 1)) for i in range(aggregates)}
    assert seen == per, {k: (len(v), v[:3]) for k, v in seen.items()}


def test_ctrl_c_at_any_moment_of_a_live_subscription_loses_no_event(server, uid):
    """Ctrl-C that a program catches and goes on from: the batch being handed over when the
    signal is handled (as the call returns) is handed over again by the next call, and the
    checkpoint never passes an event that was not yielded."""
    total, aggregates = 300, 6
    inside = threading.Event()

    def interrupt(signum, frame):
        # Once per call, and only while the subscription is being asked for events: never
        # in the handling of the previous interrupt.
        if inside.is_set():
            inside.clear()
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    stop = threading.Event()

    def ticker() -> None:
        while not stop.wait(0.003):
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    with EventDBXClient(**server.kwargs()) as client:
        feed = client.subscribe(aggregate_types=[uid])
        writer = _written(client, uid, aggregates, total)
        ticking = threading.Thread(target=ticker)
        ticking.start()
        got: List[SubscribedEvent] = []
        interrupted = 0
        deadline = time.monotonic() + 60
        try:
            while len(got) < total:
                assert time.monotonic() < deadline, f"{len(got)} of {total} events in 60 s"
                try:
                    inside.set()
                    batch = feed.next_batch(10, timeout=5)
                    inside.clear()
                except KeyboardInterrupt:
                    interrupted += 1
                    continue
                assert batch, f"no event for 5 s after {len(got)} of {total}"
                got.extend(batch)
        finally:
            inside.clear()
            stop.set()
            ticking.join()
            writer.join()
            signal.signal(signal.SIGINT, previous)
        assert interrupted > 0, "the signal never arrived during a call"
        _exactly_once(got, aggregates, total)
        # Nothing is left behind the checkpoint either.
        again = client.subscribe(checkpoint=feed.checkpoint, aggregate_types=[uid], until_caught_up=True)
        assert list(again) == []


def test_cancelled_async_next_batch_loses_no_event(server, uid):
    """asyncio.wait_for around next_batch while events arrive: a batch the core handed over as
    the wait was cancelled comes with the next call."""
    import random

    total, aggregates = 300, 6

    async def main() -> List[SubscribedEvent]:
        async with AsyncEventDBXClient(**server.kwargs()) as client:
            feed = client.subscribe(aggregate_types=[uid])

            async def writer() -> None:
                for n in range(total):
                    await client.apply(
                        aggregate_type=uid, aggregate_id=f"a{n % aggregates}", event_type="noted",
                        payload_json=json.dumps({"n": n}),
                    )

            writing = asyncio.ensure_future(writer())
            got: List[SubscribedEvent] = []
            cancelled = 0
            rng = random.Random(7)
            deadline = time.monotonic() + 60
            while len(got) < total:
                assert time.monotonic() < deadline, f"{len(got)} of {total} events in 60 s"
                try:
                    batch = await asyncio.wait_for(feed.next_batch(10), timeout=rng.uniform(0, 0.01))
                except asyncio.TimeoutError:
                    cancelled += 1
                    continue
                got.extend(batch)
            await writing
            assert cancelled > 0
            return got

    _exactly_once(asyncio.run(main()), aggregates, total)


def test_a_checkpoint_file_that_holds_no_checkpoint_is_refused(tmp_path):
    store = FileCheckpointStore(tmp_path / "ckpt")
    assert store.load() is None
    for content in (b"", b"  \n", b"\xff\xfe not text"):
        (tmp_path / "ckpt").write_bytes(content)
        with pytest.raises(EventDBXCheckpointError, match="holds no checkpoint"):
            store.load()
