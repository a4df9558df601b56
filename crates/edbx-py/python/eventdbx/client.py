"""The blocking client, :class:`EventDBXClient`.

Everything the official package 0.1.8 exports from ``eventdbx.client`` is importable from here
too, so ``from eventdbx.client import EventDBXClient, RetryOptions`` keeps working.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict

from . import _native, errors, types
from ._ops import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_READ_TIMEOUT,
    _Operations,
)
from .errors import *  # noqa: F403 (the names 0.1.8's client module exported)
from .types import *  # noqa: F403

__all__ = [
    "EventDBXClient",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_READ_TIMEOUT",
    *errors.__all__,
    *types.__all__,
]


class _Rows:
    """Rows of a listing, fetched a page at a time as iteration reaches them."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._rows: list = []
        self._done = False

    def __iter__(self) -> "_Rows":
        return self

    def __next__(self) -> Dict[str, Any]:
        while not self._rows:
            if self._done:
                raise StopIteration
            page = self._stream.next_page()
            if page is None:
                self._done = True
                raise StopIteration
            self._rows = page[::-1]
        return json.loads(self._rows.pop())


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

    def _call(self, method: str, args: tuple, wrap: Callable[[Any], Any]) -> Any:
        return wrap(getattr(self._native, method)(*args))

    def _rows(self, method: str, args: tuple) -> Any:
        return _Rows(getattr(self._native, method)(*args))
