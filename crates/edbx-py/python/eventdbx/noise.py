"""Noise sessions, as the official package 0.1.8 offers them, on the Rust core (``snow``).

``NoiseSession(is_initiator=…)`` with no key speaks ``Noise_XX_25519_AESGCM_SHA256`` (the
pattern the official README shows); given a ``psk`` it speaks the server's
``Noise_NNpsk0_25519_ChaChaPoly_SHA256``, keyed as the server keys it (:func:`derive_psk`).
The client runs its own handshake; these are for tools and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from . import _native

#: The pattern EventDBX server 3.19.4 speaks on its control port.
DEFAULT_NOISE_PROTOCOL = _native.SERVER_NOISE_PATTERN
#: The pattern of a session given no key (the official README's example).
XX_NOISE_PROTOCOL = "Noise_XX_25519_AESGCM_SHA256"
#: The prologue both sides mix in: the server uses none (0.1.8's ``b"eventdbx-control"`` made its
#: handshakes fail against the server).
DEFAULT_NOISE_PROLOGUE = b""

__all__ = [
    "DEFAULT_NOISE_PROLOGUE",
    "DEFAULT_NOISE_PROTOCOL",
    "XX_NOISE_PROTOCOL",
    "NoiseHandshake",
    "NoiseSession",
    "derive_psk",
]


@dataclass
class NoiseHandshake:
    """What a finished handshake leaves behind, for auditing or channel binding."""

    handshake_hash: bytes
    remote_static: Optional[bytes]


def derive_psk(token: Union[str, bytes]) -> bytes:
    """The 32-byte pre-shared key the server derives from a token: SHA-256 of the token with
    surrounding whitespace removed (the server trims tokens)."""
    if isinstance(token, (bytes, bytearray)):
        token = bytes(token).decode("utf-8")
    return _native.noise_psk(token)


class NoiseSession:
    """One side of a Noise session: ``write_message``/``read_message`` until
    ``handshake_finished``, then ``encrypt``/``decrypt``.

    ``protocol_name`` defaults to the server's pattern when a ``psk`` is given and to
    ``Noise_XX_25519_AESGCM_SHA256`` otherwise. ``local_static`` is this side's 32-byte private
    key (generated when the pattern needs one), ``remote_static`` the peer's public key for
    patterns that know it in advance.
    """

    def __init__(
        self,
        *,
        is_initiator: bool,
        protocol_name: Union[str, bytes, None] = None,
        prologue: bytes = DEFAULT_NOISE_PROLOGUE,
        psk: Optional[bytes] = None,
        local_static: Optional[bytes] = None,
        remote_static: Optional[bytes] = None,
    ) -> None:
        if protocol_name is None:
            protocol_name = DEFAULT_NOISE_PROTOCOL if psk is not None else XX_NOISE_PROTOCOL
        if isinstance(protocol_name, (bytes, bytearray)):
            protocol_name = bytes(protocol_name).decode("ascii")
        if "psk" in protocol_name.lower() and psk is None:
            raise ValueError("psk is required for the configured Noise protocol")
        self._session = _native.NativeNoise(
            protocol_name,
            bool(is_initiator),
            psk,
            bytes(prologue),
            local_static,
            remote_static,
        )

    @property
    def protocol_name(self) -> str:
        """The Noise protocol name this session runs."""
        return self._session.pattern

    @property
    def handshake_finished(self) -> bool:
        """Whether the handshake is complete."""
        return self._session.handshake_finished

    def write_message(self, payload: bytes = b"") -> bytes:
        """The next handshake message, carrying ``payload``."""
        return self._session.write_message(bytes(payload))

    def read_message(self, message: bytes) -> bytes:
        """Reads the peer's next handshake message; returns its payload."""
        return self._session.read_message(bytes(message))

    def finalize_handshake(self) -> NoiseHandshake:
        """The handshake hash and the peer's static key; ``RuntimeError`` before the end."""
        handshake_hash = self._session.handshake_hash
        if not self._session.handshake_finished or handshake_hash is None:
            raise RuntimeError("Handshake is not complete")
        return NoiseHandshake(handshake_hash, self._session.remote_static)

    def encrypt(self, plaintext: bytes, *, aad: Optional[bytes] = None) -> bytes:
        """Encrypts one transport message; ``RuntimeError`` before the handshake is done."""
        self._transport_ready("encrypt", aad)
        return self._session.encrypt(bytes(plaintext))

    def decrypt(self, ciphertext: bytes, *, aad: Optional[bytes] = None) -> bytes:
        """Decrypts one transport message, in the order the peer sent them."""
        self._transport_ready("decrypt", aad)
        return self._session.decrypt(bytes(ciphertext))

    def _transport_ready(self, what: str, aad: Optional[bytes]) -> None:
        if not self._session.handshake_finished:
            raise RuntimeError(f"Cannot {what} before completing the handshake")
        if aad:
            raise RuntimeError("Noise transport messages carry no associated data here")

    def __repr__(self) -> str:
        state = "transport" if self.handshake_finished else "handshake"
        return f"NoiseSession(protocol_name={self.protocol_name!r}, state={state!r})"
