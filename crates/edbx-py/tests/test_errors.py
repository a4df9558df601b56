"""Failures a user meets: rejected tokens, bad input (refused before sending), servers that stop,
hang or die mid-call. Each raises a typed exception and loses or duplicates nothing."""

from __future__ import annotations

import json
import pathlib
import pickle
import socket
import threading
import time

import pytest

from eventdbx import (
    AsyncEventDBXClient,
    EventDBXAPIError,
    EventDBXClient,
    EventDBXConnectionError,
    EventDBXError,
    EventDBXHandshakeError,
    EventDBXInputError,
    EventDBXOutcomeUnknownError,
    EventDBXReplyTooLargeError,
    EventDBXTimeoutError,
    EventDBXTypeError,
    RetryOptions,
)


def test_rejected_token_is_a_handshake_error_without_the_token(server):
    forged = server.token[:-6] + "AAAAAA"
    with pytest.raises(EventDBXHandshakeError) as refused:
        EventDBXClient(**server.kwargs(token=forged))
    assert isinstance(refused.value, EventDBXConnectionError)
    assert refused.value.auth
    assert "invalid control token" in str(refused.value)
    assert forged not in str(refused.value) and forged not in repr(refused.value)
    assert refused.value.retryable is False


def test_token_without_permission_is_an_api_error(server, uid):
    reader = server.mint("test", "reader", "aggregate.read")
    with EventDBXClient(**server.kwargs(token=reader)) as client:
        assert client.get(aggregate_type="orders", aggregate_id=uid).found is False
        with pytest.raises(EventDBXAPIError) as denied:
            client.apply(aggregate_type="orders", aggregate_id=uid, event_type="x", payload_json="{}")
        assert denied.value.code == "unauthorized"
        assert denied.value.auth and denied.value.outcome_unknown is False
        assert reader not in str(denied.value)


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"aggregate_type": "Orders!"}, "aggregate_type"),
        ({"aggregate_id": "x" * 200}, "aggregate_id"),
        ({"event_type": "has space"}, "event_type"),
        ({"payload_json": "{not json"}, "JSON"),
        ({"payload_json": json.dumps({"blob": "x" * 70_000})}, "bytes"),
        ({"metadata_json": '{"no_at": 1}'}, "metadata"),
        ({"note": "n" * 500}, "note"),
        ({"publish_targets": [{"plugin": "p", "priority": "urgent"}]}, "priority"),
    ],
)
def test_bad_input_is_refused_before_sending(server, uid, change, fragment):
    args = dict(aggregate_type="orders", aggregate_id=uid, event_type="created", payload_json="{}")
    args.update(change)
    with EventDBXClient(**server.kwargs()) as client:
        with pytest.raises(EventDBXInputError) as refused:
            client.apply(**args)
        assert isinstance(refused.value, ValueError)
        assert fragment.lower() in str(refused.value).lower()
        assert refused.value.kind == "invalid_input"
        # Nothing reached the server.
        assert client.get(aggregate_type="orders", aggregate_id=uid).found is False


def test_rows_the_server_could_not_list_are_refused_unless_allowed(server, uid):
    big = json.dumps({"blob": "x" * 7_200})
    with EventDBXClient(**server.kwargs()) as client:
        with pytest.raises(EventDBXInputError, match="7605") as refused:
            client.apply(aggregate_type="doc", aggregate_id=uid, event_type="added", payload_json=big)
        assert "allow_unlistable" in str(refused.value)
        assert client.get(aggregate_type="doc", aggregate_id=uid).found is False
        with pytest.raises(EventDBXInputError, match="JSON object"):
            client.apply(aggregate_type="doc", aggregate_id=uid, event_type="e", payload_json="[1, 2]")

        client.apply(
            aggregate_type="doc", aggregate_id=uid, event_type="added", payload_json=big,
            allow_unlistable=True,
        )
        # The server cannot list it: a distinct, non-retryable error naming where.
        with pytest.raises(EventDBXReplyTooLargeError) as too_large:
            client.events(aggregate_type="doc", aggregate_id=uid)
        assert not too_large.value.retryable and f"a:doc:{uid}:0" in str(too_large.value)
        assert client.get(aggregate_type="doc", aggregate_id=uid).aggregate["version"] == 1


def test_missing_arguments_are_value_errors_as_in_0_1_8(server):
    with EventDBXClient(**server.kwargs()) as client:
        with pytest.raises(ValueError, match="aggregate_type"):
            client.get(aggregate_type="", aggregate_id="x")
        with pytest.raises(ValueError, match="fields"):
            client.select(aggregate_type="a", aggregate_id="x", fields=[])
        with pytest.raises(ValueError, match="ignores"):
            client.events(aggregate_type="a", aggregate_id="x", filter_expr="version > 1")
        with pytest.raises(ValueError, match="snapshot_id"):
            client.get_snapshot(snapshot_id=-1)
        with pytest.raises(TypeError):
            client.get("a", "x")  # keyword-only, as in 0.1.8


def test_refused_port_fails_fast_and_retries_as_configured():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(EventDBXConnectionError) as refused:
        EventDBXClient(token="t", tenant_id="x", port=port)
    assert refused.value.kind == "connect" and refused.value.retryable
    assert time.monotonic() - start < 2

    start = time.monotonic()
    with pytest.raises(EventDBXConnectionError):
        EventDBXClient(
            token="t", tenant_id="x", port=port,
            retry={"attempts": 3, "initialDelayMs": 200, "maxDelayMs": 300},
        )
    # Two waits between three attempts: 200 ms, then 300 ms (capped), each spread over
    # 75 %..125 % by the engine's jitter.
    assert time.monotonic() - start >= 0.75 * (0.2 + 0.3)


def test_write_to_a_hung_server_times_out_with_unknown_outcome_and_is_not_resent(own_server, uid):
    with EventDBXClient(**own_server.kwargs(read_timeout=1.0, retry=RetryOptions(attempts=5))) as client:
        client.create(aggregate_type="orders", aggregate_id=uid, event_type="created", payload_json="{}")
        own_server.command("pause")
        try:
            with pytest.raises(EventDBXTimeoutError) as late:
                client.apply(aggregate_type="orders", aggregate_id=uid, event_type="paid", payload_json="{}")
        finally:
            own_server.command("resume")
        error = late.value
        assert isinstance(error, EventDBXOutcomeUnknownError) and isinstance(error, TimeoutError)
        assert error.outcome_unknown and not error.retryable
        # The server applies the write it had received, once; the client did not send it again.
        deadline = time.monotonic() + 5
        while client.get(aggregate_type="orders", aggregate_id=uid).aggregate["version"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        versions = [e["version"] for e in client.iter_events(aggregate_type="orders", aggregate_id=uid)]
        assert versions == [1, 2]


def test_read_from_a_hung_server_times_out_and_can_be_sent_again(own_server, uid):
    with EventDBXClient(**own_server.kwargs(read_timeout=0.5)) as client:
        own_server.command("pause")
        try:
            with pytest.raises(EventDBXTimeoutError) as late:
                client.get(aggregate_type="orders", aggregate_id=uid)
        finally:
            own_server.command("resume")
        assert not late.value.outcome_unknown
        assert client.get(aggregate_type="orders", aggregate_id=uid).found is False


def test_server_killed_mid_write_then_restarted(own_server, holding_proxy, uid):
    # Through a proxy that holds the write: it is observably sent when the server dies.
    with EventDBXClient(**own_server.kwargs(port=holding_proxy.port, read_timeout=10.0)) as client:
        client.create(aggregate_type="orders", aggregate_id=uid, event_type="created", payload_json="{}")
        holding_proxy.hold()
        outcome: dict = {}

        def write() -> None:
            try:
                client.apply(aggregate_type="orders", aggregate_id=uid, event_type="paid", payload_json="{}")
                outcome["result"] = "applied"
            except EventDBXError as e:
                outcome["error"] = e

        writer = threading.Thread(target=write)
        writer.start()
        assert holding_proxy.received.wait(timeout=10), "the write never left the client"
        own_server.command("kill")
        writer.join(timeout=10)
        error = outcome.get("error")
        assert isinstance(error, EventDBXOutcomeUnknownError), outcome
        assert error.kind == "outcome_unknown" and not error.retryable

        with pytest.raises(EventDBXConnectionError) as down:
            EventDBXClient(**own_server.kwargs())
        assert down.value.retryable

        own_server.command("restart")
        holding_proxy.release()
        # The client reconnects by itself; the write was never sent twice.
        versions = [e["version"] for e in client.iter_events(aggregate_type="orders", aggregate_id=uid)]
        assert versions == [1]


def test_closed_client_refuses_calls(server):
    client = EventDBXClient(**server.kwargs())
    client.close()
    client.close()  # idempotent
    with pytest.raises(EventDBXConnectionError, match="closed"):
        client.get(aggregate_type="orders", aggregate_id="x")


def test_exceptions_pickle_and_compare():
    api = EventDBXAPIError("aggregate_not_found", "aggregate not found")
    assert pickle.loads(pickle.dumps(api)) == api
    assert str(api) == "aggregate_not_found: aggregate not found"
    timeout = EventDBXTimeoutError("slow", kind="timeout", retryable=True)
    copy = pickle.loads(pickle.dumps(timeout))
    assert (type(copy), copy.kind, copy.retryable, str(copy)) == (EventDBXTimeoutError, "timeout", True, "slow")


def test_arguments_of_the_wrong_type_name_the_argument_and_both_types(server, uid):
    with EventDBXClient(**server.kwargs()) as client:
        with pytest.raises(TypeError) as wrong:
            client.get(aggregate_type="orders", aggregate_id=0)
        assert str(wrong.value) == "aggregate_id must be a str, got int (0)"
        assert isinstance(wrong.value, EventDBXInputError) and wrong.value.kind == "invalid_input"
        with pytest.raises(ValueError) as empty:
            client.get(aggregate_type="orders", aggregate_id="")
        assert str(empty.value) == "aggregate_id must be a non-empty str, got an empty str"
        with pytest.raises(TypeError) as listed:
            client.apply(aggregate_type="orders", aggregate_id=uid, event_type="e", payload_json=[1])
        assert str(listed.value) == (
            "payload_json must be a JSON object as a str (e.g. json.dumps(...)) or a dict, "
            "got list ([1])"
        )
        with pytest.raises(TypeError, match=r"^metadata_json must be .* got bytes"):
            client.apply(
                aggregate_type="orders", aggregate_id=uid, event_type="e", payload_json="{}",
                metadata_json=b"{}",
            )
        with pytest.raises(TypeError, match=r"^take must be an int or None, got str \('5'\)$"):
            client.list(take="5")
        with pytest.raises(ValueError, match=r"^take must be at least 1, got 0$"):
            client.list(take=0)
        with pytest.raises(TypeError, match=r"did you mean \['total'\]"):
            client.select(aggregate_type="orders", aggregate_id=uid, fields="total")
        with pytest.raises(TypeError, match="^snapshot_id must be an int or None, got str"):
            client.get_snapshot(snapshot_id="1")
        assert client.get(aggregate_type="orders", aggregate_id=uid).found is False


def test_payload_and_metadata_may_be_dicts_which_are_serialised(server, uid):
    with EventDBXClient(**server.kwargs()) as client:
        client.apply(
            aggregate_type="orders", aggregate_id=uid, event_type="created",
            payload_json={"total": 19.99, "lines": [{"sku": "a"}]},
            metadata_json={"@trace": {"id": "t-1"}},
        )
        [event] = client.iter_events(aggregate_type="orders", aggregate_id=uid)
        assert event["payload"] == {"total": 19.99, "lines": [{"sku": "a"}]}
        assert event["extensions"] == {"@trace": {"id": "t-1"}}
        with pytest.raises(TypeError, match="json.dumps cannot serialise"):
            client.apply(
                aggregate_type="orders", aggregate_id=uid, event_type="e",
                payload_json={"when": object()},
            )
        assert client.get(aggregate_type="orders", aggregate_id=uid).aggregate["version"] == 1


def _rust_free(message: str) -> None:
    for rust in ("::", "(true)", "`"):
        assert rust not in message, f"{rust!r} in {message!r}"


def test_advice_in_messages_is_python_advice(server, uid):
    big = json.dumps({"blob": "x" * 7_200})
    with EventDBXClient(**server.kwargs()) as client:
        with pytest.raises(EventDBXInputError) as unlistable:
            client.apply(aggregate_type="doc", aggregate_id=uid, event_type="added", payload_json=big)
        assert "pass allow_unlistable=True to write it anyway" in str(unlistable.value)
        _rust_free(str(unlistable.value))

        with pytest.raises(EventDBXInputError) as bad_filter:
            client.list(filter_expr="total >= 40")
        assert "help(eventdbx.EventDBXClient.list_aggregates)" in str(bad_filter.value)
        _rust_free(str(bad_filter.value))

        # A sort the server cannot continue: the advice must be one that works from Python (a
        # large take does not: the server cuts such a page at ~7.5 KiB).
        rows = client.iter_aggregates(sort="aggregate_id:asc")
        with pytest.raises(EventDBXInputError) as unsortable:
            next(rows)
        message = str(unsortable.value)
        assert "sort='created_at'" in message and "sorted(client.iter_aggregates(" in message
        assert "large take instead" not in message
        _rust_free(message)


def _our_frames(error: BaseException) -> list:
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    return [(pathlib.Path(f.filename).name, f.name) for f in frames if "eventdbx" in f.filename]


def test_tracebacks_end_at_the_public_method(server, uid, monkeypatch):
    import traceback

    with EventDBXClient(**server.kwargs()) as client:
        with pytest.raises(EventDBXAPIError) as missing:
            client.verify(aggregate_type="orders", aggregate_id=uid)
        assert _our_frames(missing.value) == [("client.py", "verify")]
        text = "".join(traceback.format_exception(missing.type, missing.value, missing.tb))
        assert "_ops" not in text and "_Operations" not in text and "_call" not in text

        with pytest.raises(TypeError) as wrong:
            client.get_aggregate(aggregate_type="orders", aggregate_id=7)
        assert _our_frames(wrong.value) == [("client.py", "get_aggregate")]

        with pytest.raises(EventDBXInputError) as unsortable:
            list(client.iter_aggregates(sort="aggregate_id:asc"))
        assert _our_frames(unsortable.value) == [("client.py", "__next__")]

    with pytest.raises(EventDBXInputError) as config:
        EventDBXClient(**server.kwargs(pool_size=0))
    assert _our_frames(config.value) == [("client.py", "__init__")]
    monkeypatch.delenv("EVENTDBX_TOKEN", raising=False)
    with pytest.raises(EventDBXInputError, match="EVENTDBX_TOKEN") as no_token:
        EventDBXClient.from_env()
    assert _our_frames(no_token.value) == [("client.py", "from_env")]


def test_async_tracebacks_end_at_the_public_coroutine(server, uid):
    import asyncio

    from eventdbx import AsyncEventDBXClient

    async def main() -> None:
        async with AsyncEventDBXClient(**server.kwargs()) as client:
            with pytest.raises(EventDBXAPIError) as missing:
                await client.verify(aggregate_type="orders", aggregate_id=uid)
            assert _our_frames(missing.value) == [("aio.py", "verify")]
            with pytest.raises(TypeError) as wrong:
                await client.get(aggregate_type="orders", aggregate_id=5)
            assert _our_frames(wrong.value) == [("aio.py", "get")]

    asyncio.run(main())


def _deep(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    "call, error, fragment",
    [
        # Not Unicode text: a lone surrogate cannot be encoded for the Rust core.
        (lambda c, uid: c.get(aggregate_type="orders", aggregate_id=f"{uid}\ud800"), EventDBXInputError, "aggregate_id is not valid unicode"),
        (lambda c, uid: c.create(aggregate_type="orders", aggregate_id=uid, event_type="created", payload_json="{}", note="\udfff"), EventDBXInputError, "note is not valid unicode"),
        (lambda c, uid: c.list(filter_expr="status = '\ud800'"), EventDBXInputError, "filter_expr is not valid unicode"),
        # Past 64 bits.
        (lambda c, uid: c.list(take=2**64), EventDBXInputError, "take is out of range"),
        (lambda c, uid: c.get_snapshot(snapshot_id=2**70), EventDBXInputError, "snapshot_id is out of range"),
        # Serialising the caller's values.
        (lambda c, uid: c.create(aggregate_type="orders", aggregate_id=uid, event_type="created", payload_json=_deep(5000)), EventDBXInputError, "nested too deeply"),
        (lambda c, uid: c.create(aggregate_type="orders", aggregate_id=uid, event_type="created", payload_json={"total": float("nan")}), EventDBXTypeError, "out of range float"),
        (lambda c, uid: c.patch(aggregate_type="orders", aggregate_id=uid, event_type="patched", patches=[{"op": "add", "path": "/x", "value": object()}]), EventDBXTypeError, "patches"),
        # Lists and options of the wrong shape.
        (lambda c, uid: c.create(aggregate_type="orders", aggregate_id=uid, event_type="created", payload_json="{}", publish_targets=[{"plugin": 1}]), EventDBXTypeError, "plugin must be a non-empty str"),
        (lambda c, uid: c.create(aggregate_type="orders", aggregate_id=uid, event_type="created", payload_json="{}", publish_targets=[{}]), EventDBXTypeError, "plugin must be a non-empty str"),
        (lambda c, uid: c.create(aggregate_type="orders", aggregate_id=uid, event_type="created", payload_json="{}", publish_targets="search"), EventDBXTypeError, "publish_targets must be a list"),
        (lambda c, uid: c.list(sort=["created_at:asc"]), EventDBXTypeError, "sort must be a str"),
        (lambda c, uid: c.select(aggregate_type="orders", aggregate_id=uid, fields=["total", object()]), EventDBXTypeError, "fields must hold only str"),
        (lambda c, uid: c.tenant_schema_publish(tenant_id="default", labels=[1]), EventDBXTypeError, "labels must hold only str"),
    ],
)
def test_every_refusal_is_typed_and_names_the_argument(server, uid, call, error, fragment):
    """Input the Rust core cannot take is refused as an EventDBXError, before anything is sent:
    never a bare UnicodeEncodeError, OverflowError, RecursionError, TypeError or ValueError."""
    with EventDBXClient(**server.kwargs()) as client:
        with pytest.raises(error) as refused:
            call(client, uid)
        assert fragment in str(refused.value).lower()
        assert refused.value.kind == "invalid_input"
        assert client.get(aggregate_type="orders", aggregate_id=uid).found is False


@pytest.mark.parametrize(
    "change, error, fragment",
    [
        ({"token": 123}, EventDBXTypeError, "token must be a str, got int"),
        ({"tenant_id": 123}, EventDBXTypeError, "tenant_id must be a str"),
        ({"host": b"127.0.0.1"}, EventDBXTypeError, "host must be a str"),
        ({"port": True}, EventDBXInputError, "port must be between"),
        ({"retry": {"attempts": "x"}}, EventDBXTypeError, "retry attempts must be an int"),
        ({"retry": [1]}, EventDBXTypeError, "retry must be a retryoptions"),
        ({"token": "tok\ud800en"}, EventDBXInputError, "token is not valid unicode"),
    ],
)
def test_constructor_arguments_of_the_wrong_type_are_typed_errors(server, change, error, fragment):
    for make in (EventDBXClient, AsyncEventDBXClient):
        with pytest.raises(error) as refused:
            make(**server.kwargs(**change))
        assert fragment in str(refused.value).lower()
        assert server.token not in str(refused.value)
