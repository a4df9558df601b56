"""State values as the server stores them (text), and reading them back typed: ``state()``,
``state_as(...)`` on the get result and on listed aggregates, with the Rust client's rules."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, Dict, List, NamedTuple, Optional

import pytest

from eventdbx import (
    AsyncEventDBXClient,
    EventDBXClient,
    EventDBXError,
    EventDBXStateError,
    parse_state,
    state_as,
)


@dataclass
class Address:
    city: str
    zip: str


class Status(Enum):
    NEW = "new"
    PAID = "paid"


@dataclass
class Order:
    total: Decimal
    zip: str
    vip: bool
    count: int
    ratio: float
    tags: List[str]
    address: Address
    status: Status
    note: Optional[str]
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: Optional[int] = None


PAYLOAD = {
    "total": 19.99,
    "zip": "01234",
    "vip": True,
    "count": 3,
    "ratio": 0.5,
    "tags": ["a", "b"],
    "address": {"city": "Oslo", "zip": "0150"},
    "status": "paid",
    "note": None,
    "ignored": "x",
}


def test_state_is_the_servers_text_and_reads_back_typed(server, uid):
    with EventDBXClient(**server.kwargs()) as client:
        client.create(
            aggregate_type="orders", aggregate_id=uid, event_type="order.created",
            payload_json=json.dumps(PAYLOAD),
        )
        got = client.get(aggregate_type="orders", aggregate_id=uid)
        # What 0.1.8 code sees: every value as the server's text.
        assert got.aggregate["state"] == {
            "total": "19.99",
            "zip": "01234",
            "vip": "true",
            "count": "3",
            "ratio": "0.5",
            "tags": '["a","b"]',
            "address": '{"city":"Oslo","zip":"0150"}',
            "status": "paid",
            "note": "",
            "ignored": "x",
        }
        assert got.state() == {
            "total": 19.99,
            "zip": "01234",  # not JSON (a leading zero): stays text
            "vip": True,
            "count": 3,
            "ratio": 0.5,
            "tags": ["a", "b"],
            "address": {"city": "Oslo", "zip": "0150"},
            "status": "paid",
            "note": "",  # how the server stores null
            "ignored": "x",
        }
        expected = Order(
            total=Decimal("19.99"), zip="01234", vip=True, count=3, ratio=0.5, tags=["a", "b"],
            address=Address(city="Oslo", zip="0150"), status=Status.PAID, note=None,
        )
        assert got.state_as(Order) == expected
        # Listed aggregates carry the same state.
        rows = list(client.iter_aggregates(filter_expr=f"aggregate_id = '{uid}'"))
        assert [state_as(Order, row) for row in rows] == [expected]
        assert [parse_state(row) for row in rows] == [got.state()]
        page = client.list(filter_expr=f"aggregate_id = '{uid}'")
        assert [state_as(Order, row) for row in page.aggregates] == [expected]
        # The event type was written with a dot; the server stores it with an underscore.
        events = client.iter_events(aggregate_type="orders", aggregate_id=uid)
        assert [e["event_type"] for e in events] == ["order_created"]

        missing = client.get(aggregate_type="orders", aggregate_id=uid + "x")
        assert missing.state() is None and missing.state_as(Order) is None


def test_async_get_result_reads_state_too(server, uid):
    import asyncio

    async def main() -> Optional[Dict[str, Any]]:
        async with AsyncEventDBXClient(**server.kwargs()) as client:
            await client.create(
                aggregate_type="orders", aggregate_id=uid, event_type="created",
                payload_json={"total": 5, "vip": False},
            )
            return (await client.get(aggregate_type="orders", aggregate_id=uid)).state()

    assert asyncio.run(main()) == {"total": 5, "vip": False}


@pytest.mark.every_python
def test_a_value_that_does_not_fit_names_field_text_and_type():
    @dataclass
    class Strict:
        vip: int

    row = {"state": {"vip": "true"}}
    with pytest.raises(EventDBXStateError) as misfit:
        state_as(Strict, row)
    assert str(misfit.value) == "the aggregate's state does not fit Strict: field 'vip' holds 'true', not an int"
    assert isinstance(misfit.value, ValueError) and isinstance(misfit.value, EventDBXError)

    @dataclass
    class Needs:
        total: float

    with pytest.raises(EventDBXStateError, match="field 'total' is not in the state"):
        state_as(Needs, {"state": {}})
    with pytest.raises(EventDBXStateError, match="field 'total' holds 'abc', not a float"):
        state_as(Needs, {"state": {"total": "abc"}})


@pytest.mark.every_python
def test_named_tuples_typed_dicts_and_callables():
    from typing import TypedDict

    class Point(NamedTuple):
        x: int
        y: float
        label: Optional[str] = None

    class Totals(TypedDict):
        total: Decimal
        lines: List[int]

    row = {"state": {"x": "1", "y": "2.5", "label": "", "total": "10.10", "lines": "[1,2]"}}
    assert state_as(Point, row) == Point(1, 2.5, None)
    assert state_as(Totals, row) == {"total": Decimal("10.10"), "lines": [1, 2]}
    # Any other callable gets the guessed values as keyword arguments.
    assert state_as(dict, row) == {"x": 1, "y": 2.5, "label": "", "total": 10.1, "lines": [1, 2]}
    assert state_as(lambda **state: sorted(state), row) == ["label", "lines", "total", "x", "y"]
    # The server stores the string "42" and the number 42 alike; the type decides.

    @dataclass
    class Code:
        code: str

    assert state_as(Code, {"state": {"code": "42"}}) == Code("42")
    assert parse_state({"state": {"code": "42"}}) == {"code": 42}


@pytest.mark.every_python
def test_classes_local_to_a_function_under_postponed_annotations():
    # This module uses `from __future__ import annotations`: "List[Line]" names a class that
    # only exists in this function, which typing.get_type_hints cannot resolve.
    @dataclass
    class Line:
        sku: str

    @dataclass
    class Basket:
        lines: List[Line]
        owner: str

    basket = state_as(Basket, {"state": {"lines": '[{"sku":"a"}]', "owner": "42"}})
    # The unresolvable annotation is read as Any (JSON parsed); the resolvable one as typed.
    assert basket == Basket(lines=[{"sku": "a"}], owner="42")  # type: ignore[list-item]


@pytest.mark.every_python
def test_the_documented_examples_hold():
    import doctest

    import eventdbx.types

    failed, attempted = doctest.testmod(eventdbx.types, optionflags=doctest.ELLIPSIS)
    assert attempted >= 5 and failed == 0
