"""Options and results, with the names and fields of the official package 0.1.8.

Results keep the server's JSON text in their ``*_json`` fields, as 0.1.8 returns them, and add
parsed views next to them (``.aggregates``, ``.events``, ``.aggregate``, …) that decode that
text on access.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, List, Mapping, Optional, Union

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
        """The aggregates, decoded."""
        return json.loads(self.aggregates_json)


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
        """The events, decoded."""
        return json.loads(self.events_json)


@dataclass
class GetAggregateResult:
    """An aggregate, if ``found``."""

    found: bool
    aggregate_json: Optional[str]

    @property
    def aggregate(self) -> Optional[Dict[str, Any]]:
        """The aggregate, decoded (``None`` when not found). Its ``state`` values are strings:
        the server stores every state value as text."""
        return json.loads(self.aggregate_json) if self.aggregate_json else None


@dataclass
class SelectAggregateResult:
    """A projection of an aggregate's state, if ``found``."""

    found: bool
    selection_json: Optional[str]

    @property
    def selection(self) -> Optional[Dict[str, Any]]:
        """The selected fields, decoded (``None`` when the aggregate was not found)."""
        return json.loads(self.selection_json) if self.selection_json else None


@dataclass
class ListSnapshotsResult:
    """Snapshots."""

    snapshots_json: str

    @property
    def snapshots(self) -> List[Dict[str, Any]]:
        """The snapshots, decoded."""
        return json.loads(self.snapshots_json)


@dataclass
class GetSnapshotResult:
    """A snapshot, if ``found``."""

    found: bool
    snapshot_json: Optional[str]

    @property
    def snapshot(self) -> Optional[Dict[str, Any]]:
        """The snapshot, decoded (``None`` when not found)."""
        return json.loads(self.snapshot_json) if self.snapshot_json else None


@dataclass
class PublishTarget:
    """A plugin to notify of an event (``mode`` and ``priority`` as the plugin defines them)."""

    plugin: str
    mode: Optional[str] = None
    priority: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.plugin:
            raise ValueError("publish target plugin must be provided")


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
            raise TypeError("retry must be a RetryOptions, a mapping or None")
        initial = config.get("initial_delay_ms")
        if initial is None:
            initial = config.get("initialDelayMs", 100)
        max_delay = config.get("max_delay_ms")
        if max_delay is None:
            max_delay = config.get("maxDelayMs", 1_000)
        return cls(int(config.get("attempts", 1)), int(initial), int(max_delay))


def sort_text(sort: Union[str, List[AggregateSortOption], None]) -> Optional[str]:
    """Sort directives as the server reads them: ``field:asc, field:desc``."""
    if sort is None:
        return None
    if isinstance(sort, str):
        return sort.strip() or None
    segments = []
    for option in sort:
        if not isinstance(option, AggregateSortOption):
            raise TypeError("sort must be a string or a list of AggregateSortOption")
        field = AggregateSortField(option.field).value
        segments.append(f"{field}:{'desc' if option.descending else 'asc'}")
    return ", ".join(segments) or None


def publish_target_tuples(
    targets: Optional[List[Union[PublishTarget, Mapping[str, Any]]]],
) -> Optional[List[tuple]]:
    """``(plugin, mode, priority)`` tuples from targets or mappings."""
    if targets is None:
        return None
    out = []
    for target in targets:
        if isinstance(target, Mapping):
            target = PublishTarget(
                plugin=target.get("plugin"),  # type: ignore[arg-type]
                mode=target.get("mode"),
                priority=target.get("priority"),
            )
        elif not isinstance(target, PublishTarget):
            raise TypeError("publish_targets must contain PublishTarget or mapping entries")
        out.append((target.plugin, target.mode, target.priority))
    return out
