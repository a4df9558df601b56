"""Every operation of the blocking client against real servers, each checked by reading back.

Tests taking ``mode_server`` run four times: Noise or plaintext sessions, and servers with
verbose responses on or off (writes then return ``True``).
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from eventdbx import (
    AggregateSortField,
    AggregateSortOption,
    AsyncEventDBXClient,
    EventDBXAPIError,
    EventDBXClient,
    PublishTarget,
    VerificationResult,
)


def client_for(server, **overrides) -> EventDBXClient:
    """A client of ``server``: plaintext when the server allows it, to cover both paths."""
    if server.plaintext_allowed:
        overrides.setdefault("use_noise", False)
    with pytest.warns(RuntimeWarning) if overrides.get("use_noise") is False else _nothing():
        return EventDBXClient(**server.kwargs(**overrides))


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def echo_or_true(server, result):
    """A write's result: the echo as a dict on verbose servers, ``True`` on the others."""
    if server.verbose:
        assert isinstance(result, str)
        return json.loads(result)
    assert result is True
    return None


def test_session_security_follows_the_server(mode_server):
    with client_for(mode_server) as client:
        assert client.connected
        client.list(take=1)
        assert client.encrypted is (not mode_server.plaintext_allowed)
    assert not client.connected


def test_create_apply_get_and_events(mode_server, uid):
    with client_for(mode_server) as client:
        created = client.create(
            aggregate_type="orders",
            aggregate_id=uid,
            event_type="created",
            payload_json=json.dumps({"total": 42.15, "items": [1, 2]}),
            note="first",
            metadata_json=json.dumps({"@trace": {"id": "t-1"}}),
        )
        echo = echo_or_true(mode_server, created)
        if echo is not None:
            assert echo["aggregate_id"] == uid and echo["version"] == 1

        paid = client.apply(
            aggregate_type="orders",
            aggregate_id=uid,
            event_type="paid",
            payload_json=json.dumps({"status": "paid"}),
            publish_targets=[PublishTarget(plugin="audit", mode="all"), {"plugin": "mail"}],
        )
        echo = echo_or_true(mode_server, paid)
        if echo is not None:
            assert echo["event_type"] == "paid" and echo["version"] == 2

        sent = client.send_event(
            aggregate_type="orders",
            aggregate_id=uid,
            event_type="order.shipped",
            payload_json='{"carrier": "ups"}',
        )
        echo_or_true(mode_server, sent)

        got = client.get(aggregate_type="orders", aggregate_id=uid)
        assert got.found
        aggregate = got.aggregate
        assert aggregate["version"] == 3
        assert aggregate["state"] == {
            "total": "42.15",
            "items": "[1,2]",
            "status": "paid",
            "carrier": "ups",
        }
        assert aggregate["@trace"] == {"id": "t-1"}

        page = client.events(aggregate_type="orders", aggregate_id=uid)
        events = page.events
        assert [e["version"] for e in events] == [1, 2, 3]
        assert [e["event_type"] for e in events] == ["created", "paid", "order_shipped"]
        assert events[2]["event_type_raw"] == "order.shipped"
        assert events[0]["metadata"]["note"] == "first"
        assert events[0]["extensions"] == {"@trace": {"id": "t-1"}}
        # Every page that has rows carries a cursor; the page after the last one is empty.
        assert page.has_next_cursor and page.next_cursor == f"a:orders:{uid}:3"
        rest = client.events(aggregate_type="orders", aggregate_id=uid, cursor=page.next_cursor)
        assert rest.events == [] and not rest.has_next_cursor and rest.next_cursor is None

        second = client.events(aggregate_type="orders", aggregate_id=uid, cursor=f"a:orders:{uid}:1", take=1)
        assert [e["version"] for e in second.events] == [2]


def test_apply_with_create_and_create_conflict(mode_server, uid):
    with client_for(mode_server) as client:
        client.apply(
            aggregate_type="carts",
            aggregate_id=uid,
            event_type="opened",
            payload_json="{}",
            create=True,
        )
        with pytest.raises(EventDBXAPIError) as conflict:
            client.apply(
                aggregate_type="carts",
                aggregate_id=uid,
                event_type="opened",
                payload_json="{}",
                create=True,
            )
        assert conflict.value.code == "schema_violation"
        assert client.get(aggregate_type="carts", aggregate_id=uid).aggregate["version"] == 1


def test_missing_aggregates(mode_server, uid):
    with client_for(mode_server) as client:
        missing = client.get(aggregate_type="orders", aggregate_id=uid)
        assert (missing.found, missing.aggregate_json, missing.aggregate) == (False, None, None)
        selection = client.select(aggregate_type="orders", aggregate_id=uid, fields=["x"])
        assert (selection.found, selection.selection) == (False, None)
        with pytest.raises(EventDBXAPIError) as not_found:
            client.verify(aggregate_type="orders", aggregate_id=uid)
        assert not_found.value.code == "aggregate_not_found"
        assert str(not_found.value).startswith("aggregate_not_found: ")


def test_select_verify_patch(mode_server, uid):
    with client_for(mode_server) as client:
        client.create(
            aggregate_type="orders",
            aggregate_id=uid,
            event_type="created",
            payload_json=json.dumps({"total": 42.15, "address": {"city": "Oslo", "zip": "0150"}}),
        )
        selection = client.select(
            aggregate_type="orders", aggregate_id=uid, fields=["total", "address.city", "nope"]
        )
        assert selection.found
        assert selection.selection == {"total": 42.15, "address.city": "Oslo", "nope": None}

        root = client.verify(aggregate_type="orders", aggregate_id=uid)
        assert len(root) == 64
        assert root == client.get(aggregate_type="orders", aggregate_id=uid).aggregate["merkle_root"]

        patched = client.patch(
            aggregate_type="orders",
            aggregate_id=uid,
            event_type="corrected",
            patches=[
                {"op": "replace", "path": "/total", "value": 45.1},
                {"op": "remove", "path": "/address/zip"},
            ],
            note="typo",
        )
        echo = echo_or_true(mode_server, patched)
        if echo is not None:
            assert echo["payload"] == {"total": 45.1, "address": {"city": "Oslo"}}
        state = client.get(aggregate_type="orders", aggregate_id=uid).aggregate["state"]
        assert state == {"total": "45.1", "address": '{"city":"Oslo"}'}
        assert client.verify(aggregate_type="orders", aggregate_id=uid) != root
        with pytest.raises(ValueError):
            client.patch(aggregate_type="orders", aggregate_id=uid, event_type="x", patches=[])


def test_archive_and_restore(mode_server, uid):
    with client_for(mode_server) as client:
        client.create(aggregate_type="orders", aggregate_id=uid, event_type="created", payload_json="{}")
        archived = client.archive(aggregate_type="orders", aggregate_id=uid, comment="customer request")
        echo = echo_or_true(mode_server, archived)
        if echo is not None:
            assert echo["archived"] is True
        assert client.get(aggregate_type="orders", aggregate_id=uid).aggregate["archived"] is True
        with pytest.raises(EventDBXAPIError) as refused:
            client.apply(aggregate_type="orders", aggregate_id=uid, event_type="x", payload_json="{}")
        assert refused.value.code == "aggregate_archived"

        only_archived = client.list(archived_only=True, filter_expr=f"aggregate_id = '{uid}'")
        assert [a["aggregate_id"] for a in only_archived.aggregates] == [uid]
        hidden = client.list(filter_expr=f"aggregate_type = 'orders' AND aggregate_id = '{uid}'")
        assert hidden.aggregates == []

        restored = client.restore(aggregate_type="orders", aggregate_id=uid, note="back")
        echo_or_true(mode_server, restored)
        assert client.get(aggregate_type="orders", aggregate_id=uid).aggregate.get("archived", False) is False
        with pytest.raises(ValueError):
            client.archive(aggregate_type="orders", aggregate_id=uid, note="a", comment="b")


def test_list_filters_sorts_and_pages(mode_server, uid):
    kind = f"k{uid}"
    with client_for(mode_server) as client:
        for i in range(5):
            client.create(
                aggregate_type=kind,
                aggregate_id=f"{uid}-{i}",
                event_type="created",
                payload_json=json.dumps({"n": i}),
            )
        mine = f"aggregate_type = '{kind}'"
        first = client.list(take=2, filter_expr=mine)
        assert [a["aggregate_id"] for a in first.aggregates] == [f"{uid}-0", f"{uid}-1"]
        assert first.has_next_cursor
        second = client.list(take=2, filter_expr=mine, cursor=first.next_cursor)
        assert [a["aggregate_id"] for a in second.aggregates] == [f"{uid}-2", f"{uid}-3"]

        desc = client.list(
            take=10,
            filter_expr=mine,
            sort=[AggregateSortOption(field=AggregateSortField.AGGREGATE_ID, descending=True)],
        )
        assert [a["aggregate_id"] for a in desc.aggregates] == [f"{uid}-{i}" for i in range(4, -1, -1)]
        same = client.list(take=10, filter_expr=mine, sort="aggregate_id:desc")
        assert same.aggregates_json == desc.aggregates_json

        assert desc.complete and not first.complete

        everything = list(client.iter_aggregates(filter_expr=mine, take=2))
        assert [a["aggregate_id"] for a in everything] == [f"{uid}-{i}" for i in range(5)]
        by_time = list(client.iter_aggregates(filter_expr=mine, take=2, sort="created_at:asc"))
        assert [a["aggregate_id"] for a in by_time] == [f"{uid}-{i}" for i in range(5)]
        with pytest.raises(ValueError):
            client.list(take=0)


def test_snapshots(mode_server, uid):
    with client_for(mode_server) as client:
        client.create(aggregate_type="orders", aggregate_id=uid, event_type="created", payload_json='{"a": 1}')
        taken = client.create_snapshot(aggregate_type="orders", aggregate_id=uid, comment="checkpoint")
        snapshot = json.loads(taken)
        assert snapshot["version"] == 1 and snapshot["comment"] == "checkpoint"
        listed = client.list_snapshots(aggregate_type="orders", aggregate_id=uid)
        assert [s["snapshot_id"] for s in listed.snapshots] == [snapshot["snapshot_id"]]
        assert client.list_snapshots(aggregate_type="orders", aggregate_id=uid, version=2).snapshots == []
        fetched = client.get_snapshot(snapshot_id=int(snapshot["snapshot_id"]))
        assert fetched.found and fetched.snapshot["state"] == {"a": "1"}
        assert client.get_snapshot(snapshot_id=1).found is False
        with pytest.raises(ValueError):
            client.list_snapshots(aggregate_id=uid)


def test_schemas_round_trip(own_server):
    with EventDBXClient(**own_server.kwargs()) as client:
        assert json.loads(client.list_schemas()) == {}
        client.create(aggregate_type="orders", aggregate_id="o1", event_type="created", payload_json="{}")
        # The server's schema shape (PROTOCOL.md, [Schema]).
        schema = {
            "orders": {
                "aggregate": "orders",
                "snapshot_threshold": None,
                "locked": False,
                "field_locks": [],
                "hidden": False,
                "hidden_fields": [],
                "column_types": {},
                "events": {},
                "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:00Z",
            }
        }
        assert client.replace_schemas(schemas_json=json.dumps(schema)) == 1
        schemas = json.loads(client.list_schemas())
        assert list(schemas) == ["orders"]
        assert client.replace_schemas(schemas_json=json.dumps(schemas)) == 1


def test_tenant_administration(own_server):
    with EventDBXClient(**own_server.kwargs()) as client:
        assigned = client.tenant_assign(tenant_id="acme", shard_id="shard-0007")
        assert (assigned.changed, assigned.shard_id) == (True, "shard-0007")
        assert client.tenant_assign(tenant_id="acme", shard_id="shard-0007").changed is False
        assert client.tenant_unassign(tenant_id="acme") is True
        assert client.tenant_unassign(tenant_id="acme") is False

        quota = client.tenant_quota_set(tenant_id="acme", max_storage_mb=64)
        assert (quota.changed, quota.quota_mb, quota.has_quota) == (True, 64, True)
        assert client.tenant_quota_clear(tenant_id="acme") is True
        assert client.tenant_quota_clear(tenant_id="acme") is False
        assert client.tenant_quota_recalc(tenant_id="acme") >= 0
        # Another tenant's store is not held by this session and reopens.
        assert client.tenant_reload(tenant_id="acme") is True

        published = client.tenant_schema_publish(
            tenant_id="acme", reason="deploy", actor="ci", labels=["blue"], activate=True
        )
        assert published.version_id.startswith("v")
        again = client.tenant_schema_publish(tenant_id="acme")
        assert again.skipped is True
        with pytest.raises(ValueError, match="tenant_id"):
            client.tenant_assign(tenant_id="Not Valid!", shard_id="s")


def test_verify_history_recomputes_and_never_cries_wolf(server, uid):
    """The recomputing check: intact for a healthy aggregate, also while another client
    appends to it; an archived one cannot be checked, which is not a mismatch; a missing one
    is the server's not-found error."""
    with EventDBXClient(**server.kwargs()) as client:
        client.create(aggregate_type="orders", aggregate_id=uid, event_type="created", payload_json='{"n": 0}')
        check = client.verify_history(aggregate_type="orders", aggregate_id=uid)
        assert isinstance(check, VerificationResult)
        assert check.intact and not check.mismatch and check.outcome == "intact"
        assert (check.version, check.events, check.reason) == (1, 1, None)
        assert check.recomputed_root == check.merkle_root == client.verify(aggregate_type="orders", aggregate_id=uid)

        stop = threading.Event()

        def append() -> None:
            with EventDBXClient(**server.kwargs()) as writer:
                n = 1
                while not stop.is_set():
                    writer.apply(aggregate_type="orders", aggregate_id=uid, event_type="noted", payload_json=json.dumps({"n": n}))
                    n += 1

        appender = threading.Thread(target=append)
        appender.start()
        try:
            outcomes = [client.verify_history(aggregate_type="orders", aggregate_id=uid).outcome for _ in range(20)]
        finally:
            stop.set()
            appender.join()
        assert outcomes == ["intact"] * 20

        client.archive(aggregate_type="orders", aggregate_id=uid, comment="done")
        archived = client.verify_history(aggregate_type="orders", aggregate_id=uid)
        assert (archived.outcome, archived.reason, archived.mismatch) == ("unverifiable", "archived", False)

        with pytest.raises(EventDBXAPIError) as missing:
            client.verify_history(aggregate_type="orders", aggregate_id=uid + "-none")
        assert missing.value.code == "aggregate_not_found"

    async def main() -> None:
        async with AsyncEventDBXClient(**server.kwargs()) as aclient:
            await aclient.create(aggregate_type="orders", aggregate_id=uid + "-a", event_type="created", payload_json="{}")
            check = await aclient.verify_history(aggregate_type="orders", aggregate_id=uid + "-a")
            assert check.intact and check.version == 1

    asyncio.run(main())
