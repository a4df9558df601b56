"""Every operation, written once for both clients.

Each method checks its arguments the way the official package 0.1.8 does, picks the native call
and says how to wrap its result; ``_call`` (defined by :class:`eventdbx.EventDBXClient` and
:class:`eventdbx.AsyncEventDBXClient`) runs it blocking or returns a coroutine. So the blocking
and asyncio clients cannot drift apart.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from . import _native
from .errors import (
    EventDBXError,
    EventDBXExportIncompleteError,
    EventDBXInputError,
    EventDBXTypeError,
)
from .subscription import Subscription
from .types import (
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
    publish_target_tuples,
    sort_text,
)

if TYPE_CHECKING:
    from ._native import _ClientOptions, _ExportOptions

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6363
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 15.0
# The engine's, so that the Python and Rust clients cannot disagree.
DEFAULT_POOL_SIZE: int = _native.DEFAULTS["pool_size"]
DEFAULT_MAX_IN_FLIGHT: int = _native.DEFAULTS["max_in_flight"]

Targets = Optional[Sequence[Union[PublishTarget, Mapping[str, Any]]]]
Sort = Union[str, List[AggregateSortOption], None]
#: A JSON object as text, or a mapping that the client serialises with ``json.dumps``.
JsonObject = Union[str, Mapping[str, Any]]

_T = TypeVar("_T")
_Client = TypeVar("_Client", bound="_ClientBase")
_Page = TypeVar("_Page", ListAggregatesResult, ListEventsResult)
_Found = TypeVar("_Found", GetAggregateResult, SelectAggregateResult, GetSnapshotResult)


def _type_name(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _text(name: str, value: object) -> str:
    """A required text argument: a non-empty ``str``."""
    if isinstance(value, str):
        if value:
            return value
        raise EventDBXInputError(f"{name} must be a non-empty str, got an empty str")
    if value is None:
        raise EventDBXInputError(f"{name} must be provided (a non-empty str), got None")
    raise EventDBXTypeError(f"{name} must be a str, got {_type_name(value)} ({value!r})")


def _texts(name: str, values: object) -> List[str]:
    """A list argument of texts (``fields``, ``labels``): each a ``str``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise EventDBXTypeError(
            f"{name} must be a list of str, got {_type_name(values)} ({values!r})"
        )
    texts = list(values)
    for value in texts:
        if not isinstance(value, str):
            raise EventDBXTypeError(
                f"{name} must hold only str, got {_type_name(value)} ({value!r})"
            )
    return texts


def refused_argument(error: Exception, arguments: Mapping[str, Any]) -> EventDBXInputError:
    """An argument that passed the checks above but that the Rust core cannot take (a ``str``
    holding a lone surrogate, which is not Unicode text; an ``int`` past the core's 64 bits),
    as the typed error, naming the argument when it is found among ``arguments``. Raised while
    the call's arguments are converted, so nothing was sent."""

    def values(value: Any) -> Iterator[Any]:
        yield value
        if isinstance(value, Mapping):
            yield from value.values()
        elif isinstance(value, (list, tuple)):
            yield from value

    def holding(found: Callable[[Any], bool]) -> str:
        names = [name for name, value in arguments.items() if any(map(found, values(value)))]
        return names[0] if len(names) == 1 else "an argument"

    if isinstance(error, UnicodeEncodeError):
        name = holding(lambda v: isinstance(v, str) and v == error.object)
        return EventDBXInputError(
            f"{name} is not valid Unicode text ({error.reason} at index {error.start}): "
            "a str holding a lone surrogate cannot be sent"
        )
    name = holding(
        lambda v: isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**63
    )
    return EventDBXInputError(f"{name} is out of range for a 64-bit integer ({error})")


def _optional_text(name: str, value: object) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    raise EventDBXTypeError(f"{name} must be a str or None, got {_type_name(value)} ({value!r})")


def _optional_int(name: str, value: object, minimum: int) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventDBXTypeError(
            f"{name} must be an int or None, got {_type_name(value)} ({value!r})"
        )
    if value < minimum:
        raise EventDBXInputError(f"{name} must be at least {minimum}, got {value}")
    return value


def _seconds(name: str, value: object) -> float:
    """A duration argument: a number of seconds above 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EventDBXTypeError(
            f"{name} must be a number of seconds, got {_type_name(value)} ({value!r})"
        )
    if not value > 0:
        raise EventDBXInputError(f"{name} must be above 0 seconds, got {value}")
    return float(value)


def _required_int(name: str, value: object, minimum: int) -> int:
    checked = _optional_int(name, value, minimum)
    if checked is None:
        raise EventDBXInputError(f"{name} must be provided (an int), got None")
    return checked


def _json_text(name: str, value: object) -> str:
    """``value`` serialised with ``json.dumps``, or the typed error naming ``name``."""
    try:
        # NaN and infinities are not JSON: refused here, not by the server.
        return json.dumps(value, allow_nan=False)
    except RecursionError:
        raise EventDBXInputError(f"{name} is nested too deeply to serialise") from None
    except (TypeError, ValueError) as error:
        raise EventDBXTypeError(
            f"{name} was given as a {_type_name(value)} that json.dumps cannot serialise: "
            f"{error}"
        ) from None


def _json_object(name: str, value: object) -> str:
    """``payload_json``/``metadata_json``: JSON text as 0.1.8 takes it, or a mapping, which is
    serialised (``json.dumps``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return _json_text(name, dict(value))
    raise EventDBXTypeError(
        f"{name} must be a JSON object as a str (e.g. json.dumps(...)) or a dict, got "
        f"{_type_name(value)} ({value!r})"
    )


def _page(cls: Type[_Page]) -> Callable[[Tuple[str, Optional[str], bool]], _Page]:
    return lambda page: cls(page[0], page[1], page[1] is not None, page[2])


def _found(cls: Type[_Found]) -> Callable[[Optional[str]], _Found]:
    return lambda text: cls(text is not None, text)


def _exported(outcome: Tuple[Any, ...]) -> int:
    """The row count of a finished export, or the exception for what went wrong (the Rust core
    decided it: archived aggregates left out, a file that could not be written)."""
    rows, aggregates, _bytes, files, archived, archived_first, failure = outcome
    if failure is None:
        return int(rows)
    kind, message, errno, filename = failure
    if kind == "archived_left_out":
        raise EventDBXExportIncompleteError(
            message,
            rows=rows,
            aggregates=aggregates,
            files=[os.fspath(f[0]) for f in files],
            archived=archived,
            archived_first=list(archived_first),
        )
    if kind == "io":
        raise OSError(errno or 0, message, None if filename is None else os.fspath(filename))
    raise EventDBXError(message, kind=kind)


def _listing(
    cursor: object,
    take: object,
    filter_expr: object,
    sort: Sort,
    include_archived: Optional[bool],
    archived_only: Optional[bool],
) -> Tuple[Optional[str], Optional[int], Optional[str], Optional[str], bool, bool]:
    """The native arguments of an aggregate listing, checked."""
    return (
        _optional_text("cursor", cursor),
        _optional_int("take", take, 1),
        _optional_text("filter_expr", filter_expr),
        sort_text(sort),
        bool(include_archived),
        bool(archived_only),
    )


def _events_filter(filter_expr: Optional[str]) -> None:
    if filter_expr is not None:
        # Server 3.19.4 never reads the events filter: sending it would return every event as if
        # it had matched. Refuse instead of answering wrongly.
        raise EventDBXInputError(
            "filter_expr is not supported for events: server 3.19.4 ignores it and would return "
            "every event; filter the events you read instead"
        )


def client_options(
    *,
    token: str,
    tenant_id: Optional[str],
    host: Optional[str],
    port: Optional[int],
    protocol_version: int,
    connect_timeout: float,
    read_timeout: float,
    use_noise: bool,
    transport: Any,
    retry: Union[RetryOptions, Mapping[str, Any], None],
    pool_size: int,
    max_in_flight: int,
) -> _ClientOptions:
    """Checks the constructor's arguments and returns the native client's options.

    ``host`` and ``port`` left out fall back to ``EVENTDBX_HOST`` and ``EVENTDBX_PORT``, then
    to ``127.0.0.1:6363``.
    """
    if host is None:
        host = os.environ.get("EVENTDBX_HOST", "").strip() or DEFAULT_HOST
    if port is None:
        env_port = os.environ.get("EVENTDBX_PORT", "").strip()
        try:
            port = int(env_port) if env_port else DEFAULT_PORT
        except ValueError:
            raise EventDBXInputError(f"EVENTDBX_PORT must be a port number, got {env_port!r}") from None
    if transport is not None:
        raise EventDBXTypeError(
            "transport= is not supported: this client owns its pooled, encrypted connections"
        )
    if not isinstance(token, str):
        # Not the value: it may be a secret in the wrong place.
        raise EventDBXTypeError(f"token must be a str, got {_type_name(token)}")
    if not token:
        raise EventDBXInputError("token must be provided")
    if tenant_id is not None and not isinstance(tenant_id, str):
        raise EventDBXTypeError(
            f"tenant_id must be a str, got {_type_name(tenant_id)} ({tenant_id!r})"
        )
    if tenant_id is not None and not tenant_id:
        raise EventDBXInputError("tenant_id must be provided")
    if not isinstance(host, str):
        raise EventDBXTypeError(f"host must be a str, got {_type_name(host)} ({host!r})")
    for name, text in (("token", token), ("tenant_id", tenant_id), ("host", host)):
        try:
            (text or "").encode("utf-8")
        except UnicodeEncodeError as error:
            raise refused_argument(error, {name: text}) from None
    if protocol_version != _native.PROTOCOL_VERSION:
        raise EventDBXInputError(
            f"protocol_version {protocol_version!r} is not supported; EventDBX speaks version "
            f"{_native.PROTOCOL_VERSION}"
        )
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise EventDBXInputError(f"port must be between 1 and 65535, got {port!r}")
    # Types only: the limits are the engine's (``_native.LIMITS``), which refuses a value past
    # one naming the argument.
    for name, value in (("pool_size", pool_size), ("max_in_flight", max_in_flight)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
            raise EventDBXInputError(f"{name} must be a positive integer, got {value!r}")
    for name, seconds in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise EventDBXInputError(f"{name} must be a positive number of seconds, got {seconds!r}")
    if not use_noise:
        warnings.warn(
            "Disabling Noise is intended for testing only: tokens and data then cross the "
            "network in the clear (and only if the server allows plaintext)",
            RuntimeWarning,
            stacklevel=5,
        )
    retry_options = RetryOptions.from_config(retry)
    options: _ClientOptions = {
        "host": host,
        "port": port,
        "token": token,
        "tenant_id": tenant_id,
        "use_noise": bool(use_noise),
        "connect_timeout": float(connect_timeout),
        "read_timeout": float(read_timeout),
        "retry_attempts": retry_options.attempts,
        "retry_initial_delay_ms": retry_options.initial_delay_ms,
        "retry_max_delay_ms": retry_options.max_delay_ms,
        "pool_size": pool_size,
        "max_in_flight": max_in_flight,
    }
    # The engine's limits, checked now even for a client that connects on first use.
    _native.check_options(options)
    return options


def env_options(overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """Constructor keywords from the ``EVENTDBX_*`` variables, under ``overrides``."""
    options: Dict[str, Any] = dict(_native.config_from_env())
    options.update(overrides)
    if "token" not in options:
        raise EventDBXInputError("no token: set EVENTDBX_TOKEN or pass token=")
    if "tenant_id" not in options:
        raise EventDBXInputError("no tenant: set EVENTDBX_TENANT_ID or pass tenant_id=")
    return options


class _ClientBase:
    """What both clients share besides the operations: construction, configuration, repr."""

    def __init__(
        self,
        *,
        token: str,
        tenant_id: str,
        host: Optional[str] = None,
        port: Optional[int] = None,
        protocol_version: int = 1,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        use_noise: bool = True,
        transport: Any = None,
        retry: Union[RetryOptions, Mapping[str, Any], None] = None,
        verbose: bool = True,
        pool_size: int = DEFAULT_POOL_SIZE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        if not tenant_id:
            raise EventDBXInputError("tenant_id must be provided (a non-empty str)")
        self._closed = False
        self._native: Any = None
        self._options = client_options(
            token=token,
            tenant_id=tenant_id,
            host=host,
            port=port,
            protocol_version=protocol_version,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            use_noise=use_noise,
            transport=transport,
            retry=retry,
            pool_size=pool_size,
            max_in_flight=max_in_flight,
        )
        self._verbose = verbose
        self._start()

    @classmethod
    def from_env(cls: Type[_Client], **overrides: Any) -> _Client:
        """A client configured from ``EVENTDBX_HOST``, ``EVENTDBX_PORT``, ``EVENTDBX_TOKEN``,
        ``EVENTDBX_TENANT_ID`` and ``EVENTDBX_NO_NOISE``; keyword arguments take precedence."""
        return cls(**env_options(overrides))

    def _start(self) -> None:
        """Called at the end of construction (the blocking client connects here)."""

    def _written(self, echo: Optional[str]) -> Union[str, bool]:
        # 0.1.8 returns True when verbose=False; the server sends no echo when it runs with
        # verbose_responses = false.
        return echo if self._verbose and echo is not None else True

    def __repr__(self) -> str:
        options = self._options
        return (
            f"{type(self).__name__}(host={options['host']!r}, port={options['port']!r}, "
            f"tenant_id={options['tenant_id']!r}, token=<redacted>, "
            f"use_noise={options['use_noise']!r}, connected={self.connected!r})"
        )

    @property
    def connected(self) -> bool:
        raise NotImplementedError


class _Operations(_ClientBase):
    """The operations of the official package, shared by the blocking and asyncio clients.

    Each checks its arguments and hands ``_call`` the native method, its arguments and how to
    wrap the result: the blocking client runs the call, the asyncio client returns a coroutine
    (its stub, ``aio.pyi``, types each operation as ``async def``).
    """

    def _call(self, method: str, args: Tuple[Any, ...], wrap: Callable[[Any], _T]) -> _T:
        raise NotImplementedError

    def _rows(self, method: str, args: Tuple[Any, ...]) -> Iterator[Dict[str, Any]]:
        raise NotImplementedError

    def _subscription(self, args: Tuple[Any, ...]) -> Subscription:
        raise NotImplementedError

    # ----- writes -----------------------------------------------------------------------

    def apply(
        self,
        *,
        aggregate_type: str,
        aggregate_id: str,
        event_type: str,
        payload_json: JsonObject,
        note: Optional[str] = None,
        metadata_json: Optional[JsonObject] = None,
        publish_targets: Targets = None,
        create: bool = False,
        allow_unlistable: bool = False,
    ) -> Union[str, bool]:
        """Appends an event (creating the aggregate if it does not exist); with ``create=True``
        creates a new aggregate instead and fails if it exists.

        Returns the server's JSON echo, or ``True`` when it sends none (``verbose=False``, or a
        server with ``verbose_responses = false``). ``payload_json`` is a JSON object, as text
        (``json.dumps(...)``, as in 0.1.8) or as a ``dict``, which the client serialises; so is
        ``metadata_json`` (keys starting with ``@``). An
        event whose stored row would be too long for the server to list (over 7,605 bytes) is
        refused before sending unless ``allow_unlistable=True``.
        """
        method = "create_aggregate" if create else "append_event"
        return self._event_write(
            method, aggregate_type, aggregate_id, event_type, payload_json, note, metadata_json,
            publish_targets, allow_unlistable,
        )

    def create_aggregate(
        self,
        *,
        aggregate_type: str,
        aggregate_id: str,
        event_type: str,
        payload_json: JsonObject,
        note: Optional[str] = None,
        metadata_json: Optional[JsonObject] = None,
        publish_targets: Targets = None,
        allow_unlistable: bool = False,
    ) -> Union[str, bool]:
        """Creates an aggregate with its first event and fails if it exists; returns the
        aggregate JSON or ``True``."""
        return self._event_write(
            "create_aggregate", aggregate_type, aggregate_id, event_type, payload_json, note,
            metadata_json, publish_targets, allow_unlistable,
        )

    create = create_aggregate

    def send_event(
        self,
        *,
        aggregate_type: str,
        aggregate_id: str,
        event_type: str,
        payload_json: JsonObject,
        note: Optional[str] = None,
        metadata_json: Optional[JsonObject] = None,
        publish_targets: Targets = None,
        allow_unlistable: bool = False,
    ) -> Union[str, bool]:
        """Appends an event; returns the stored event's JSON or ``True`` (see :meth:`apply`)."""
        return self._event_write(
            "append_event", aggregate_type, aggregate_id, event_type, payload_json, note,
            metadata_json, publish_targets, allow_unlistable,
        )

    def patch_event(
        self,
        *,
        aggregate_type: str,
        aggregate_id: str,
        event_type: str,
        patches: Sequence[Mapping[str, Any]],
        note: Optional[str] = None,
        metadata_json: Optional[JsonObject] = None,
        publish_targets: Targets = None,
    ) -> Union[str, bool]:
        """Appends an event computed from RFC 6902 operations (``add``, ``replace``,
        ``remove``) on the current state; returns the event JSON or ``True``."""
        if isinstance(patches, (str, bytes)) or not isinstance(patches, Sequence):
            raise EventDBXTypeError(
                f"patches must be a list of operations (dicts), got {_type_name(patches)}"
            )
        if not patches:
            raise EventDBXInputError("patches must contain at least one entry")
        return self._event_write(
            "patch_event", aggregate_type, aggregate_id, event_type,
            _json_text("patches", list(patches)),
            note, metadata_json, publish_targets, False,
        )

    patch = patch_event

    def _event_write(
        self,
        method: str,
        aggregate_type: str,
        aggregate_id: str,
        event_type: str,
        body_json: JsonObject,
        note: Optional[str],
        metadata_json: Optional[JsonObject],
        publish_targets: Targets,
        allow_unlistable: bool,
    ) -> Union[str, bool]:
        args = (
            _text("aggregate_type", aggregate_type),
            _text("aggregate_id", aggregate_id),
            _text("event_type", event_type),
            _json_object("patches" if method == "patch_event" else "payload_json", body_json),
            _optional_text("note", note),
            None if metadata_json is None else _json_object("metadata_json", metadata_json),
            publish_target_tuples(publish_targets),
            bool(allow_unlistable),
        )
        return self._call(method, args, self._written)

    def archive(
        self,
        *,
        aggregate_type: str,
        aggregate_id: str,
        note: Optional[str] = None,
        comment: Optional[str] = None,
    ) -> Union[str, bool]:
        """Archives an aggregate (``comment`` is the older name of ``note``); returns the
        aggregate JSON or ``True``."""
        return self.set_aggregate_archive(
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            archived=True,
            note=note,
            comment=comment,
        )

    def restore(
        self,
        *,
        aggregate_type: str,
        aggregate_id: str,
        note: Optional[str] = None,
        comment: Optional[str] = None,
    ) -> Union[str, bool]:
        """Restores an archived aggregate; returns the aggregate JSON or ``True``."""
        return self.set_aggregate_archive(
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            archived=False,
            note=note,
            comment=comment,
        )

    def set_aggregate_archive(
        self,
        *,
        aggregate_type: str,
        aggregate_id: str,
        archived: bool,
        note: Optional[str] = None,
        comment: Optional[str] = None,
    ) -> Union[str, bool]:
        """Archives (``archived=True``) or restores an aggregate."""
        _text("aggregate_type", aggregate_type)
        _text("aggregate_id", aggregate_id)
        if note is not None and comment is not None and note != comment:
            raise EventDBXInputError("Provide either note or comment, not both")
        final_note = note if note is not None else comment
        args = (aggregate_type, aggregate_id, bool(archived), final_note)
        return self._call("set_archive", args, self._written)

    # ----- reads ------------------------------------------------------------------------

    def list_aggregates(
        self,
        *,
        cursor: Optional[str] = None,
        take: Optional[int] = None,
        filter_expr: Optional[str] = None,
        sort: Sort = None,
        include_archived: Optional[bool] = None,
        archived_only: Optional[bool] = None,
    ) -> ListAggregatesResult:
        """One page of aggregates (``take`` is the page size, at least 1); ``iter_aggregates``
        reads them all.

        ``filter_expr`` is evaluated by the server, e.g. ``status = 'paid' AND total > 40``:
        comparisons ``=``, ``!=``, ``>``, ``<``, ``LIKE`` (``%`` any run, ``_`` one character),
        ``[NOT] IN ['a', 'b']``, combined with ``AND``, ``OR``, ``NOT`` and parentheses. Fields
        are ``aggregate_type``, ``aggregate_id``, ``version``, ``archived``, ``created_at``,
        ``updated_at``, ``merkle_root``, ``extensions.@key…`` and any dot path into the state
        (``address.city``). There is no ``>=``/``<=``/``==``; a misspelt field matches nothing.
        The full grammar is in :mod:`eventdbx.client`.

        ``sort`` is ``"field:asc, field:desc"`` or a list of :class:`AggregateSortOption`; only a
        single ``created_at``/``updated_at`` key can be continued past the first page (see
        :class:`ListAggregatesResult` for ``complete``)."""
        args = _listing(cursor, take, filter_expr, sort, include_archived, archived_only)
        return self._call("list_aggregates", args, _page(ListAggregatesResult))

    list = list_aggregates

    def list_events(
        self,
        *,
        aggregate_type: str,
        aggregate_id: str,
        cursor: Optional[str] = None,
        take: Optional[int] = None,
        filter_expr: Optional[str] = None,
    ) -> ListEventsResult:
        """One page of an aggregate's events; ``iter_events`` reads them all. ``filter_expr``
        is refused: server 3.19.4 ignores it."""
        _text("aggregate_type", aggregate_type)
        _text("aggregate_id", aggregate_id)
        _events_filter(filter_expr)
        args = (
            aggregate_type,
            aggregate_id,
            _optional_text("cursor", cursor),
            _optional_int("take", take, 1),
        )
        return self._call("list_events", args, _page(ListEventsResult))

    events = list_events

    def get_aggregate(self, *, aggregate_type: str, aggregate_id: str) -> GetAggregateResult:
        """The aggregate (``found=False`` when it does not exist; archived ones are found)."""
        _text("aggregate_type", aggregate_type)
        _text("aggregate_id", aggregate_id)
        return self._call(
            "get_aggregate", (aggregate_type, aggregate_id), _found(GetAggregateResult)
        )

    get = get_aggregate

    def select_aggregate(
        self, *, aggregate_type: str, aggregate_id: str, fields: List[str]
    ) -> SelectAggregateResult:
        """Fields of the aggregate's state by dot path (``address.city``, ``items.0``); paths
        that resolve to nothing are ``null``."""
        _text("aggregate_type", aggregate_type)
        _text("aggregate_id", aggregate_id)
        if isinstance(fields, str):
            raise EventDBXTypeError(
                f"fields must be a list of field paths, not a str (did you mean [{fields!r}]?)"
            )
        if not fields:
            raise EventDBXInputError("fields must contain at least one entry")
        args = (aggregate_type, aggregate_id, _texts("fields", fields))
        return self._call("select_aggregate", args, _found(SelectAggregateResult))

    select = select_aggregate

    def verify_aggregate(self, *, aggregate_type: str, aggregate_id: str) -> str:
        """The Merkle root the server stored for the aggregate (64 hex characters), as server
        3.19.4 reports it: it recomputes nothing, so this is not a check of the history. To
        check, compare it with ``get(...).aggregate["merkle_root"]`` after recomputing the root
        from the events: :meth:`verify_history` does."""
        _text("aggregate_type", aggregate_type)
        _text("aggregate_id", aggregate_id)
        return self._call("verify_aggregate", (aggregate_type, aggregate_id), str)

    verify = verify_aggregate

    def verify_history(self, *, aggregate_type: str, aggregate_id: str) -> VerificationResult:
        """Checks the aggregate's history, as the Rust client's ``Client::verify`` does: reads
        the stored root with its version, then the events up to that version, recomputes each
        event's hash and the root, and compares. Appends made meanwhile cannot make it report a
        mismatch (the server stores root and version together; later events are left for the
        next check). An archived aggregate, or one too large for the server to send, is
        ``"unverifiable"``, never a mismatch. A missing aggregate raises
        :class:`EventDBXAPIError` (``aggregate_not_found``).

        >>> check = client.verify_history(aggregate_type="orders", aggregate_id="ord_1")  # doctest: +SKIP
        >>> check.intact, check.version, check.events  # doctest: +SKIP
        (True, 3, 3)
        """
        _text("aggregate_type", aggregate_type)
        _text("aggregate_id", aggregate_id)
        return self._call(
            "verify_history", (aggregate_type, aggregate_id), lambda r: VerificationResult(*r)
        )

    def iter_aggregates(
        self,
        *,
        cursor: Optional[str] = None,
        take: Optional[int] = None,
        filter_expr: Optional[str] = None,
        sort: Sort = None,
        include_archived: Optional[bool] = None,
        archived_only: Optional[bool] = None,
    ) -> Iterator[Dict[str, Any]]:
        """Every matching aggregate as a dict, fetching pages (``take`` rows each) as the
        iteration goes; no row is skipped or repeated even where the server shortens pages.
        Only unsorted listings and a single ``created_at``/``updated_at`` sort can be paged;
        for any other order, iterate unsorted and sort the rows yourself
        (``sorted(client.iter_aggregates(...), key=lambda a: a["aggregate_id"])``). ``take`` is a
        page size, not a limit: stop iterating (``itertools.islice``) to read fewer.
        An exception (a timeout, a dropped connection) does not end the listing: iterating
        again asks for the same page again and goes on where it stopped.
        (``async for`` on the asyncio client.)"""
        args = _listing(cursor, take, filter_expr, sort, include_archived, archived_only)
        return self._rows("stream_aggregates", args)

    def iter_events(
        self,
        *,
        aggregate_type: str,
        aggregate_id: str,
        cursor: Optional[str] = None,
        take: Optional[int] = None,
    ) -> Iterator[Dict[str, Any]]:
        """Every event of the aggregate as a dict, in version order, from ``cursor`` on. An
        exception does not end it: iterating again goes on where it stopped.
        (``async for`` on the asyncio client.)"""
        _text("aggregate_type", aggregate_type)
        _text("aggregate_id", aggregate_id)
        args = (
            aggregate_type,
            aggregate_id,
            _optional_text("cursor", cursor),
            _optional_int("take", take, 1),
        )
        return self._rows("stream_events", args)

    # ----- exports ----------------------------------------------------------------------

    def export_parquet(
        self,
        path: Union[str, "os.PathLike[str]"],
        *,
        what: str = "events",
        partition_by: Optional[str] = None,
        aggregate_type: Optional[str] = None,
        include_archived: bool = False,
        skip_archived: bool = False,
        max_file_size: Optional[int] = None,
        row_group_size: Optional[int] = None,
        compression: str = "zstd",
        concurrency: int = 8,
    ) -> int:
        """Writes every event (``what="events"``) or every aggregate's current state
        (``what="aggregates"``) as Parquet, and returns the number of rows written. The same
        Rust code as ``edbx export --format parquet`` writes it (docs/PARQUET.md has the
        columns): typed columns (``version`` and ``event_id`` int64, ``created_at`` a UTC
        timestamp, ``payload`` and ``metadata`` JSON text), zstd, row groups of
        ``row_group_size`` rows (default 65,536) written as the store is read, so memory stays
        bounded whatever its size.

        ``path`` is one file, or with ``partition_by="aggregate_type"`` a new Hive-style
        directory (``path/aggregate_type=orders/part-0000.parquet``, …) of files of at most
        ``max_file_size`` bytes (default 256 MiB; setting it without ``partition_by`` also
        makes ``path`` a directory of parts). Files are written under temporary names
        (``path.partial``) and renamed only when the export is complete; a failed or
        interrupted export removes them.

        The server does not serve the events of archived aggregates: an export of events that
        meets one writes the rest and raises :class:`~eventdbx.errors.EventDBXExportIncompleteError`
        (files in place, fields say what they hold) unless ``skip_archived=True``.
        ``include_archived=True`` adds archived aggregates to an export of aggregates.

        >>> import duckdb  # doctest: +SKIP
        >>> client.export_parquet("lake", partition_by="aggregate_type", skip_archived=True)  # doctest: +SKIP
        1250000
        >>> duckdb.sql("SELECT aggregate_type, count(*) FROM read_parquet("  # doctest: +SKIP
        ...            "'lake/**/*.parquet', hive_partitioning = true) GROUP BY ALL")
        """
        if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
            raise EventDBXTypeError(
                f"path must be a str or os.PathLike, got {_type_name(path)} ({path!r})"
            )
        target = os.fspath(path)
        if not isinstance(target, str):
            raise EventDBXTypeError(f"path must name a str path, got {_type_name(target)}")
        options: "_ExportOptions" = {
            "what": _text("what", what),
            "partition_by": _optional_text("partition_by", partition_by),
            "aggregate_type": _optional_text("aggregate_type", aggregate_type),
            "include_archived": bool(include_archived),
            "skip_archived": bool(skip_archived),
            "max_file_size": _optional_int("max_file_size", max_file_size, 1),
            "row_group_size": _optional_int("row_group_size", row_group_size, 1),
            "compression": _text("compression", compression),
            "concurrency": _required_int("concurrency", concurrency, 1),
        }
        args = (target, options)
        return self._call("export_parquet", args, _exported)

    def subscribe(
        self,
        *,
        aggregate_types: Optional[Sequence[str]] = None,
        start: str = "beginning",
        checkpoint: Optional[str] = None,
        until_caught_up: bool = False,
        overlap: Optional[float] = None,
        poll_interval: Optional[Tuple[float, float]] = None,
        page_size: Optional[int] = None,
        events_page_size: Optional[int] = None,
        prefetch: Optional[int] = None,
        retry_for: Optional[float] = None,
    ) -> Subscription:
        """A catch-up subscription: every event of the store, or of ``aggregate_types``, in
        version order per aggregate, as :class:`eventdbx.SubscribedEvent` s (each with the
        checkpoint after it); ``async for`` on the asyncio client. See
        :mod:`eventdbx.subscription` for the guarantees.

        ``start`` is ``"beginning"`` (the default) or ``"now"`` (the events written from now
        on); a ``checkpoint`` (from ``SubscribedEvent.checkpoint`` or ``.checkpoint`` of a
        subscription to the same types) wins over it, and one that is not raises
        :class:`eventdbx.EventDBXCheckpointError` (on the asyncio client, when iteration
        starts). ``until_caught_up=True`` ends the iteration
        once every event written before some moment after the start is yielded. ``overlap``
        (seconds, default 1) is how far back each round looks again: the largest backward
        step of the server's clock tolerated, and the bound on repeats after a restart.
        ``poll_interval`` is ``(min, max)`` seconds between rounds (default 0.05 and 1:
        ``min`` after events, doubling to ``max`` while idle). ``page_size`` (aggregates per
        listing request, default 32), ``events_page_size`` (default 1000) and ``prefetch``
        (aggregates read at once, default 8) tune the reads. Failures that are safe to retry
        (the server restarting, a connection lost) are retried for ``retry_for`` seconds
        (default: for ever).
        """
        if aggregate_types is None:
            types: List[str] = []
        elif isinstance(aggregate_types, str) or not isinstance(aggregate_types, (list, tuple)):
            raise EventDBXTypeError(
                "aggregate_types must be a list of str (or None for every type), got "
                f"{_type_name(aggregate_types)} ({aggregate_types!r})"
            )
        else:
            types = [_text("aggregate_types item", t) for t in aggregate_types]
        if start not in ("beginning", "now"):
            raise EventDBXInputError(f'start must be "beginning" or "now", got {start!r}')
        interval: Optional[Tuple[float, float]] = None
        if poll_interval is not None:
            if not isinstance(poll_interval, (list, tuple)) or len(poll_interval) != 2:
                raise EventDBXTypeError(
                    f"poll_interval must be a (min, max) pair of seconds, got {poll_interval!r}"
                )
            interval = (
                _seconds("poll_interval minimum", poll_interval[0]),
                _seconds("poll_interval maximum", poll_interval[1]),
            )
        args = (
            types,
            start,
            _optional_text("checkpoint", checkpoint),
            bool(until_caught_up),
            None if overlap is None else _seconds("overlap", overlap),
            interval,
            _optional_int("page_size", page_size, 1),
            _optional_int("events_page_size", events_page_size, 1),
            _optional_int("prefetch", prefetch, 1),
            None if retry_for is None else _seconds("retry_for", retry_for),
        )
        return self._subscription(args)

    # ----- snapshots --------------------------------------------------------------------

    def create_snapshot(
        self, *, aggregate_type: str, aggregate_id: str, comment: Optional[str] = None
    ) -> Union[str, bool]:
        """Snapshots the aggregate's current state; returns the snapshot JSON (or ``True``
        with ``verbose=False``)."""
        _text("aggregate_type", aggregate_type)
        _text("aggregate_id", aggregate_id)
        args = (aggregate_type, aggregate_id, _optional_text("comment", comment))
        return self._call("create_snapshot", args, self._written)

    def list_snapshots(
        self,
        *,
        aggregate_type: Optional[str] = None,
        aggregate_id: Optional[str] = None,
        version: Optional[int] = None,
    ) -> ListSnapshotsResult:
        """Snapshots, all or those of one aggregate type, aggregate or version."""
        args = (
            _optional_text("aggregate_type", aggregate_type),
            _optional_text("aggregate_id", aggregate_id),
            _optional_int("version", version, 0),
        )
        return self._call("list_snapshots", args, ListSnapshotsResult)

    def get_snapshot(self, *, snapshot_id: int) -> GetSnapshotResult:
        """One snapshot by id (``found=False`` when there is none)."""
        if snapshot_id is None:
            raise EventDBXInputError("snapshot_id must be provided (a non-negative int)")
        snapshot_id = _required_int("snapshot_id", snapshot_id, 0)
        return self._call("get_snapshot", (snapshot_id,), _found(GetSnapshotResult))

    # ----- schemas and tenants ----------------------------------------------------------

    def list_schemas(self) -> str:
        """The tenant's schemas as JSON text: aggregate type → schema."""
        return self._call("list_schemas", (), str)

    def replace_schemas(self, *, schemas_json: str) -> int:
        """Replaces the tenant's whole schema set; returns how many schemas are stored."""
        _text("schemas_json", schemas_json)
        return self._call("replace_schemas", (schemas_json,), int)

    def tenant_assign(self, *, tenant_id: str, shard_id: str) -> TenantAssignResult:
        """Assigns a tenant to a shard."""
        _text("tenant_id", tenant_id)
        _text("shard_id", shard_id)
        return self._call(
            "tenant_assign", (tenant_id, shard_id), lambda r: TenantAssignResult(*r)
        )

    def tenant_unassign(self, *, tenant_id: str) -> bool:
        """Removes a tenant's shard assignment; ``True`` if there was one."""
        return self._tenant_call("tenant_unassign", tenant_id, bool)

    def tenant_quota_set(self, *, tenant_id: str, max_storage_mb: int) -> TenantQuotaResult:
        """Sets a tenant's storage quota in MiB."""
        _text("tenant_id", tenant_id)
        _required_int("max_storage_mb", max_storage_mb, 0)
        return self._call(
            "tenant_quota_set",
            (tenant_id, max_storage_mb),
            lambda r: TenantQuotaResult(r[0], r[1], r[1] is not None),
        )

    def tenant_quota_clear(self, *, tenant_id: str) -> bool:
        """Removes a tenant's quota; ``True`` if there was one."""
        return self._tenant_call("tenant_quota_clear", tenant_id, bool)

    def tenant_quota_recalc(self, *, tenant_id: str) -> int:
        """Recomputes a tenant's storage use; returns it in bytes."""
        return self._tenant_call("tenant_quota_recalc", tenant_id, int)

    def tenant_reload(self, *, tenant_id: str) -> bool:
        """Reopens a tenant's store; ``False`` when open sessions of that tenant (this client's
        own included) still hold it."""
        return self._tenant_call("tenant_reload", tenant_id, bool)

    def _tenant_call(self, method: str, tenant_id: str, wrap: Callable[[Any], _T]) -> _T:
        _text("tenant_id", tenant_id)
        return self._call(method, (tenant_id,), wrap)

    def tenant_schema_publish(
        self,
        *,
        tenant_id: str,
        reason: Optional[str] = None,
        actor: Optional[str] = None,
        labels: Optional[Sequence[str]] = None,
        activate: bool = False,
        force: bool = False,
        reload: bool = False,
    ) -> TenantSchemaPublishResult:
        """Publishes the tenant's live schemas as a new version."""
        _text("tenant_id", tenant_id)
        args = (
            tenant_id,
            reason,
            actor,
            _texts("labels", labels) if labels else None,
            bool(activate),
            bool(force),
            bool(reload),
        )
        return self._call(
            "tenant_schema_publish", args, lambda r: TenantSchemaPublishResult(*r)
        )


#: The public operations (aliases included), which each client exposes as its own methods.
OPERATIONS: Tuple[str, ...] = tuple(
    name
    for name, value in vars(_Operations).items()
    if not name.startswith("_") and callable(value)
)


def renamed(function: Callable[..., Any], name: str, owner: str) -> Callable[..., Any]:
    """``function`` as ``owner.name``, in tracebacks too (its code object carries the name)."""
    function.__name__ = name
    function.__qualname__ = f"{owner}.{name}"
    if sys.version_info >= (3, 11):
        function.__code__ = function.__code__.replace(co_name=name, co_qualname=f"{owner}.{name}")
    else:
        function.__code__ = function.__code__.replace(co_name=name)
    return function
