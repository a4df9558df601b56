"""The asyncio client, :class:`AsyncEventDBXClient`: the same operations as
:class:`eventdbx.EventDBXClient`, as coroutines."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable, Dict, Optional

from . import _native
from ._ops import _Operations

__all__ = ["AsyncEventDBXClient"]


class _AsyncRows:
    """Rows of a listing for ``async for``, fetched a page at a time."""

    def __init__(self, open_stream: Callable[[], Any]) -> None:
        self._open_stream = open_stream
        self._stream: Any = None
        self._rows: list = []
        self._done = False

    def __aiter__(self) -> "_AsyncRows":
        return self

    async def __anext__(self) -> Dict[str, Any]:
        while not self._rows:
            if self._done:
                raise StopAsyncIteration
            if self._stream is None:
                self._stream = await self._open_stream()
            page = await self._stream.next_page(asynchronous=True)
            if page is None:
                self._done = True
                raise StopAsyncIteration
            self._rows = page[::-1]
        return json.loads(self._rows.pop())


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

    def _start(self) -> None:
        self._connecting: Optional[asyncio.Lock] = None

    async def connect(self) -> "AsyncEventDBXClient":
        """Opens the first connection now (hello and handshake), so that a wrong address or
        token fails here rather than at the first call. Returns the client."""
        await self._ready()
        return self

    async def _ready(self) -> Any:
        if self._closed:
            raise _native_closed()
        if self._native is None:
            if self._connecting is None:
                self._connecting = asyncio.Lock()
            async with self._connecting:
                if self._native is None:
                    self._native = await _native.NativeClient.connect(
                        self._options, asynchronous=True
                    )
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

    def _call(self, method: str, args: tuple, wrap: Callable[[Any], Any]) -> Any:
        async def call() -> Any:
            native = self._native if self._native is not None else await self._ready()
            return wrap(await getattr(native, method)(*args, asynchronous=True))

        return call()

    def _rows(self, method: str, args: tuple) -> Any:
        async def open_stream() -> Any:
            return getattr(await self._ready(), method)(*args)

        return _AsyncRows(open_stream)


def _native_closed() -> Exception:
    from .errors import EventDBXConnectionError

    return EventDBXConnectionError("the client was closed", kind="closed")
