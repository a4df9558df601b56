"""Run-time patches that let the official Python client, ``eventdbx`` 0.1.8 from the Python
index, open a session with EventDBX server 3.19.4, so that the benchmark can run it beside this
workspace's package. Its installed files are never edited: ``patch()`` replaces three pieces in
memory, each the smallest change that fixes one of its three connection bugs (the first and
the third are in docs/PROTOCOL.md §1; the second shows once the first is
fixed):

1. **Unframed hello.** ``_handshake`` sends the ``ControlHello`` with ``send_frame`` (a 4-byte
   length in front), which the server reads as a Cap'n Proto segment count and closes on. The
   patched ``_handshake`` sends it with the package's own ``send_unframed`` and reads the reply
   with its own ``recv_capnp_message`` (the reply is bare too, not a frame); the rest of the
   method is 0.1.8's, line for line.
2. **Hello-reply padding.** ``recv_capnp_message`` pads the segment table when the segment count
   is odd; Cap'n Proto pads it when the count is even (the table is one count word plus one word
   per segment, rounded up to 8 bytes). With the server's one-segment reply it would read 4 bytes
   too many and wait for them forever. The patched reader pads correctly.
3. **Noise prologue.** ``NoiseSession`` mixes the prologue ``b"eventdbx-control"`` into the
   handshake; the server uses none, so the server's first handshake check fails. The patch sets
   the default prologue to ``b""``.

Nothing else changes: one request at a time on one connection, pycapnp encoding, noiseprotocol
encryption, and no ``TCP_QUICKACK`` (so each reply still waits ~40 ms for a delayed ACK,
docs/PROTOCOL.md §3) — what a user who fixed only what stops it from connecting would get.
"""

from __future__ import annotations

import struct
from importlib import metadata
from typing import Any

VERSION = "0.1.8"


def _recv_capnp_message(self: Any) -> bytes:
    """A bare Cap'n Proto stream message: u32 (segment count - 1), one u32 length (in words)
    per segment, padding to 8 bytes when the count is even, then the segments."""
    head = self._recv_exact(4)
    segments = struct.unpack("<I", head)[0] + 1
    if segments > 512:
        raise self._connection_error(f"bad Cap'n Proto segment count {segments}")
    table = self._recv_exact(4 * segments + (4 if segments % 2 == 0 else 0))
    lengths = struct.unpack(f"<{segments}I", table[: 4 * segments])
    body = self._recv_exact(8 * sum(lengths))
    return head + table + body


def patch() -> None:
    """Patches the installed ``eventdbx`` 0.1.8 in memory (refuses any other version, and the
    ``edbx`` distribution, which needs no patch)."""
    installed = metadata.version("eventdbx")
    if installed != VERSION:
        raise RuntimeError(f"expected the official eventdbx {VERSION}, found {installed}")
    from eventdbx import client as client_module
    from eventdbx import noise as noise_module

    transport = client_module._SocketTransport
    client_class = client_module.EventDBXClient

    # 2. Hello-reply padding.
    transport._connection_error = staticmethod(client_module.EventDBXConnectionError)
    transport.recv_capnp_message = _recv_capnp_message

    # 3. Noise prologue: the server's is empty.
    noise_module.NoiseSession.__init__.__kwdefaults__["prologue"] = b""

    # 1. Unframed hello, and a bare reply read as such: 0.1.8's `_handshake` with its two
    # framing calls replaced by the package's own unframed helpers.
    def _handshake(self: Any) -> None:
        if self._transport is None:
            raise client_module.EventDBXConnectionError("Transport is not available")
        hello = client_module.build_control_hello(
            protocol_version=self._protocol_version,
            token=self._token,
            tenant_id=self._tenant_id,
        )
        self._transport.send_unframed(hello.to_bytes())
        response_bytes = self._transport.recv_capnp_message()
        hello_response_cm = self._schema.ControlHelloResponse.from_bytes(response_bytes)
        with client_module._capnp_message(hello_response_cm) as hello_response:
            if not hello_response.accepted:
                raise client_module.EventDBXHandshakeError(
                    hello_response.message or "Handshake rejected"
                )
        if self._noise is not None:
            first = self._noise.write_message()
            self._transport.send_frame(first)
            server_response = self._transport.recv_frame()
            self._noise.read_message(server_response)

    client_class._handshake = _handshake
