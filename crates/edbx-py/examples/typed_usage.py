"""A typed tour of the package, checked by ``mypy --strict`` (scripts/check-python-types.sh) and
run against a real server by the tests (tests/test_examples.py).

Run it with ``EVENTDBX_HOST``, ``EVENTDBX_PORT``, ``EVENTDBX_TOKEN`` and ``EVENTDBX_TENANT_ID``
set: ``python examples/typed_usage.py <aggregate id>``.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Dict, List, Optional, Union

from eventdbx import (
    AggregateSortField,
    AggregateSortOption,
    AsyncEventDBXClient,
    EventDBXAPIError,
    EventDBXClient,
    EventDBXError,
    EventDBXInputError,
    EventDBXOutcomeUnknownError,
    EventDBXTypeError,
    GetAggregateResult,
    ListAggregatesResult,
    ListEventsResult,
    RetryOptions,
    __version__,
    state_as,
)


@dataclass
class Order:
    """The state of an ``orders`` aggregate, typed."""

    total: Decimal
    status: str
    items: List[str]
    vip: bool = False
    note: Optional[str] = None


def blocking(aggregate_id: str) -> Order:
    client: EventDBXClient = EventDBXClient.from_env(retry=RetryOptions(attempts=3))
    with client:
        echo: Union[str, bool] = client.create(
            aggregate_type="orders",
            aggregate_id=aggregate_id,
            event_type="order.created",
            payload_json=json.dumps({"total": 19.99, "status": "new", "items": ["a"]}),
        )
        if isinstance(echo, str):
            assert json.loads(echo)["version"] == 1
        # A dict is serialised for you.
        client.apply(
            aggregate_type="orders",
            aggregate_id=aggregate_id,
            event_type="order.paid",
            payload_json={"status": "paid", "vip": True},
            metadata_json={"@source": "typed_usage"},
        )
        got: GetAggregateResult = client.get(aggregate_type="orders", aggregate_id=aggregate_id)
        raw: Optional[Dict[str, Any]] = got.aggregate
        assert raw is not None and raw["state"]["total"] == "19.99"  # the server's text
        order = got.state_as(Order)
        assert order is not None

        page: ListEventsResult = client.events(aggregate_type="orders", aggregate_id=aggregate_id)
        types: List[str] = [event["event_type"] for event in page.events]
        assert types == ["order_created", "order_paid"]  # dots come back as underscores

        listed: ListAggregatesResult = client.list(
            filter_expr=f"aggregate_id = '{aggregate_id}' AND status = 'paid'",
            sort=[AggregateSortOption(field=AggregateSortField.CREATED_AT, descending=True)],
        )
        orders: List[Order] = [state_as(Order, row) for row in listed.aggregates]
        # The orders as Parquet, for DuckDB, Polars or Spark (docs/PARQUET.md): the row count.
        with tempfile.TemporaryDirectory() as folder:
            exported: int = client.export_parquet(
                pathlib.Path(folder) / "orders.parquet", aggregate_type="orders", skip_archived=True
            )
            assert exported >= 2
        assert orders == [order]

        root: str = client.verify(aggregate_type="orders", aggregate_id=aggregate_id)
        assert root == raw["merkle_root"]

        failures: List[EventDBXError] = []
        try:
            client.get(aggregate_type="orders", aggregate_id=0)  # type: ignore[arg-type]
        except EventDBXTypeError as wrong:  # also a TypeError
            failures.append(wrong)
        try:
            client.apply(
                aggregate_type="orders", aggregate_id=aggregate_id, event_type="x",
                payload_json="[1]",
            )
        except EventDBXInputError as refused:  # also a ValueError; nothing was sent
            failures.append(refused)
        try:
            client.verify(aggregate_type="orders", aggregate_id=aggregate_id + "-missing")
        except EventDBXAPIError as missing:
            code: str = missing.code
            failures.append(missing)
        except EventDBXOutcomeUnknownError:  # a write whose reply was lost: read back first
            raise
        assert [f.kind for f in failures] == ["invalid_input", "invalid_input", "server"]
        assert code == "aggregate_not_found"
        return order


async def asynchronous(aggregate_id: str) -> int:
    async with AsyncEventDBXClient.from_env() as client:
        got: GetAggregateResult = await client.get(
            aggregate_type="orders", aggregate_id=aggregate_id
        )
        assert got.found
        versions: List[int] = [
            event["version"]
            async for event in client.iter_events(aggregate_type="orders", aggregate_id=aggregate_id)
        ]
        pages = await asyncio.gather(
            client.list(take=1), client.list(filter_expr=f"aggregate_id = '{aggregate_id}'")
        )
        assert all(isinstance(page, ListAggregatesResult) for page in pages)
        return versions[-1]


def main(argv: List[str]) -> None:
    aggregate_id = argv[1] if len(argv) > 1 else "typed_usage_1"
    order = blocking(aggregate_id)
    version = asyncio.run(asynchronous(aggregate_id))
    print(json.dumps({"eventdbx": __version__, "total": str(order.total), "version": version}))


if __name__ == "__main__":
    main(sys.argv)
