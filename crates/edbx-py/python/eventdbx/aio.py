"""The asyncio client, :class:`AsyncEventDBXClient`: the same operations as
:class:`eventdbx.EventDBXClient`, as coroutines.

>>> import asyncio
>>> from eventdbx import AsyncEventDBXClient
>>> async def main() -> None:  # doctest: +SKIP
...     async with AsyncEventDBXClient(token="…", tenant_id="tenant-123") as client:
...         await client.apply(aggregate_type="orders", aggregate_id="ord_1",
...                            event_type="paid", payload_json={"status": "paid"})
...         async for event in client.iter_events(aggregate_type="orders", aggregate_id="ord_1"):
...             print(event["version"], event["event_type"])
>>> asyncio.run(main())  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, Type, TypeVar, cast

from . import _native
from ._ops import OPERATIONS, _Operations, env_options, refused_argument, renamed
from .errors import EventDBXConnectionError, EventDBXError
from .subscription import AsyncSubscription

__all__ = ["AsyncEventDBXClient"]

_T = TypeVar("_T")
_Self = TypeVar("_Self", bound="AsyncEventDBXClient")


class _AsyncRows:
    """Rows of a listing for ``async for``, fetched a page at a time."""

    def __init__(self, open_stream: Callable[[], Awaitable[_native.NativePageStream]]) -> None:
        self._open_stream = open_stream
        self._stream: Optional[_native.NativePageStream] = None
        self._rows: List[str] = []
        self._done = False

    def __aiter__(self) -> "_AsyncRows":
        return self

    async def __anext__(self) -> Dict[str, Any]:
        while not self._rows:
            if self._done:
                raise StopAsyncIteration
            try:
                if self._stream is None:
                    self._stream = await self._open_stream()
                page = await self._stream.next_page(asynchronous=True)
            except EventDBXError as error:
                raise error.with_traceback(None)  # the caller's loop is the last frame shown
            except (UnicodeEncodeError, OverflowError) as error:
                raise refused_argument(error, {}) from None
            if page is None:
                self._done = True
                raise StopAsyncIteration
            self._rows = page[::-1]
        row: Dict[str, Any] = json.loads(self._rows.pop())
        return row


class AsyncEventDBXClient(_Operations):
    """An asyncio EventDBX client: every operation of :class:`eventdbx.EventDBXClient` as a
    coroutine, with the same arguments and results.

    The connection opens on ``async with``, on :meth:`connect`, or on the first call. One client
    serves any number of concurrent tasks (pooled and pipelined). Cancelling a call withdraws it
    if it was not sent yet; a write that was sent and cancelled may still be applied.

    >>> async def main():  # doctest: +SKIP
    ...     async with AsyncEventDBXClient(token="…", tenant_id="tenant-123") as client:
    ...         page = await client.list(take=50)
    """

    @classmethod
    def from_env(cls: Type[_Self], **overrides: Any) -> _Self:
        """A client configured from ``EVENTDBX_HOST``, ``EVENTDBX_PORT``, ``EVENTDBX_TOKEN``,
        ``EVENTDBX_TENANT_ID`` and ``EVENTDBX_NO_NOISE``; keyword arguments take precedence.
        It connects on first use (or ``async with``)."""
        try:
            return cls(**env_options(overrides))
        except EventDBXError as error:
            raise error.with_traceback(None)

    def _start(self) -> None:
        # The lock that has one task connect while the others wait, with the process and event
        # loop it belongs to: an asyncio lock serves one loop only (a client made at import
        # time meets a new loop per asyncio.run), and fork() copies a lock that a task of the
        # parent may hold for ever in the child.
        self._connecting: Optional[Tuple[int, asyncio.AbstractEventLoop, asyncio.Lock]] = None

    def _connect_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        held = self._connecting
        if held is None or held[0] != os.getpid() or held[1] is not loop:
            held = (os.getpid(), loop, asyncio.Lock())
            self._connecting = held
        return held[2]

    async def connect(self) -> "AsyncEventDBXClient":
        """Opens the first connection now (hello and handshake), so that a wrong address or
        token fails here rather than at the first call. Returns the client."""
        try:
            await self._ready()
        except EventDBXError as error:
            raise error.with_traceback(None)
        return self

    async def _ready(self) -> Any:
        if self._closed:
            raise EventDBXConnectionError("the client was closed", kind="closed")
        if self._native is None:
            async with self._connect_lock():
                if self._native is None:
                    native = await _native.NativeClient.connect(self._options, asynchronous=True)
                    if self._closed:
                        # close() came while it connected: that connection is not kept.
                        native.close()
                        raise EventDBXConnectionError("the client was closed", kind="closed")
                    if self._native is None:
                        self._native = native
                    else:
                        # A task on another event loop connected meanwhile: keep one.
                        native.close()
        return self._native

    async def close(self) -> None:
        """Stops new calls; calls already running complete, then the connections close."""
        self._closed = True
        if self._native is not None:
            self._native.close()

    async def __aenter__(self) -> "AsyncEventDBXClient":
        return await self.connect()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """Whether the client is connected and takes calls."""
        return self._native is not None and not self._closed

    @property
    def encrypted(self) -> bool:
        """Whether every open connection runs under Noise."""
        return self._native is not None and bool(self._native.encrypted)

    def _call(self, method: str, args: Tuple[Any, ...], wrap: Callable[[Any], _T]) -> _T:
        async def call() -> _T:
            native = self._native if self._native is not None else await self._ready()
            return wrap(await getattr(native, method)(*args, asynchronous=True))

        # A coroutine of _T, not a _T: the public methods below await it, and aio.pyi types
        # them as coroutines.
        return cast(_T, call())

    def _rows(self, method: str, args: Tuple[Any, ...]) -> Any:
        async def open_stream() -> _native.NativePageStream:
            stream: _native.NativePageStream = getattr(await self._ready(), method)(*args)
            return stream

        return _AsyncRows(open_stream)

    def _subscription(self, args: Tuple[Any, ...]) -> Any:
        async def start() -> _native.NativeSubscription:
            native: _native.NativeSubscription = (await self._ready()).subscribe(*args)
            return native

        return AsyncSubscription(start)


def _coroutine(name: str, operation: Callable[..., Any]) -> Callable[..., Any]:
    """``operation`` as an ``async def`` method ``name`` of the client: argument errors and
    failures are raised from it with the frames below dropped, so a traceback ends at
    ``AsyncEventDBXClient.<name>``."""

    @functools.wraps(operation)
    async def method(self: AsyncEventDBXClient, *args: Any, **kwargs: Any) -> Any:
        try:
            return await operation(self, *args, **kwargs)
        except EventDBXError as error:
            raise error.with_traceback(None)
        except (UnicodeEncodeError, OverflowError) as error:
            raise refused_argument(error, kwargs) from None

    return renamed(method, name, "AsyncEventDBXClient")


def _listing(name: str, operation: Callable[..., Any]) -> Callable[..., Any]:
    """``operation`` (an ``iter_*`` listing or ``subscribe``, which return an async iterator)
    as method ``name``, its argument errors raised from it."""

    @functools.wraps(operation)
    def method(self: AsyncEventDBXClient, *args: Any, **kwargs: Any) -> Any:
        try:
            return operation(self, *args, **kwargs)
        except EventDBXError as error:
            raise error.with_traceback(None)
        except (UnicodeEncodeError, OverflowError) as error:
            raise refused_argument(error, kwargs) from None

    return renamed(method, name, "AsyncEventDBXClient")


for _name in OPERATIONS:
    _make = _listing if _name.startswith("iter_") or _name == "subscribe" else _coroutine
    setattr(AsyncEventDBXClient, _name, _make(_name, getattr(_Operations, _name)))
del _name, _make
