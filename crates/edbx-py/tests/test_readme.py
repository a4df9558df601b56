"""The official Python client's README, run as printed against a real server.

The three code blocks below are the README's (``shared/reference/python-client-README.md`` in
the project notes), character for character. Only the quickstart's token is replaced by the test
server's; its tenant ``tenant-123`` is used as printed (the server creates it on first use), and
the server's port comes from ``EVENTDBX_PORT``, which the client reads when no port is passed.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import pathlib
import re
import textwrap

import pytest

# Every test here also runs on each CPython the wheel claims (scripts/test-python.sh).
pytestmark = pytest.mark.every_python

REPO_README = pathlib.Path(__file__).resolve().parents[3] / "README.md"

README_QUICKSTART = textwrap.dedent(
    '''
    import json

    from eventdbx import EventDBXClient

    with EventDBXClient(token="control_token", tenant_id="tenant-123") as client:
        # Create a brand-new aggregate via the control plane
        created = client.create(
            aggregate_type="orders",
            aggregate_id="ord_123",
            event_type="created",
            payload_json=json.dumps({"total": 42.15}),
        )

        # Append follow-up events to the aggregate
        updated = client.apply(
            aggregate_type="orders",
            aggregate_id="ord_123",
            event_type="paid",
            payload_json=json.dumps({"status": "paid"}),
        )

        # List aggregates or fetch events for a specific aggregate
        aggregates = client.list(take=50)
        events_page = client.events(aggregate_type="orders", aggregate_id="ord_123")

        # Fetch full aggregate, run projections, or verify integrity
        latest = client.get(aggregate_type="orders", aggregate_id="ord_123")
        projection = client.select(
            aggregate_type="orders",
            aggregate_id="ord_123",
            fields=["payload.total", "metadata.region"],
        )
        merkle_root = client.verify(aggregate_type="orders", aggregate_id="ord_123")

        # Apply JSON Patch documents to historical events
        patched = client.patch(
            aggregate_type="orders",
            aggregate_id="ord_123",
            event_type="created",
            patches=[{"op": "replace", "path": "/total", "value": 45.10}],
        )

        # Archive / restore lifecycle management
        client.archive(aggregate_type="orders", aggregate_id="ord_123", comment="customer request")
        client.restore(aggregate_type="orders", aggregate_id="ord_123")
    '''
)

README_HELLO = textwrap.dedent(
    '''
    from eventdbx.control_schema import build_control_hello

    hello = build_control_hello(protocol_version=1, token="api", tenant_id="tenant")
    serialized = hello.to_bytes()
    '''
)

README_NOISE = textwrap.dedent(
    '''
    from eventdbx.noise import NoiseSession

    initiator = NoiseSession(is_initiator=True)
    responder = NoiseSession(is_initiator=False)

    step1 = initiator.write_message()
    responder.read_message(step1)
    '''
)


def test_quickstart_runs_as_printed(own_server, monkeypatch):
    monkeypatch.setenv("EVENTDBX_PORT", str(own_server.port))
    monkeypatch.delenv("EVENTDBX_HOST", raising=False)
    code = README_QUICKSTART.replace('token="control_token"', f"token={own_server.token!r}")
    assert code != README_QUICKSTART, "the README's token literal was not found"
    scope: dict = {}
    exec(compile(code, "README quickstart", "exec"), scope)

    assert json.loads(scope["created"])["version"] == 1
    assert json.loads(scope["updated"])["event_type"] == "paid"
    listed = scope["aggregates"].aggregates
    assert [a["aggregate_id"] for a in listed] == ["ord_123"]
    assert [e["event_type"] for e in scope["events_page"].events] == ["created", "paid"]
    assert scope["latest"].found and scope["latest"].aggregate["version"] == 2
    assert scope["projection"].found
    assert len(scope["merkle_root"]) == 64

    # Read back what the quickstart left: 3 events, restored, the patched total.
    from eventdbx import EventDBXClient

    with EventDBXClient(token=own_server.token, tenant_id="tenant-123") as client:
        events = list(client.iter_events(aggregate_type="orders", aggregate_id="ord_123"))
        assert [e["version"] for e in events] == [1, 2, 3]
        assert events[2]["payload"] == {"total": 45.1}
        aggregate = client.get(aggregate_type="orders", aggregate_id="ord_123").aggregate
        assert aggregate.get("archived", False) is False  # the server drops the key on restore
        assert aggregate["version"] == 3
        assert aggregate["state"] == {"total": "45.1", "status": "paid"}
        assert client.verify(aggregate_type="orders", aggregate_id="ord_123") == aggregate[
            "merkle_root"
        ]


def test_build_control_hello_runs_as_printed():
    scope: dict = {}
    exec(compile(README_HELLO, "README hello", "exec"), scope)
    serialized = scope["serialized"]
    assert isinstance(serialized, bytes)
    # A bare Cap'n Proto message: one segment, and the token and tenant inside it.
    assert serialized[:4] == b"\x00\x00\x00\x00"
    assert b"api\x00" in serialized and b"tenant\x00" in serialized


def test_noise_session_runs_as_printed():
    scope: dict = {}
    exec(compile(README_NOISE, "README noise", "exec"), scope)
    initiator, responder = scope["initiator"], scope["responder"]
    # The README stops after the first message; finish the XX handshake and talk.
    initiator.read_message(responder.write_message())
    responder.read_message(initiator.write_message())
    assert initiator.handshake_finished and responder.handshake_finished
    assert responder.decrypt(initiator.encrypt(b"ping")) == b"ping"
    assert initiator.finalize_handshake().handshake_hash == responder.finalize_handshake().handshake_hash


def python_section_blocks() -> list:
    """The ```python blocks of this repository's README, section "## Python"."""
    text = REPO_README.read_text()
    section = text[text.index("\n## Python\n") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_this_readmes_python_blocks_run_as_printed(own_server, monkeypatch):
    blocks = python_section_blocks()
    assert len(blocks) == 2, "the README's Python section should have a blocking and an asyncio block"
    blocking, asynchronous = blocks
    assert "AsyncEventDBXClient" in asynchronous and "asyncio.run(main())" in asynchronous
    monkeypatch.setenv("EVENTDBX_PORT", str(own_server.port))
    monkeypatch.delenv("EVENTDBX_HOST", raising=False)
    outputs = []
    for number, code in enumerate(blocks):
        runnable = code.replace('token="control_token"', f"token={own_server.token!r}")
        assert runnable != code, "the README's token literal was not found"
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(runnable, f"README Python block {number + 1}", "exec"), {})
        outputs.append(printed.getvalue().splitlines())

    assert outputs[0] == ["True {'total': '42.15'}", "1 created"]
    state, ids = outputs[1][0].split(" [")
    assert ast.literal_eval(state) == {"total": 42.15, "status": "paid"}
    assert ids == "'ord_123']"
    assert outputs[1][1:] == ["1 created", "2 order_paid"]
