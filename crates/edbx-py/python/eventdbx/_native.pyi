"""Type stubs of ``eventdbx._native``, the Rust half of the package (crates/edbx-py/src).

Every call of :class:`NativeClient`, :class:`NativePageStream` and :class:`NativeSubscription` runs blocking (GIL released)
by default, or returns an awaitable of the running asyncio loop with ``asynchronous=True``.
Errors are raised as the classes of :mod:`eventdbx.errors`.
"""

from os import PathLike
from typing import Any, Awaitable, Dict, List, Literal, Optional, Tuple, TypedDict, Union, final, overload

__all__ = [
    "NativeClient",
    "NativePageStream",
    "NativeSubscription",
    "load_checkpoint_file",
    "save_checkpoint_file",
    "NativeNoise",
    "build_hello",
    "parse_hello",
    "noise_psk",
    "config_from_env",
    "check_options",
    "SERVER_NOISE_PATTERN",
    "PROTOCOL_VERSION",
    "CORE_VERSION",
    "LIMITS",
    "DEFAULTS",
]

SERVER_NOISE_PATTERN: str
PROTOCOL_VERSION: int
CORE_VERSION: str

class _Limits(TypedDict):
    pool_size: int
    max_in_flight: int
    retry_attempts: int
    timeout_seconds: float

LIMITS: _Limits
"""The engine's limits on the client's settings; a value past one is refused at construction."""

class _Defaults(TypedDict):
    pool_size: int
    max_in_flight: int

DEFAULTS: _Defaults
"""The engine's defaults for the client's settings, which the constructors take as theirs."""

_Target = Tuple[str, Optional[str], Optional[str]]

class _ExportOptions(TypedDict):
    what: str
    partition_by: Optional[str]
    aggregate_type: Optional[str]
    include_archived: bool
    skip_archived: bool
    max_file_size: Optional[int]
    row_group_size: Optional[int]
    compression: str
    concurrency: int

class _ClientOptions(TypedDict):
    host: str
    port: int
    token: str
    tenant_id: Optional[str]
    use_noise: bool
    connect_timeout: float
    read_timeout: float
    retry_attempts: int
    retry_initial_delay_ms: int
    retry_max_delay_ms: int
    pool_size: int
    max_in_flight: int

@final
class NativeClient:
    @overload
    @staticmethod
    def connect(options: _ClientOptions, asynchronous: Literal[False] = False) -> NativeClient: ...
    @overload
    @staticmethod
    def connect(options: _ClientOptions, asynchronous: Literal[True]) -> Awaitable[NativeClient]: ...
    def close(self) -> None: ...
    @property
    def open_connections(self) -> int: ...
    @property
    def encrypted(self) -> bool: ...
    # Writes: the server's JSON echo, or None when it sent none.
    def create_aggregate(
        self,
        aggregate_type: str,
        aggregate_id: str,
        event_type: str,
        payload_json: str,
        note: Optional[str] = None,
        metadata_json: Optional[str] = None,
        publish_targets: Optional[List[_Target]] = None,
        allow_unlistable: bool = False,
        asynchronous: bool = False,
    ) -> Any: ...
    def append_event(
        self,
        aggregate_type: str,
        aggregate_id: str,
        event_type: str,
        payload_json: str,
        note: Optional[str] = None,
        metadata_json: Optional[str] = None,
        publish_targets: Optional[List[_Target]] = None,
        allow_unlistable: bool = False,
        asynchronous: bool = False,
    ) -> Any: ...
    def patch_event(
        self,
        aggregate_type: str,
        aggregate_id: str,
        event_type: str,
        patch_json: str,
        note: Optional[str] = None,
        metadata_json: Optional[str] = None,
        publish_targets: Optional[List[_Target]] = None,
        allow_unlistable: bool = False,
        asynchronous: bool = False,
    ) -> Any: ...
    def set_archive(
        self,
        aggregate_type: str,
        aggregate_id: str,
        archived: bool,
        note: Optional[str] = None,
        asynchronous: bool = False,
    ) -> Any: ...
    # Reads. Pages are (rows_json, next_cursor, complete).
    def list_aggregates(
        self,
        cursor: Optional[str] = None,
        take: Optional[int] = None,
        filter: Optional[str] = None,
        sort: Optional[str] = None,
        include_archived: bool = False,
        archived_only: bool = False,
        asynchronous: bool = False,
    ) -> Any: ...
    def list_events(
        self,
        aggregate_type: str,
        aggregate_id: str,
        cursor: Optional[str] = None,
        take: Optional[int] = None,
        asynchronous: bool = False,
    ) -> Any: ...
    def stream_aggregates(
        self,
        cursor: Optional[str] = None,
        take: Optional[int] = None,
        filter: Optional[str] = None,
        sort: Optional[str] = None,
        include_archived: bool = False,
        archived_only: bool = False,
    ) -> NativePageStream: ...
    def stream_events(
        self,
        aggregate_type: str,
        aggregate_id: str,
        cursor: Optional[str] = None,
        take: Optional[int] = None,
    ) -> NativePageStream: ...
    def subscribe(
        self,
        types: Optional[List[str]] = None,
        start: str = "beginning",
        checkpoint: Optional[str] = None,
        until_caught_up: bool = False,
        overlap: Optional[float] = None,
        poll_interval: Optional[Tuple[float, float]] = None,
        page_size: Optional[int] = None,
        events_page_size: Optional[int] = None,
        prefetch: Optional[int] = None,
        retry_for: Optional[float] = None,
    ) -> NativeSubscription: ...
    def get_aggregate(self, aggregate_type: str, aggregate_id: str, asynchronous: bool = False) -> Any: ...
    def export_parquet(
        self, path: str, options: _ExportOptions, asynchronous: bool = False
    ) -> Any: ...
    def select_aggregate(
        self, aggregate_type: str, aggregate_id: str, fields: List[str], asynchronous: bool = False
    ) -> Any: ...
    def verify_aggregate(self, aggregate_type: str, aggregate_id: str, asynchronous: bool = False) -> Any: ...
    def verify_history(self, aggregate_type: str, aggregate_id: str, asynchronous: bool = False) -> Any: ...
    def create_snapshot(
        self, aggregate_type: str, aggregate_id: str, comment: Optional[str] = None, asynchronous: bool = False
    ) -> Any: ...
    def list_snapshots(
        self,
        aggregate_type: Optional[str] = None,
        aggregate_id: Optional[str] = None,
        version: Optional[int] = None,
        asynchronous: bool = False,
    ) -> Any: ...
    def get_snapshot(self, snapshot_id: int, asynchronous: bool = False) -> Any: ...
    def list_schemas(self, asynchronous: bool = False) -> Any: ...
    def replace_schemas(self, schemas_json: str, asynchronous: bool = False) -> Any: ...
    def tenant_assign(self, tenant_id: str, shard_id: str, asynchronous: bool = False) -> Any: ...
    def tenant_unassign(self, tenant_id: str, asynchronous: bool = False) -> Any: ...
    def tenant_quota_set(self, tenant_id: str, max_storage_mb: int, asynchronous: bool = False) -> Any: ...
    def tenant_quota_clear(self, tenant_id: str, asynchronous: bool = False) -> Any: ...
    def tenant_quota_recalc(self, tenant_id: str, asynchronous: bool = False) -> Any: ...
    def tenant_reload(self, tenant_id: str, asynchronous: bool = False) -> Any: ...
    def tenant_schema_publish(
        self,
        tenant_id: str,
        reason: Optional[str] = None,
        actor: Optional[str] = None,
        labels: Optional[List[str]] = None,
        activate: bool = False,
        force: bool = False,
        reload: bool = False,
        asynchronous: bool = False,
    ) -> Any: ...

@final
class NativePageStream:
    @overload
    def next_page(self, asynchronous: Literal[False] = False) -> Optional[List[str]]: ...
    @overload
    def next_page(self, asynchronous: Literal[True]) -> Awaitable[Optional[List[str]]]: ...

# A batch: (event JSON, checkpoint after it) pairs; [] when the timeout passed; None at the end.


@final
class NativeSubscription:
    @overload
    def next_batch(
        self,
        max_events: int = 1000,
        timeout: Optional[float] = None,
        received: int = 0,
        asynchronous: Literal[False] = False,
    ) -> Optional[Tuple[int, List[Tuple[str, str]]]]: ...
    @overload
    def next_batch(
        self, max_events: int, timeout: Optional[float], received: int, asynchronous: Literal[True]
    ) -> Awaitable[Optional[Tuple[int, List[Tuple[str, str]]]]]: ...
    def received(self, received: int) -> None: ...
    @property
    def checkpoint(self) -> str: ...
    @property
    def caught_up(self) -> bool: ...
    def take_unreadable(self) -> List[Tuple[str, str, int, Optional[int]]]: ...

@final
class NativeNoise:
    def __new__(
        cls,
        pattern: str,
        initiator: bool,
        psk: Optional[bytes] = None,
        prologue: bytes = ...,
        local_static: Optional[bytes] = None,
        remote_static: Optional[bytes] = None,
    ) -> NativeNoise: ...
    @property
    def pattern(self) -> str: ...
    @property
    def handshake_finished(self) -> bool: ...
    @property
    def handshake_hash(self) -> Optional[bytes]: ...
    @property
    def remote_static(self) -> Optional[bytes]: ...
    def write_message(self, payload: bytes) -> bytes: ...
    def read_message(self, message: bytes) -> bytes: ...
    def encrypt(self, plaintext: bytes) -> bytes: ...
    def decrypt(self, ciphertext: bytes) -> bytes: ...

def build_hello(protocol_version: int, token: str, tenant_id: str, no_noise: bool = False) -> bytes: ...
def parse_hello(data: bytes) -> Tuple[int, str, str, bool]: ...
def noise_psk(token: str) -> bytes: ...
def config_from_env() -> Dict[str, Any]: ...
def check_options(options: _ClientOptions) -> None:
    """Raises ``EventDBXInputError`` naming the argument when a setting is past the engine's limits."""

def load_checkpoint_file(path: Union[str, PathLike[str]]) -> Optional[str]: ...
def save_checkpoint_file(path: Union[str, PathLike[str]], checkpoint: str) -> None: ...

