"""EventDBX client for Python, on the Rust core of ``edbx``.

A drop-in replacement for the official ``eventdbx`` package (0.1.8): the same import name,
classes, arguments and results, plus an asyncio client, iterators that follow cursors, and a
connection engine that pools, pipelines and never sends a write twice.

>>> from eventdbx import EventDBXClient
>>> with EventDBXClient(token="…", tenant_id="tenant-123") as client:  # doctest: +SKIP
...     client.apply(aggregate_type="orders", aggregate_id="ord_1", event_type="paid",
...                  payload_json='{"status": "paid"}')
"""

from . import _native
from .aio import AsyncEventDBXClient
from .client import *  # noqa: F403
from .client import __all__ as _client_names
from .control_schema import build_control_hello, load_control_schema
from .noise import DEFAULT_NOISE_PROLOGUE, DEFAULT_NOISE_PROTOCOL, NoiseSession, derive_psk

__version__: str = _native.CORE_VERSION

__all__ = [
    *(name for name in _client_names if not name.startswith("DEFAULT_")),
    "AsyncEventDBXClient",
    "NoiseSession",
    "DEFAULT_NOISE_PROTOCOL",
    "DEFAULT_NOISE_PROLOGUE",
    "derive_psk",
    "build_control_hello",
    "load_control_schema",
    "__version__",
]
