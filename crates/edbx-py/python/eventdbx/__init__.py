"""EventDBX client for Python, on the Rust core of ``edbx``.

A drop-in replacement for the official ``eventdbx`` package (0.1.8): the same import name,
classes, arguments and results, plus an asyncio client, iterators that follow cursors, and a
connection engine that pools, pipelines and never sends a write twice.

>>> from eventdbx import EventDBXClient
>>> with EventDBXClient(token="…", tenant_id="tenant-123") as client:  # doctest: +SKIP
...     client.apply(aggregate_type="orders", aggregate_id="ord_1", event_type="paid",
...                  payload_json='{"status": "paid"}')

Coming from 0.1.8, four things about what the server gives back:

* **State values are the server's text.** The server stores every state value as text:
  ``get(...).aggregate["state"]`` is ``{"total": "19.99", "paid": "true", "items": "[1,2]"}``
  for a payload ``{"total": 19.99, "paid": true, "items": [1, 2]}`` (nested objects and lists as
  JSON text, ``null`` as ``""``). :meth:`GetAggregateResult.state` parses them back
  (``{"total": 19.99, "paid": True, "items": [1, 2]}``) and
  :meth:`GetAggregateResult.state_as` builds your own dataclass or any callable from them;
  :func:`state_as` does the same for a listed aggregate.
* **Event types with dots read back with underscores**: an event written as
  ``event_type="order.paid"`` is listed as ``"order_paid"``.
* **verify() returns the stored Merkle root** (64 hex characters) as server 3.19.4 reports it;
  the server recomputes nothing. ``verify_history(...)`` is the check: it recomputes the root
  from the events and returns a :class:`VerificationResult` (intact, mismatch or unverifiable).
* **Filters** (``filter_expr=`` of ``list``/``iter_aggregates``) are evaluated by the server:
  ``status = 'paid' AND total > 40``; see :mod:`eventdbx.client` for the grammar.
"""

from __future__ import annotations

from . import _native
from ._install import warn_if_shadowed as _warn_if_shadowed
from .aio import AsyncEventDBXClient
from .client import EventDBXClient
from .control_schema import build_control_hello, load_control_schema
from .errors import (
    EventDBXAPIError,
    EventDBXCheckpointError,
    EventDBXConnectionError,
    EventDBXError,
    EventDBXExportIncompleteError,
    EventDBXHandshakeError,
    EventDBXInputError,
    EventDBXOutcomeUnknownError,
    EventDBXProtocolError,
    EventDBXReplyTooLargeError,
    EventDBXTimeoutError,
    EventDBXTypeError,
    EventDBXStateError,
)
from .subscription import (
    AsyncSubscription,
    CheckpointStore,
    FileCheckpointStore,
    Projection,
    SubscribedEvent,
    Subscription,
    UnreadableAggregate,
)
from .noise import DEFAULT_NOISE_PROLOGUE, DEFAULT_NOISE_PROTOCOL, NoiseSession, derive_psk
from .types import (
    AggregateSortField,
    AggregateSortOption,
    GetAggregateResult,
    GetSnapshotResult,
    ListAggregatesResult,
    ListEventsResult,
    ListSnapshotsResult,
    PublishTarget,
    RetryOptions,
    SelectAggregateResult,
    TenantAssignResult,
    TenantQuotaResult,
    TenantSchemaPublishResult,
    VerificationResult,
    parse_state,
    state_as,
)

__version__: str = _native.CORE_VERSION

# Written out (not computed) so that type checkers see every name.
__all__ = [
    "EventDBXClient",
    "AsyncEventDBXClient",
    # errors
    "EventDBXError",
    "EventDBXAPIError",
    "EventDBXInputError",
    "EventDBXTypeError",
    "EventDBXCheckpointError",
    "EventDBXStateError",
    "EventDBXConnectionError",
    "EventDBXHandshakeError",
    "EventDBXTimeoutError",
    "EventDBXOutcomeUnknownError",
    "EventDBXProtocolError",
    "EventDBXReplyTooLargeError",
    "EventDBXExportIncompleteError",
    # options and results
    "AggregateSortField",
    "AggregateSortOption",
    "GetAggregateResult",
    "GetSnapshotResult",
    "ListAggregatesResult",
    "ListEventsResult",
    "ListSnapshotsResult",
    "PublishTarget",
    "RetryOptions",
    "SelectAggregateResult",
    "TenantAssignResult",
    "TenantQuotaResult",
    "TenantSchemaPublishResult",
    "VerificationResult",
    "parse_state",
    "state_as",
    # subscriptions
    "SubscribedEvent",
    "UnreadableAggregate",
    "Subscription",
    "AsyncSubscription",
    "CheckpointStore",
    "FileCheckpointStore",
    "Projection",
    # protocol helpers
    "NoiseSession",
    "DEFAULT_NOISE_PROTOCOL",
    "DEFAULT_NOISE_PROLOGUE",
    "derive_psk",
    "build_control_hello",
    "load_control_schema",
    "__version__",
]

_warn_if_shadowed()
