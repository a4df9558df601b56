"""The blocking client, :class:`EventDBXClient`.

Everything the official package 0.1.8 exports from ``eventdbx.client`` is importable from here
too, so ``from eventdbx.client import EventDBXClient, RetryOptions`` keeps working.

Filters
-------
``filter_expr`` of :meth:`EventDBXClient.list_aggregates` and
:meth:`EventDBXClient.iter_aggregates` is a boolean expression the server (3.19.4) evaluates on
each aggregate while it scans, so pages are filled with matching rows::

    expr       := or
    or         := and ( OR and )*
    and        := not ( AND not )*
    not        := NOT not | '(' expr ')' | comparison
    comparison := field [NOT] op value  |  field [NOT] IN '[' value, ... ']'
    op         := =  |  !=  |  >  |  <  |  LIKE
    value      := 'text' | "text" | number | true | false | null | bare_word (a text)

Keywords are case-insensitive. There is no ``>=``, ``<=``, ``==`` or ``<>``, and ``IN`` takes
square brackets. Fields: ``aggregate_type``, ``aggregate_id``, ``merkle_root`` (texts),
``version`` (a number), ``archived`` (a boolean; naming it also lists archived aggregates),
``created_at`` and ``updated_at`` (milliseconds since the epoch), ``extensions.<key>`` (the ``@``
metadata, e.g. ``extensions.@trace.id``), and anything else is a dot path into the state
(``status``, ``address.city``, ``items.0``). State values are stored as text and parsed back for
comparing, so the stored ``"42"`` compares as the number 42. ``=`` and ``!=`` match only values
of the same type; ``>`` and ``<`` compare numbers only; ``LIKE`` matches whole texts with ``%`` or
``*`` for any run and ``_`` or ``?`` for one character. A field the aggregate does not have
matches only ``!= null``. A misspelt field name is not an error: it matches nothing
(``type = 'orders'`` finds nothing; the field is ``aggregate_type``). A filter the server cannot
parse raises :class:`~eventdbx.errors.EventDBXInputError`.

Examples, for an aggregate created with ``{"status": "paid", "total": 42.5, "n": 3, "vip": true,
"addr": {"city": "Oslo"}}``: ``status = 'paid'``, ``status IN ['paid', 'open']``,
``status LIKE 'pa%'``, ``total > 40 AND n = 3``, ``(status = 'open' OR total > 40) AND n = 3``,
``NOT status = 'open'``, ``vip = true``, ``addr.city = 'Oslo'``, ``missing != null`` all match;
``total >= 40`` and ``status == 'paid'`` are refused.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable, Dict, Iterator, List, Tuple, Type, TypeVar

from . import _native
from ._ops import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_READ_TIMEOUT,
    OPERATIONS,
    _Operations,
    env_options,
    refused_argument,
    renamed,
)
# The names 0.1.8's client module exported, written out so that type checkers see them.
from .errors import (
    EventDBXAPIError,
    EventDBXConnectionError,
    EventDBXError,
    EventDBXHandshakeError,
    EventDBXInputError,
    EventDBXOutcomeUnknownError,
    EventDBXProtocolError,
    EventDBXReplyTooLargeError,
    EventDBXTimeoutError,
    EventDBXTypeError,
    EventDBXStateError,
)
from .subscription import Subscription
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
)

__all__ = [
    "EventDBXClient",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_READ_TIMEOUT",
    "EventDBXError",
    "EventDBXAPIError",
    "EventDBXInputError",
    "EventDBXTypeError",
    "EventDBXStateError",
    "EventDBXConnectionError",
    "EventDBXHandshakeError",
    "EventDBXTimeoutError",
    "EventDBXOutcomeUnknownError",
    "EventDBXProtocolError",
    "EventDBXReplyTooLargeError",
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
]


_T = TypeVar("_T")
_Self = TypeVar("_Self", bound="EventDBXClient")


class _Rows:
    """Rows of a listing, fetched a page at a time as iteration reaches them."""

    def __init__(self, stream: _native.NativePageStream) -> None:
        self._stream = stream
        self._rows: List[str] = []
        self._done = False

    def __iter__(self) -> "_Rows":
        return self

    def __next__(self) -> Dict[str, Any]:
        while not self._rows:
            if self._done:
                raise StopIteration
            try:
                page = self._stream.next_page()
            except EventDBXError as error:
                raise error.with_traceback(None)  # the caller's loop is the last frame shown
            if page is None:
                self._done = True
                raise StopIteration
            self._rows = page[::-1]
        row: Dict[str, Any] = json.loads(self._rows.pop())
        return row


class EventDBXClient(_Operations):
    """A blocking EventDBX client on the Rust core: a drop-in for the official package's
    ``EventDBXClient``, with the same keyword arguments, methods and results.

    Construction connects (hello and Noise handshake included), so a wrong address or token
    fails here. One client is safe to share between threads: calls release the GIL and run
    concurrently over a pool of pipelined connections (``pool_size`` connections, up to
    ``max_in_flight`` requests each). ``read_timeout`` is the deadline of a whole call.
    ``host`` and ``port`` default to ``EVENTDBX_HOST`` and ``EVENTDBX_PORT``, then to
    ``127.0.0.1:6363``.

    >>> with EventDBXClient(token="…", tenant_id="tenant-123") as client:  # doctest: +SKIP
    ...     client.get(aggregate_type="orders", aggregate_id="ord_123").found
    True
    """

    @classmethod
    def from_env(cls: Type[_Self], **overrides: Any) -> _Self:
        """A client configured from ``EVENTDBX_HOST``, ``EVENTDBX_PORT``, ``EVENTDBX_TOKEN``,
        ``EVENTDBX_TENANT_ID`` and ``EVENTDBX_NO_NOISE``; keyword arguments take precedence."""
        try:
            return cls(**env_options(overrides))
        except EventDBXError as error:
            raise error.with_traceback(None)

    def _start(self) -> None:
        self._closed = True
        self._native = _native.NativeClient.connect(self._options)
        self._closed = False

    def close(self) -> None:
        """Stops new calls; calls already running complete, then the connections close."""
        if not self._closed:
            self._closed = True
            self._native.close()

    def __enter__(self) -> "EventDBXClient":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        """Whether the client takes calls (until :meth:`close`). Connections lost meanwhile
        are reopened by the next call."""
        return not self._closed

    @property
    def encrypted(self) -> bool:
        """Whether every open connection runs under Noise."""
        return bool(self._native.encrypted)

    def _call(self, method: str, args: Tuple[Any, ...], wrap: Callable[[Any], _T]) -> _T:
        return wrap(getattr(self._native, method)(*args))

    def _rows(self, method: str, args: Tuple[Any, ...]) -> Iterator[Dict[str, Any]]:
        return _Rows(getattr(self._native, method)(*args))

    def _subscription(self, args: Tuple[Any, ...]) -> Subscription:
        return Subscription(self._native.subscribe(*args))


def _public(name: str, operation: Callable[..., Any]) -> Callable[..., Any]:
    """``operation`` as the client's own method ``name``. A failure is raised from it with the
    frames below it dropped, so a traceback ends at ``EventDBXClient.<name>``, not inside the
    package."""

    @functools.wraps(operation)
    def method(self: EventDBXClient, *args: Any, **kwargs: Any) -> Any:
        try:
            return operation(self, *args, **kwargs)
        except EventDBXError as error:
            raise error.with_traceback(None)
        except (UnicodeEncodeError, OverflowError) as error:
            raise refused_argument(error, kwargs) from None

    return renamed(method, name, "EventDBXClient")


for _name in ("__init__", *OPERATIONS):
    setattr(EventDBXClient, _name, _public(_name, getattr(_Operations, _name)))
del _name
