"""``export_parquet``: the files read with DuckDB and Polars agree with the store read through
the client (counts, versions, timestamps, a group-by), the partitioned layout reads as one
dataset, non-ASCII and large payloads survive, and an interrupted export leaves nothing that
looks complete."""

from __future__ import annotations

import asyncio
import datetime
import json
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from typing import Dict, List, Tuple

import duckdb
import polars as pl
import pytest

from eventdbx import (
    AsyncEventDBXClient,
    EventDBXClient,
    EventDBXExportIncompleteError,
    EventDBXInputError,
    EventDBXTypeError,
)

NON_ASCII = "Zürich ✓ 日本語 🚚"
#: A payload close to the largest event row the server can list (7,605 bytes).
LARGE = "".join(chr(ord("a") + i % 26) for i in range(6000))


def seed(client: EventDBXClient) -> None:
    """Orders with several versions, customers with non-ASCII and large payloads, one archived."""
    for i in range(5):
        client.create(
            aggregate_type="orders", aggregate_id=f"o-{i}", event_type="order.placed",
            payload_json={"total": 10 + i, "city": NON_ASCII}, note="till 3",
            metadata_json={"@source": "pos"},
        )
    for i in range(3):
        client.apply(
            aggregate_type="orders", aggregate_id=f"o-{i}", event_type="order.paid",
            payload_json={"status": "paid"},
        )
    client.apply(
        aggregate_type="orders", aggregate_id="o-0", event_type="order.shipped",
        payload_json={"status": "shipped"},
    )
    client.create(
        aggregate_type="customers", aggregate_id="c-1", event_type="customer.joined",
        payload_json={"name": NON_ASCII, "bio": LARGE},
    )
    client.create(
        aggregate_type="customers", aggregate_id="c-2", event_type="customer.joined",
        payload_json={"name": "gone"},
    )
    client.archive(aggregate_type="customers", aggregate_id="c-2")


def bulk(server, counts: Dict[str, int]) -> None:
    """One-event aggregates (creates: the writes the server takes fastest), 32 at a time."""

    async def main() -> None:
        async with AsyncEventDBXClient(**server.kwargs()) as client:
            jobs = [(t, i) for t, n in counts.items() for i in range(n)]
            for start in range(0, len(jobs), 32):
                await asyncio.gather(*(
                    client.create(
                        aggregate_type=t, aggregate_id=f"b-{i:06d}", event_type="bulk.loaded",
                        payload_json={"i": i, "label": f"n° {i}"},
                    )
                    for t, i in jobs[start:start + 32]
                ))

    asyncio.run(main())


def micros(text: str) -> datetime.datetime:
    """An RFC 3339 time from the server, cut to microseconds as the export writes it."""
    match = re.fullmatch(r"(.+?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    assert match, text
    head, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    return datetime.datetime.fromisoformat(f"{head}.{(fraction or '')[:6]:0<6}{zone}")


def store_events(client: EventDBXClient) -> List[dict]:
    """Every event of every active aggregate, as the client reads them."""
    events = []
    for aggregate in client.iter_aggregates():
        events.extend(client.iter_events(
            aggregate_type=aggregate["aggregate_type"], aggregate_id=aggregate["aggregate_id"]
        ))
    return events


def parquet_files(root: pathlib.Path) -> List[pathlib.Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(".parquet"))


def test_an_export_of_events_agrees_with_the_store_in_duckdb_and_polars(own_server, tmp_path):
    with EventDBXClient(**own_server.kwargs()) as client:
        seed(client)
        out = tmp_path / "events.parquet"
        rows = client.export_parquet(out, skip_archived=True)
        events = store_events(client)
        assert rows == len(events) == 10
        assert [p.name for p in tmp_path.iterdir()] == ["events.parquet"]

        db = duckdb.connect()
        table = f"read_parquet('{out}')"
        assert db.sql(f"SELECT count(*) FROM {table}").fetchall()[0] == (rows,)
        # Versions: every aggregate's versions are 1..its version, as the client reads it.
        versions = dict(db.sql(
            f"SELECT aggregate_type || '/' || aggregate_id, list(version ORDER BY version) "
            f"FROM {table} GROUP BY ALL"
        ).fetchall())
        for aggregate in client.iter_aggregates():
            key = f"{aggregate['aggregate_type']}/{aggregate['aggregate_id']}"
            assert versions[key] == list(range(1, aggregate["version"] + 1))
        # Timestamps, ids, writers and contents, event by event.
        written = {
            (r[0], r[1], r[2]): r[3:]
            for r in db.sql(
                f"SELECT aggregate_type, aggregate_id, version, created_at, event_id, event_type, "
                f"event_type_normalized, payload, metadata, note, issued_by_user FROM {table}"
            ).fetchall()
        }
        for e in events:
            created, event_id, event_type, normalized, payload, metadata, note, user = written[
                (e["aggregate_type"], e["aggregate_id"], e["version"])
            ]
            assert created == micros(e["metadata"]["created_at"])
            assert created.utcoffset() == datetime.timedelta(0)
            assert event_id == int(e["metadata"]["event_id"])
            assert normalized == e["event_type"]
            assert event_type == e.get("event_type_raw", e["event_type"])
            assert json.loads(payload) == e["payload"]
            assert (json.loads(metadata) if metadata else None) == (e.get("extensions") or None)
            assert note == e["metadata"].get("note")
            assert user == e["metadata"]["issued_by"]["user"]
        # A group-by agrees with the client's own count.
        by_type = dict(db.sql(f"SELECT event_type, count(*) FROM {table} GROUP BY ALL").fetchall())
        assert by_type == dict(Counter(e.get("event_type_raw", e["event_type"]) for e in events))
        # JSON stays queryable, and non-ASCII and large payloads survive.
        assert db.sql(
            f"SELECT DISTINCT payload->>'city' FROM {table} WHERE event_type = 'order.placed'"
        ).fetchall() == [(NON_ASCII,)]
        assert db.sql(
            f"SELECT length(payload->>'bio'), payload->>'name' FROM {table} WHERE aggregate_id = 'c-1'"
        ).fetchall()[0] == (len(LARGE), NON_ASCII)

        frame = pl.read_parquet(out)
        assert frame.height == rows
        assert frame.schema["created_at"] == pl.Datetime("us", "UTC")
        assert frame.schema["version"] == pl.Int64 and frame.schema["event_id"] == pl.Int64
        counts = frame.group_by("aggregate_type").len().sort("aggregate_type").rows()
        assert counts == [("customers", 1), ("orders", 9)]
        assert frame.filter(pl.col("aggregate_id") == "o-0")["version"].max() == 3


def test_archived_aggregates_left_out_raise_with_the_files_in_place(own_server, tmp_path):
    with EventDBXClient(**own_server.kwargs()) as client:
        seed(client)
        out = tmp_path / "events.parquet"
        with pytest.raises(EventDBXExportIncompleteError) as incomplete:
            client.export_parquet(str(out))
        error = incomplete.value
        assert (error.rows, error.aggregates, error.archived) == (10, 6, 1)
        assert error.archived_first == ["customers/c-2"]
        assert error.files == [str(out)]
        assert error.kind == "export_incomplete"
        assert "customers/c-2" in str(error) and "archived" in str(error)
        assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}')").fetchall()[0] == (10,)


def test_an_export_of_aggregates_holds_their_state(own_server, tmp_path):
    with EventDBXClient(**own_server.kwargs()) as client:
        seed(client)
        out = tmp_path / "aggregates.parquet"
        assert client.export_parquet(out, what="aggregates", include_archived=True) == 7
        listed = {a["aggregate_id"]: a for a in client.iter_aggregates(include_archived=True)}
        rows = duckdb.sql(
            f"SELECT aggregate_id, version, state, archived, updated_at FROM read_parquet('{out}')"
        ).fetchall()
        assert {r[0] for r in rows} == set(listed)
        for aggregate_id, version, state, archived, updated_at in rows:
            assert version == listed[aggregate_id]["version"]
            assert json.loads(state) == listed[aggregate_id]["state"]
            assert archived == listed[aggregate_id].get("archived", False)
            assert updated_at == micros(listed[aggregate_id]["updated_at"])
        assert duckdb.sql(
            f"SELECT state->>'status' FROM read_parquet('{out}') WHERE aggregate_id = 'o-0'"
        ).fetchall()[0] == ("shipped",)


def test_the_partitioned_layout_reads_as_one_dataset(own_server, tmp_path):
    counts = {"alpha": 1500, "beta": 700, "gamma": 3}
    bulk(own_server, counts)
    with EventDBXClient(**own_server.kwargs()) as client:
        lake = tmp_path / "lake"
        rows = client.export_parquet(
            lake, partition_by="aggregate_type", max_file_size=64 * 1024, row_group_size=1000
        )
        assert rows == sum(counts.values())
    assert sorted(p.name for p in lake.iterdir()) == [f"aggregate_type={t}" for t in sorted(counts)]
    files = parquet_files(lake)
    assert len(files) > len(counts), "64 KiB files: alpha takes several"
    assert all(p.parent.parent == lake and p.name.startswith("part-") for p in files)
    assert not (tmp_path / "lake.partial").exists()

    glob = f"{lake}/**/*.parquet"
    by_type = dict(duckdb.sql(
        f"SELECT aggregate_type, count(*) FROM read_parquet('{glob}', hive_partitioning = true) "
        f"GROUP BY ALL"
    ).fetchall())
    assert by_type == counts
    ids = duckdb.sql(
        f"SELECT count(DISTINCT aggregate_id) FROM read_parquet('{glob}', hive_partitioning = true) "
        f"WHERE aggregate_type = 'alpha'"
    ).fetchall()[0]
    assert ids == (counts["alpha"],)

    frame = pl.scan_parquet(lake, hive_partitioning=True).group_by("aggregate_type").len().collect()
    assert dict(frame.rows()) == counts


def test_the_asyncio_client_writes_the_same_files(own_server, tmp_path):
    with EventDBXClient(**own_server.kwargs()) as client:
        seed(client)
        blocking = client.export_parquet(tmp_path / "blocking.parquet", skip_archived=True)

    async def main() -> int:
        async with AsyncEventDBXClient(**own_server.kwargs()) as client:
            return await client.export_parquet(
                tmp_path / "async.parquet", skip_archived=True, compression="none"
            )

    assert asyncio.run(main()) == blocking
    query = "SELECT * FROM read_parquet('{}') ORDER BY ALL"
    assert duckdb.sql(query.format(tmp_path / "async.parquet")).fetchall() == duckdb.sql(
        query.format(tmp_path / "blocking.parquet")
    ).fetchall()


def test_bad_arguments_are_refused_before_anything_is_sent(server, tmp_path):
    with EventDBXClient(**server.kwargs()) as client:
        out = tmp_path / "x.parquet"
        for kwargs, message in [
            ({"what": "rows"}, "what must be 'events' or 'aggregates'"),
            ({"partition_by": "day"}, "partition_by must be None or 'aggregate_type'"),
            ({"compression": "gzip"}, "compression must be 'zstd' or 'none'"),
            ({"include_archived": True}, "goes with an export of aggregates"),
            ({"row_group_size": 0}, "row_group_size must be at least 1"),
            ({"max_file_size": 1000}, "at least 65536 bytes"),
            ({"aggregate_type": "Not A Type"}, "aggregate_type"),
        ]:
            with pytest.raises(EventDBXInputError) as refused:
                client.export_parquet(out, **kwargs)
            assert message in str(refused.value), (kwargs, str(refused.value))
        with pytest.raises(EventDBXTypeError):
            client.export_parquet(b"x.parquet")  # type: ignore[arg-type]
        with pytest.raises(EventDBXTypeError):
            client.export_parquet(out, what=1)  # type: ignore[arg-type]
        (tmp_path / "lake").mkdir()
        (tmp_path / "lake" / "mine.txt").write_text("keep")
        with pytest.raises(EventDBXInputError, match="never merges into or replaces"):
            client.export_parquet(tmp_path / "lake", partition_by="aggregate_type")
        with pytest.raises(EventDBXInputError, match="does not exist"):
            client.export_parquet(tmp_path / "missing" / "x.parquet")
        assert sorted(p.name for p in tmp_path.rglob("*")) == ["lake", "mine.txt"]


EXPORTER = textwrap.dedent(
    """
    import sys
    from eventdbx import EventDBXClient
    host, port, token, tenant, out = sys.argv[1:]
    with EventDBXClient(host=host, port=int(port), token=token, tenant_id=tenant) as client:
        print(client.export_parquet(out, partition_by="aggregate_type", max_file_size=65536))
    """
)


def test_an_interrupted_export_leaves_nothing_that_looks_complete(own_server, tmp_path):
    bulk(own_server, {"bulk": 20_000})
    lake = tmp_path / "lake"
    staging = tmp_path / "lake.partial"
    args = [sys.executable, "-c", EXPORTER, own_server.host, str(own_server.port),
            own_server.token, own_server.tenant, str(lake)]

    def temporary_file(process: subprocess.Popen) -> None:
        """Waits until the export's first temporary file exists (the export is under way)."""
        deadline = time.monotonic() + 120
        while not any(p.name.endswith(".parquet.partial") for p in staging.rglob("*")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no temporary file appeared"
            time.sleep(0.005)

    # Ctrl-C (KeyboardInterrupt in the exporting process): what was written is removed.
    exporter = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    temporary_file(exporter)
    exporter.send_signal(signal.SIGINT)
    _, stderr = exporter.communicate(timeout=120)
    assert exporter.returncode != 0 and "KeyboardInterrupt" in stderr, stderr
    assert not staging.exists() and not lake.exists()

    # SIGKILL: nothing can be removed, and nothing looks complete. Stopped first, so that the
    # temporary file seen is still there when it dies.
    exporter = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    temporary_file(exporter)
    exporter.send_signal(signal.SIGSTOP)
    assert any(p.name.endswith(".parquet.partial") for p in staging.rglob("*"))
    exporter.kill()
    exporter.wait(timeout=60)
    assert not lake.exists()
    assert parquet_files(tmp_path) == [], "no file is named like a finished Parquet file"
    with pytest.raises(duckdb.IOException):
        duckdb.sql(f"SELECT count(*) FROM read_parquet('{tmp_path}/**/*.parquet')").fetchall()

    # The next export replaces the leftovers and is whole.
    with EventDBXClient(**own_server.kwargs()) as client:
        assert client.export_parquet(lake, partition_by="aggregate_type") == 20_000
    assert not staging.exists()
    assert duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{lake}/**/*.parquet', hive_partitioning = true)"
    ).fetchall()[0] == (20_000,)
