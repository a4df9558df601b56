"""The connection-opening hello and the bundled Cap'n Proto schemas.

:func:`build_control_hello` builds the first message of a connection; its :meth:`ControlHello.to_bytes`
gives exactly the bytes the client sends (a bare Cap'n Proto message). The schemas ship in
``eventdbx/proto``; :func:`load_control_schema` loads them with ``pycapnp``, which is optional
(``pip install pycapnp``): the client never needs it.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from importlib import resources
from typing import Any

from . import _native

__all__ = ["ControlHello", "MissingDependencyError", "build_control_hello", "load_control_schema"]


class MissingDependencyError(RuntimeError, ImportError):
    """An optional package this helper needs is not installed."""


class ControlHello:
    """The first message of a connection, client to server. The token never shows in ``repr``."""

    __slots__ = ("protocol_version", "token", "tenant_id", "no_noise")

    def __init__(self, protocol_version: int, token: str, tenant_id: str, no_noise: bool) -> None:
        self.protocol_version = protocol_version
        self.token = token
        self.tenant_id = tenant_id
        self.no_noise = no_noise

    # The Cap'n Proto field names, as the official package's pycapnp builder exposes them.
    @property
    def protocolVersion(self) -> int:  # noqa: N802 (the schema's name)
        return self.protocol_version

    @property
    def tenantId(self) -> str:  # noqa: N802
        return self.tenant_id

    @property
    def noNoise(self) -> bool:  # noqa: N802
        return self.no_noise

    def to_bytes(self) -> bytes:
        """The message as sent on the wire: a bare (unframed) Cap'n Proto stream message."""
        return _native.build_hello(self.protocol_version, self.token, self.tenant_id, self.no_noise)

    @classmethod
    def from_bytes(cls, data: bytes) -> "ControlHello":
        """Reads a hello back from its bytes."""
        return cls(*_native.parse_hello(bytes(data)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ControlHello):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"ControlHello(protocol_version={self.protocol_version}, token=<redacted>, "
            f"tenant_id={self.tenant_id!r}, no_noise={self.no_noise})"
        )


def build_control_hello(*, protocol_version: int, token: str, tenant_id: str) -> ControlHello:
    """A hello asking for a Noise session of ``tenant_id`` with ``token``.

    Raises ``ValueError`` when ``protocol_version`` is not positive or the token or tenant is
    empty. Surrounding whitespace of the token and tenant is trimmed, as the server trims it.
    """
    if protocol_version <= 0:
        raise ValueError("protocol_version must be greater than zero")
    if not token:
        raise ValueError("token must be provided")
    if not tenant_id:
        raise ValueError("tenant_id must be provided")
    # The native builder validates the rest (version range, whitespace-only values, NUL bytes)
    # and trims the token and tenant.
    _native.build_hello(protocol_version, token, tenant_id)
    return ControlHello(protocol_version, token.strip(), tenant_id.strip(), False)


@lru_cache(maxsize=1)
def load_control_schema() -> Any:
    """The control schema loaded with ``pycapnp`` (cached): ``schema.ControlHello``,
    ``schema.ControlRequest``, ``schema.ControlResponse``, …

    Raises :class:`MissingDependencyError` (a ``RuntimeError`` and an ``ImportError``) naming
    the package to install when ``pycapnp`` is missing.
    """
    try:
        # Imported by name: pycapnp ships no type information, and is optional.
        capnp = importlib.import_module("capnp")
    except ImportError as exc:
        raise MissingDependencyError(
            "load_control_schema() needs pycapnp, which eventdbx does not install: "
            "pip install pycapnp (the client itself does not need it)"
        ) from exc
    folder = resources.files("eventdbx.proto")
    with resources.as_file(folder) as path:
        return capnp.load(str(path / "control.capnp"), imports=[str(path)])
