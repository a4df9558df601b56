"""Options and results, with the names and fields of the official package 0.1.8.

Results keep the server's JSON text in their ``*_json`` fields, as 0.1.8 returns them, and add
parsed views next to them (``.aggregates``, ``.events``, ``.aggregate``, …) that decode that
text on access.

**State values are the server's text.** The server keeps an aggregate's state as a map of texts:
each top-level payload key's latest value, a JSON string verbatim, ``null`` as ``""`` and
anything else as its compact JSON text. A payload ``{"total": 19.99, "paid": true, "tags": ["a"],
"zip": "01234"}`` is read back as ``aggregate["state"] == {"total": "19.99", "paid": "true",
"tags": "[\"a\"]", "zip": "01234"}``. So the string ``"42"`` and the number ``42`` are stored
alike. Two ways to get values back:

* :func:`parse_state` (``GetAggregateResult.state()``) guesses: JSON text is parsed
  (``"19.99"`` → ``19.99``, ``"true"`` → ``True``, ``"[\"a\"]"`` → ``["a"]``), anything else
  stays text (``"01234"``, ``"paid"``, and ``""`` for ``null``).
* :func:`state_as` (``GetAggregateResult.state_as(Order)``) lets your type decide, as the Rust
  client's ``Aggregate::state_as`` does: for a dataclass (or ``NamedTuple``, ``TypedDict``), a
  ``str`` field gets the text as stored, ``int``/``float``/``Decimal`` fields parse it, a
  ``bool`` field takes ``"true"``/``"false"``, an ``Optional`` field is ``None`` for ``""``, a
  ``list``/``dict``/nested dataclass field parses the text as JSON, and ``Any`` guesses. Keys
  of the state that the type has no field for are ignored; a missing field takes its default
  (``None`` when ``Optional``). Any other callable is called with the guessed values as keyword
  arguments. A value that does not fit raises :class:`~eventdbx.errors.EventDBXStateError`
  naming the field, the stored text and the type wanted.

>>> from dataclasses import dataclass
>>> from typing import Optional
>>> from eventdbx import parse_state, state_as
>>> @dataclass
... class Order:
...     total: float
...     zip: str
...     paid: bool
...     note: Optional[str] = None
>>> row = {"state": {"total": "19.99", "zip": "01234", "paid": "true", "note": ""}}
>>> state_as(Order, row)
Order(total=19.99, zip='01234', paid=True, note=None)
>>> parse_state(row)
{'total': 19.99, 'zip': '01234', 'paid': True, 'note': ''}
"""

from __future__ import annotations

import dataclasses
import decimal
import json
import re
import sys
import typing
from dataclasses import dataclass
from enum import Enum
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
    overload,
)

from .errors import EventDBXInputError, EventDBXStateError, EventDBXTypeError

_T = TypeVar("_T")

__all__ = [
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
    "parse_state",
    "state_as",
]

_U32_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1


@dataclass
class ListAggregatesResult:
    """One page of aggregates.

    ``next_cursor`` continues right after the last row received, and is set on every page that
    has rows: the server may shorten a page without saying so, so only an empty page ends a
    listing (``has_next_cursor`` is then false). ``iter_aggregates`` follows it for you.

    ``complete`` is true only when this page is known to hold the listing's last rows. A page
    sorted by anything but a single ``created_at``/``updated_at`` key has no cursor (the server
    cannot continue it) and may even have been cut short by the server's ~7.5 KiB page budget:
    the client checks, and says ``complete=False`` when rows are missing.
    """

    aggregates_json: str
    next_cursor: Optional[str]
    has_next_cursor: bool
    complete: bool = False

    @property
    def aggregates(self) -> List[Dict[str, Any]]:
        """The aggregates, decoded; read a row's ``state`` with :func:`state_as` or
        :func:`parse_state`."""
        return _json_rows(self.aggregates_json)


@dataclass
class ListEventsResult:
    """One page of an aggregate's events, in version order (see :class:`ListAggregatesResult`
    for ``next_cursor``)."""

    events_json: str
    next_cursor: Optional[str]
    has_next_cursor: bool
    complete: bool = False

    @property
    def events(self) -> List[Dict[str, Any]]:
        """The events, decoded. Their ``payload`` is JSON as written; an ``event_type`` written
        with dots reads back with underscores (``order.paid`` → ``order_paid``): the server
        normalises it."""
        return _json_rows(self.events_json)


@dataclass
class GetAggregateResult:
    """An aggregate, if ``found``."""

    found: bool
    aggregate_json: Optional[str]

    @property
    def aggregate(self) -> Optional[Dict[str, Any]]:
        """The aggregate, decoded (``None`` when not found). Its ``state`` values are strings:
        the server stores every state value as text (``{"total": "19.99"}``); see
        :meth:`state` and :meth:`state_as` for values parsed back."""
        return _json_object(self.aggregate_json) if self.aggregate_json else None

    def state(self) -> Optional[Dict[str, Any]]:
        """The state with each value parsed back from the server's text where it is JSON
        (``"19.99"`` → ``19.99``, ``"true"`` → ``True``), else as stored (see
        :func:`parse_state`); ``None`` when not found."""
        aggregate = self.aggregate
        return None if aggregate is None else parse_state(aggregate)

    def state_as(self, cls: Callable[..., _T]) -> Optional[_T]:
        """The state read into ``cls`` (a dataclass, ``NamedTuple``, ``TypedDict`` or any
        callable; see :func:`state_as`); ``None`` when not found."""
        aggregate = self.aggregate
        return None if aggregate is None else state_as(cls, aggregate)


@dataclass
class SelectAggregateResult:
    """A projection of an aggregate's state, if ``found``."""

    found: bool
    selection_json: Optional[str]

    @property
    def selection(self) -> Optional[Dict[str, Any]]:
        """The selected fields, decoded (``None`` when the aggregate was not found). Unlike
        ``state``, the server sends these as JSON values (``{"total": 42.15}``)."""
        return _json_object(self.selection_json) if self.selection_json else None


@dataclass
class ListSnapshotsResult:
    """Snapshots."""

    snapshots_json: str

    @property
    def snapshots(self) -> List[Dict[str, Any]]:
        """The snapshots, decoded."""
        return _json_rows(self.snapshots_json)


@dataclass
class GetSnapshotResult:
    """A snapshot, if ``found``."""

    found: bool
    snapshot_json: Optional[str]

    @property
    def snapshot(self) -> Optional[Dict[str, Any]]:
        """The snapshot, decoded (``None`` when not found). Its ``state`` values are the
        server's text, as an aggregate's (:func:`state_as` reads them)."""
        return _json_object(self.snapshot_json) if self.snapshot_json else None


@dataclass
class PublishTarget:
    """A plugin to notify of an event (``mode`` and ``priority`` as the plugin defines them)."""

    plugin: str
    mode: Optional[str] = None
    priority: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.plugin:
            raise EventDBXInputError("publish target plugin must be provided")


@dataclass
class TenantAssignResult:
    changed: bool
    shard_id: str


@dataclass
class TenantQuotaResult:
    changed: bool
    quota_mb: Optional[int]
    has_quota: bool


@dataclass
class TenantSchemaPublishResult:
    version_id: str
    activated: bool
    skipped: bool


@dataclass
class VerificationResult:
    """What :meth:`~eventdbx.EventDBXClient.verify_history` found: the Merkle root recomputed
    from the events read back, against the root the server stored for ``version``.

    ``outcome`` is ``"intact"``, ``"mismatch"`` or ``"unverifiable"`` (nothing is known about
    the history; ``reason`` says why: ``"archived"``, ``"too_large"`` or ``"kept_changing"``).
    An aggregate that could not be checked is never reported as a mismatch."""

    outcome: str
    reason: Optional[str]
    merkle_root: str
    version: int
    recomputed_root: Optional[str]
    events: int
    first_bad_version: Optional[int]
    detail: str

    @property
    def intact(self) -> bool:
        """Every event up to ``version`` matches its hash, and the hashes give the stored root."""
        return self.outcome == "intact"

    @property
    def mismatch(self) -> bool:
        """The history was read and does not match."""
        return self.outcome == "mismatch"


class AggregateSortField(str, Enum):
    AGGREGATE_TYPE = "aggregate_type"
    AGGREGATE_ID = "aggregate_id"
    ARCHIVED = "archived"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"


@dataclass
class AggregateSortOption:
    field: AggregateSortField
    descending: bool = False


@dataclass
class RetryOptions:
    """When the client sends a call again.

    Only what is safe is ever repeated: a connection that could not be opened, a request that
    was never written, or a read whose connection dropped. A write that may have reached the
    server is never sent twice (it raises ``EventDBXOutcomeUnknownError``). ``attempts`` counts
    the first try, so the default ``1`` means no retries, as in 0.1.8; delays double from
    ``initial_delay_ms`` up to ``max_delay_ms``.
    """

    attempts: int = 1
    initial_delay_ms: int = 100
    max_delay_ms: int = 1_000

    def __post_init__(self) -> None:
        if self.attempts <= 0:
            raise ValueError("retry.attempts must be greater than zero")
        if self.initial_delay_ms < 0:
            raise ValueError("retry.initial_delay_ms cannot be negative")
        if self.max_delay_ms < 0:
            raise ValueError("retry.max_delay_ms cannot be negative")
        if self.attempts > _U32_MAX:
            raise ValueError(f"retry.attempts must be at most {_U32_MAX}")
        if max(self.initial_delay_ms, self.max_delay_ms) > _U64_MAX:
            raise ValueError(f"retry delays must be at most {_U64_MAX} ms")

    @classmethod
    def from_config(cls, config: Union[RetryOptions, Mapping[str, Any], None]) -> RetryOptions:
        """Options from ``None`` (the defaults), a :class:`RetryOptions`, or a mapping with
        snake_case or camelCase keys (``attempts``, ``initial_delay_ms``/``initialDelayMs``,
        ``max_delay_ms``/``maxDelayMs``)."""
        if config is None:
            return cls()
        if isinstance(config, RetryOptions):
            return cls(config.attempts, config.initial_delay_ms, config.max_delay_ms)
        if not isinstance(config, Mapping):
            raise EventDBXTypeError(
                f"retry must be a RetryOptions, a mapping or None, got {type(config).__name__}"
            )
        initial = config.get("initial_delay_ms")
        if initial is None:
            initial = config.get("initialDelayMs", 100)
        max_delay = config.get("max_delay_ms")
        if max_delay is None:
            max_delay = config.get("maxDelayMs", 1_000)
        return cls(
            _count("retry attempts", config.get("attempts", 1)),
            _count("retry initial_delay_ms", initial),
            _count("retry max_delay_ms", max_delay),
        )


def _count(name: str, value: Any) -> int:
    """A whole number of at least 0 (an ``int``, or a ``float``/``str`` holding one, as
    ``int()`` reads them)."""
    if isinstance(value, bool):
        raise EventDBXTypeError(f"{name} must be an int, got {value!r}")
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise EventDBXTypeError(
            f"{name} must be an int, got {type(value).__name__} ({value!r})"
        ) from None
    if count < 0:
        raise EventDBXInputError(f"{name} must be at least 0, got {count}")
    return count


def sort_text(sort: Union[str, List[AggregateSortOption], None]) -> Optional[str]:
    """Sort directives as the server reads them: ``field:asc, field:desc``."""
    if sort is None:
        return None
    if isinstance(sort, str):
        return sort.strip() or None
    segments = []
    for option in sort:
        if not isinstance(option, AggregateSortOption):
            raise EventDBXTypeError(
                "sort must be a str (\"created_at:asc\") or a list of AggregateSortOption, got "
                f"a list holding {type(option).__name__} ({option!r})"
            )
        try:
            field = AggregateSortField(option.field).value
        except ValueError:
            known = ", ".join(f.value for f in AggregateSortField)
            raise EventDBXInputError(
                f"sort field {option.field!r} is not one of {known}"
            ) from None
        segments.append(f"{field}:{'desc' if option.descending else 'asc'}")
    return ", ".join(segments) or None


def publish_target_tuples(
    targets: Optional[Sequence[Union[PublishTarget, Mapping[str, Any]]]],
) -> Optional[List[Tuple[str, Optional[str], Optional[str]]]]:
    """``(plugin, mode, priority)`` tuples from targets or mappings."""
    if targets is None:
        return None
    if isinstance(targets, (str, bytes, Mapping)) or not isinstance(targets, Iterable):
        raise EventDBXTypeError(
            "publish_targets must be a list of PublishTarget or mappings, got "
            f"{type(targets).__name__} ({targets!r})"
        )
    out = []
    for target in targets:
        if isinstance(target, Mapping):
            plugin, mode, priority = (target.get(key) for key in ("plugin", "mode", "priority"))
        elif isinstance(target, PublishTarget):
            plugin, mode, priority = target.plugin, target.mode, target.priority
        else:
            raise EventDBXTypeError(
                "publish_targets must contain PublishTarget or mapping entries, got "
                f"{type(target).__name__} ({target!r})"
            )
        if not isinstance(plugin, str) or not plugin:
            raise EventDBXTypeError(
                f"a publish target's plugin must be a non-empty str, got {plugin!r}"
            )
        for key, value in (("mode", mode), ("priority", priority)):
            if value is not None and not isinstance(value, str):
                raise EventDBXTypeError(
                    f"a publish target's {key} must be a str or None, got {value!r}"
                )
        out.append((plugin, mode, priority))
    return out



def _json_object(text: str) -> Dict[str, Any]:
    value: Dict[str, Any] = json.loads(text)
    return value


def _json_rows(text: str) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = json.loads(text)
    return rows


# ----- state values, as the server stores them ------------------------------------------------

_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity|nan)", re.I)


def _state_of(aggregate: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(aggregate, Mapping):
        raise TypeError(
            f"expected an aggregate (a dict with a 'state' key), got {type(aggregate).__name__}"
        )
    state = aggregate.get("state", {})
    if not isinstance(state, Mapping):
        raise TypeError(f"the aggregate's 'state' must be a dict, got {type(state).__name__}")
    return state


def _guess(text: Any) -> Any:
    """A stored value parsed back when it is JSON text, else the text itself."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_state(aggregate: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``state`` of an aggregate (a dict as ``get``/``list``/``iter_aggregates`` return it,
    or a snapshot) with each value parsed back from the server's text where it is JSON
    (``"42"`` → ``42``, ``"true"`` → ``True``, ``'{"a": 1}'`` → ``{"a": 1}``), else the text as
    stored (``"paid"``, ``"01234"``, and ``""``, which is how the server stores ``null``).

    The guess is wrong for strings that look like JSON (the string ``"12345"`` comes back as a
    number); :func:`state_as` lets your type decide instead."""
    return {key: _guess(text) for key, text in _state_of(aggregate).items()}


class _Misfit(Exception):
    pass


def _is_optional(hint: Any) -> Tuple[bool, Any]:
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    union_types: Tuple[Any, ...] = (Union,)
    if sys.version_info >= (3, 10):
        import types as _pytypes

        union_types += (_pytypes.UnionType,)
    if origin in union_types and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return True, rest[0] if len(rest) == 1 else Union[tuple(rest)]
    return False, hint


def _type_hints(cls: type) -> Dict[str, Any]:
    """The class's annotations, resolved. One that cannot be resolved (a string naming a class
    local to a function, under ``from __future__ import annotations``) is read as ``Any``."""
    try:
        return typing.get_type_hints(cls)
    except NameError:
        pass
    module = sys.modules.get(cls.__module__)
    namespace = dict(vars(module)) if module is not None else {}
    hints: Dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            if isinstance(annotation, str):
                try:
                    annotation = eval(annotation, namespace, {})  # as get_type_hints does
                except Exception:
                    annotation = Any
            hints[name] = annotation
    return hints


def _field_hints(cls: Any) -> Optional[Dict[str, Any]]:
    """The typed fields of a dataclass, NamedTuple or TypedDict (``None`` for other callables)."""
    if dataclasses.is_dataclass(cls) and isinstance(cls, type):
        hints = _type_hints(cls)
        return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}
    if isinstance(cls, type) and (
        hasattr(cls, "_fields") and issubclass(cls, tuple)  # NamedTuple
        or hasattr(cls, "__required_keys__")  # TypedDict
    ):
        return _type_hints(cls)
    return None


def _has_default(cls: Any, name: str) -> bool:
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            if f.name == name:
                return (
                    f.default is not dataclasses.MISSING
                    or f.default_factory is not dataclasses.MISSING
                )
    defaults = getattr(cls, "_field_defaults", None)
    if isinstance(defaults, dict) and name in defaults:
        return True
    optional_keys = getattr(cls, "__optional_keys__", ())
    return name in optional_keys


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _from_text(text: str, hint: Any, key: str) -> Any:
    """One stored text read as ``hint`` asks (the rules of the Rust client's state reader)."""

    def misfit(wanted: str) -> _Misfit:
        return _Misfit(f"field {key!r} holds {text!r}, not {wanted}")

    optional, inner = _is_optional(hint)
    if optional:
        return None if text == "" else _from_text(text, inner, key)
    if hint is Any or hint is object:
        return _guess(text)
    if hint is str:
        return text
    if hint is bool:
        stripped = text.strip()
        if stripped in ("true", "false"):
            return stripped == "true"
        raise misfit("a boolean")
    if hint is int:
        if _INTEGER.fullmatch(text.strip()):
            return int(text.strip())
        raise misfit("an int")
    if hint is float:
        if _FLOAT.fullmatch(text.strip()):
            return float(text.strip())
        raise misfit("a float")
    if hint is decimal.Decimal:
        if _FLOAT.fullmatch(text.strip()):
            return decimal.Decimal(text.strip())
        raise misfit("a Decimal")
    if isinstance(hint, type) and issubclass(hint, Enum):
        for member in hint:
            if member.value == text or member.name == text:
                return member
        raise misfit(f"one of {[m.value for m in hint]}")
    if hint is type(None):
        if text == "":
            return None
        raise misfit("null")
    # Structured fields: the text is JSON.
    origin = typing.get_origin(hint) or hint
    try:
        value = json.loads(text)
    except ValueError:
        raise misfit(f"JSON for {_describe(hint)}") from None
    if origin in (list, List, tuple, Tuple, Sequence, typing.Sequence):
        if not isinstance(value, list):
            raise misfit(f"a JSON list for {_describe(hint)}")
        return tuple(value) if origin in (tuple, Tuple) else value
    if origin in (dict, Dict, Mapping, typing.Mapping):
        if not isinstance(value, dict):
            raise misfit(f"a JSON object for {_describe(hint)}")
        return value
    if _field_hints(hint) is not None:
        if not isinstance(value, dict):
            raise misfit(f"a JSON object for {_describe(hint)}")
        return _build(hint, {k: v for k, v in value.items()}, parsed=True)
    return value


def _build(cls: Any, state: Mapping[str, Any], parsed: bool) -> Any:
    hints = _field_hints(cls)
    if hints is None:
        return cls(**{key: _guess(text) for key, text in state.items()})
    values: Dict[str, Any] = {}
    for name, hint in hints.items():
        if name in state:
            raw = state[name]
            values[name] = raw if parsed or not isinstance(raw, str) else _from_text(raw, hint, name)
        elif not _has_default(cls, name):
            if _is_optional(hint)[0]:
                values[name] = None
            else:
                raise _Misfit(f"field {name!r} is not in the state")
    return cls(**values)


@overload
def state_as(cls: Type[_T], aggregate: Mapping[str, Any]) -> _T: ...
@overload
def state_as(cls: Callable[..., _T], aggregate: Mapping[str, Any]) -> _T: ...
def state_as(cls: Callable[..., _T], aggregate: Mapping[str, Any]) -> _T:
    """The ``state`` of an aggregate (a listed row, ``get(...).aggregate`` or a snapshot) read
    into ``cls``, each stored text read as the field's type asks (see the module's
    documentation for the rules), the way the Rust client's ``Aggregate::state_as`` does.

    ``cls`` is a dataclass, ``NamedTuple`` or ``TypedDict`` (fields typed ``str``, ``int``,
    ``float``, ``Decimal``, ``bool``, ``Optional[...]``, ``list``/``dict``, an ``Enum``, a nested
    dataclass, or ``Any``), or any other callable, which is called with the values of
    :func:`parse_state` as keyword arguments. Raises
    :class:`~eventdbx.errors.EventDBXStateError` (a ``ValueError``) naming the field, the stored
    text and the type wanted when a value does not fit.
    """
    state = _state_of(aggregate)
    try:
        return typing.cast(_T, _build(cls, state, parsed=False))
    except _Misfit as misfit:
        raise EventDBXStateError(
            f"the aggregate's state does not fit {_describe(cls)}: {misfit}"
        ) from None
