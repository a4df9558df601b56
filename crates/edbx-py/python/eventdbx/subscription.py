"""Catch-up subscriptions: every event of the store (or of some aggregate types), in version
order per aggregate, from the beginning, from now or from a checkpoint, caught up and then
followed live. The Rust core does the work (``edbx::Client::subscribe``); this module shapes it
for Python.

>>> from eventdbx import EventDBXClient, FileCheckpointStore
>>> with EventDBXClient.from_env() as client:  # doctest: +SKIP
...     store = FileCheckpointStore("orders.checkpoint")
...     feed = client.subscribe(aggregate_types=["orders"], checkpoint=store.load())
...     for delivered in feed:
...         print(delivered.aggregate_id, delivered.version, delivered.payload)
...         store.save(delivered.checkpoint)  # or with your own writes, in one transaction

Guarantees (server 3.19.4, whose clock steps back by at most ``overlap``): no event of a followed
active aggregate is skipped — also while many clients write, across server restarts and across
the subscriber's restarts from its stored checkpoint; an aggregate's events come in version
order, each once per subscription; after a restart, events written within the overlap may come
again (at-least-once); memory stays bounded. Archived aggregates are not followed (the server
serves only active aggregates' events): see :meth:`Subscription.take_unreadable`. The full
account: ``docs/SUBSCRIPTIONS.md``.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional, Protocol, Tuple, Union

from . import _native
from .errors import EventDBXError

__all__ = [
    "SubscribedEvent",
    "UnreadableAggregate",
    "Subscription",
    "AsyncSubscription",
    "CheckpointStore",
    "FileCheckpointStore",
    "Projection",
]


@dataclass(frozen=True)
class SubscribedEvent:
    """One delivered event and the checkpoint just after it: store the checkpoint with the
    effects of handling the event, and a subscription started from it goes on after it."""

    #: The event, as ``iter_events`` gives it (``aggregate_type``, ``aggregate_id``,
    #: ``version``, ``event_type``, ``payload``, ``metadata``, …).
    event: Dict[str, Any]
    #: Opaque, versioned text: store it as it is.
    checkpoint: str

    @property
    def aggregate_type(self) -> str:
        return str(self.event["aggregate_type"])

    @property
    def aggregate_id(self) -> str:
        return str(self.event["aggregate_id"])

    @property
    def version(self) -> int:
        return int(self.event["version"])

    @property
    def event_type(self) -> str:
        """The event type as written (``order.paid``; the server also keeps it normalized,
        ``order_paid``, in ``event["event_type"]``)."""
        return str(self.event.get("event_type_raw") or self.event["event_type"])

    @property
    def payload(self) -> Any:
        return self.event.get("payload")


@dataclass(frozen=True)
class UnreadableAggregate:
    """An archived aggregate whose events the subscription could not read."""

    aggregate_type: str
    aggregate_id: str
    #: Its version when listed, archived.
    version: int
    #: Delivered through this version: the events after it, up to ``version``, were not.
    #: ``None`` when the subscription cannot tell (it was behind when the aggregate was
    #: archived: events written meanwhile, if any, are missing).
    delivered_through: Optional[int]


_Batch = List[Tuple[str, str]]
#: A batch as the core hands it over: its number and its events.
_Handed = Optional[Tuple[int, _Batch]]
#: Events asked of the core at once when iterating one at a time.
_FETCH = 1000


def _delivered(batch: _Batch) -> List[SubscribedEvent]:
    return [SubscribedEvent(json.loads(event), checkpoint) for event, checkpoint in batch]


class _Buffered:
    """What both subscription classes share: events handed over but not yet yielded."""

    def __init__(self) -> None:
        # The number of the last batch received from the core, and what is left of it. One
        # attribute, so that a Ctrl-C or a cancellation never leaves one without the other:
        # the core hands a batch over again until a call says it was received.
        self._inbox: Tuple[int, List[SubscribedEvent]] = (0, [])
        self._last: Optional[str] = None
        self._done = False

    @property
    def _buffer(self) -> List[SubscribedEvent]:
        return self._inbox[1]

    @property
    def _received(self) -> int:
        return self._inbox[0]

    def _native_state(self) -> Optional[_native.NativeSubscription]:
        raise NotImplementedError

    def _keep(self, handed: _Handed) -> bool:
        """Buffers a batch from the core; false at the end (``None``) or on a timeout
        (``[]``)."""
        if handed is None:
            self._done = True
            return False
        number, batch = handed
        if not batch:
            return False
        self._inbox = (number, _delivered(batch))
        native = self._native_state()
        if native is not None:
            # Its checkpoint moves past the batch now, not at the next call.
            native.received(number)
        return True

    def _take(self, max_events: int) -> List[SubscribedEvent]:
        events = self._buffer
        taken = events[:max_events]
        del events[:max_events]
        if taken:
            self._last = taken[-1].checkpoint
        return taken

    @property
    def checkpoint(self) -> Optional[str]:
        """The checkpoint after every event yielded so far (it also moves while nothing comes,
        as the subscription completes its rounds), or ``None`` before the subscription ran."""
        native = self._native_state()
        if self._buffer or native is None:
            return self._last
        return native.checkpoint

    @property
    def caught_up(self) -> bool:
        """Whether every event written before some moment after the start has been yielded."""
        native = self._native_state()
        return not self._buffer and native is not None and native.caught_up

    def take_unreadable(self) -> List[UnreadableAggregate]:
        """The archived aggregates met since the last call whose events could not be read."""
        native = self._native_state()
        if native is None:
            return []
        return [UnreadableAggregate(*report) for report in native.take_unreadable()]


class Subscription(_Buffered):
    """A running subscription of :class:`eventdbx.EventDBXClient`: iterate over it for
    :class:`SubscribedEvent` s (each ``next`` blocks until one comes; Ctrl-C interrupts), or ask
    for :meth:`next_batch`. Iteration ends only with ``until_caught_up=True`` (or a failure)."""

    def __init__(self, native: _native.NativeSubscription) -> None:
        super().__init__()
        self._native = native

    def _native_state(self) -> Optional[_native.NativeSubscription]:
        return self._native

    def __iter__(self) -> "Subscription":
        return self

    def __next__(self) -> SubscribedEvent:
        events = self._next(1, _FETCH, None)
        if events is None:
            raise StopIteration
        return events[0]

    def next_batch(
        self, max_events: int = 1000, timeout: Optional[float] = None
    ) -> Optional[List[SubscribedEvent]]:
        """The next events (at least one, at most ``max_events``); ``[]`` if none came within
        ``timeout`` seconds; ``None`` once the subscription ended."""
        return self._next(max_events, max_events, timeout)

    def _next(
        self, take: int, fetch: int, timeout: Optional[float]
    ) -> Optional[List[SubscribedEvent]]:
        while not self._buffer:
            if self._done:
                return None
            try:
                handed = self._native.next_batch(fetch, timeout, self._received)
            except EventDBXError as error:
                raise error.with_traceback(None)
            if not self._keep(handed):
                return None if self._done else []
        return self._take(take)


class AsyncSubscription(_Buffered):
    """A running subscription of :class:`eventdbx.AsyncEventDBXClient`: ``async for`` over it,
    or ``await`` :meth:`next_batch`."""

    def __init__(self, start: Callable[[], Awaitable[_native.NativeSubscription]]) -> None:
        super().__init__()
        self._start = start
        self._native: Optional[_native.NativeSubscription] = None

    def _native_state(self) -> Optional[_native.NativeSubscription]:
        return self._native

    def __aiter__(self) -> "AsyncSubscription":
        return self

    async def __anext__(self) -> SubscribedEvent:
        events = await self._next(1, _FETCH, None)
        if events is None:
            raise StopAsyncIteration
        return events[0]

    async def next_batch(
        self, max_events: int = 1000, timeout: Optional[float] = None
    ) -> Optional[List[SubscribedEvent]]:
        """The next events (at least one, at most ``max_events``); ``[]`` if none came within
        ``timeout`` seconds; ``None`` once the subscription ended. Cancelling it loses
        nothing."""
        return await self._next(max_events, max_events, timeout)

    async def _next(
        self, take: int, fetch: int, timeout: Optional[float]
    ) -> Optional[List[SubscribedEvent]]:
        while not self._buffer:
            if self._done:
                return None
            try:
                if self._native is None:
                    self._native = await self._start()
                handed = await self._native.next_batch(
                    fetch, timeout, self._received, asynchronous=True
                )
            except EventDBXError as error:
                raise error.with_traceback(None)
            if not self._keep(handed):
                return None if self._done else []
        return self._take(take)


class CheckpointStore(Protocol):
    """Where a :class:`Projection` keeps its checkpoint. For effectively-once processing, keep
    it in the same database as the projection's results and save it in the same transaction
    (see ``examples/sqlite_read_model.py``)."""

    def load(self) -> Optional[str]: ...

    def save(self, checkpoint: str) -> None: ...


class FileCheckpointStore:
    """A checkpoint in a file, replaced atomically (temporary file, ``fsync``, rename, ``fsync``
    of the directory): a crash leaves the old checkpoint or the new one, never a torn one."""

    def __init__(self, path: Union[str, "os.PathLike[str]"]) -> None:
        self.path = path

    def load(self) -> Optional[str]:
        """The stored checkpoint, or ``None`` if there is no file yet. A file that holds no
        checkpoint (empty, or not UTF-8 text) raises
        :class:`~eventdbx.errors.EventDBXCheckpointError`."""
        return _native.load_checkpoint_file(self.path)

    def save(self, checkpoint: str) -> None:
        """Stores ``checkpoint`` (checked first: a text that is not one raises
        :class:`eventdbx.EventDBXCheckpointError`)."""
        try:
            _native.save_checkpoint_file(self.path, checkpoint)
        except EventDBXError as error:
            raise error.with_traceback(None)


Handler = Callable[[SubscribedEvent], Any]


class Projection:
    """Runs a subscription into ``handler``, storing the checkpoint in ``store``: from the
    stored checkpoint when there is one, ``handler`` is called once per event, in order; the
    checkpoint of the last handled event is stored every ``save_every`` events or
    ``save_interval`` seconds (also while idle) and when the projection stops, also by a
    failure of the handler (which is raised). After a crash, events handled since the last save
    are handled again: make the handler idempotent, or store the checkpoint with its effects.

    The other keyword arguments are those of ``client.subscribe`` (``aggregate_types``,
    ``start``, ``until_caught_up``, …). With :class:`eventdbx.AsyncEventDBXClient`, use
    :meth:`run_async`; the handler may then be a coroutine function.

    >>> totals = {}
    >>> def count(event):  # doctest: +SKIP
    ...     totals[event.aggregate_id] = totals.get(event.aggregate_id, 0) + 1
    >>> Projection(client, count, FileCheckpointStore("p.ckpt"),  # doctest: +SKIP
    ...            aggregate_types=["orders"], until_caught_up=True).run()
    """

    def __init__(
        self,
        client: Any,
        handler: Handler,
        store: CheckpointStore,
        *,
        save_every: int = 100,
        save_interval: float = 1.0,
        **subscribe: Any,
    ) -> None:
        if save_every < 1 or save_interval <= 0:
            raise ValueError("save_every must be at least 1 and save_interval above 0")
        self.client = client
        self.handler = handler
        self.store = store
        self.save_every = save_every
        self.save_interval = save_interval
        self.subscribe = subscribe

    def _options(self) -> Dict[str, Any]:
        options = dict(self.subscribe)
        stored = self.store.load()
        if stored is not None:
            options["checkpoint"] = stored
        return options

    def run(self) -> None:
        """Runs until the subscription ends (``until_caught_up=True``) or something fails."""
        feed: Subscription = self.client.subscribe(**self._options())
        saver = _Saver(self.store, self.save_every, self.save_interval)
        try:
            while True:
                batch = feed.next_batch(self.save_every, saver.wait())
                if batch is None:
                    saver.handled = feed.checkpoint
                    return
                if not batch:
                    saver.idle(feed.checkpoint)
                    continue
                for delivered in batch:
                    self.handler(delivered)
                    saver.did(delivered.checkpoint)
        finally:
            saver.flush()

    async def run_async(self) -> None:
        """:meth:`run` for :class:`eventdbx.AsyncEventDBXClient`; a handler that returns an
        awaitable is awaited."""
        feed: AsyncSubscription = self.client.subscribe(**self._options())
        saver = _Saver(self.store, self.save_every, self.save_interval)
        try:
            while True:
                batch = await feed.next_batch(self.save_every, saver.wait())
                if batch is None:
                    saver.handled = feed.checkpoint
                    return
                if not batch:
                    saver.idle(feed.checkpoint)
                    continue
                for delivered in batch:
                    result = self.handler(delivered)
                    if inspect.isawaitable(result):
                        await result
                    saver.did(delivered.checkpoint)
        finally:
            saver.flush()


class _Saver:
    """When a projection stores its checkpoint."""

    def __init__(self, store: CheckpointStore, every: int, interval: float) -> None:
        self.store = store
        self.every = every
        self.interval = interval
        self.handled: Optional[str] = None
        self.saved: Optional[str] = None
        self.unsaved = 0
        self.last = time.monotonic()

    def wait(self) -> float:
        """How long the next batch may take before an idle save is due."""
        return max(0.0, self.interval - (time.monotonic() - self.last))

    def did(self, checkpoint: str) -> None:
        self.handled = checkpoint
        self.unsaved += 1
        if self.unsaved >= self.every or time.monotonic() - self.last >= self.interval:
            self.flush()

    def idle(self, checkpoint: Optional[str]) -> None:
        # Every event yielded is handled: the subscription's checkpoint is safe to store.
        if checkpoint is not None:
            self.handled = checkpoint
        self.flush()

    def flush(self) -> None:
        if self.handled is not None and self.handled != self.saved:
            self.store.save(self.handled)
            self.saved = self.handled
        self.unsaved = 0
        self.last = time.monotonic()
