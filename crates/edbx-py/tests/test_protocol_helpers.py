"""``eventdbx.control_schema`` and ``eventdbx.noise``: the helpers of the official package, checked
against each other, against the bytes the client sends, and by hand against a real server."""

from __future__ import annotations

import socket
import struct
import sys
import threading

import pytest

from eventdbx import EventDBXClient, EventDBXConnectionError, EventDBXHandshakeError
from eventdbx.control_schema import (
    ControlHello,
    MissingDependencyError,
    build_control_hello,
    load_control_schema,
)
from eventdbx.noise import DEFAULT_NOISE_PROTOCOL, NoiseSession, derive_psk


def test_noise_pair_as_0_1_8_tests_build_it():
    psk = derive_psk("shared-secret")
    initiator = NoiseSession(is_initiator=True, psk=psk)
    responder = NoiseSession(is_initiator=False, psk=psk)
    assert initiator.protocol_name == DEFAULT_NOISE_PROTOCOL

    responder.read_message(initiator.write_message())
    initiator.read_message(responder.write_message())
    assert initiator.handshake_finished and responder.handshake_finished
    assert responder.decrypt(initiator.encrypt(b"payload")) == b"payload"
    assert initiator.decrypt(responder.encrypt(b"back")) == b"back"
    hs = initiator.finalize_handshake()
    assert hs.handshake_hash == responder.finalize_handshake().handshake_hash
    assert hs.remote_static is None  # NNpsk0 has no static keys


def test_noise_guards():
    session = NoiseSession(is_initiator=True, psk=derive_psk("shared-secret"))
    with pytest.raises(RuntimeError):
        session.encrypt(b"oops")
    with pytest.raises(RuntimeError):
        session.finalize_handshake()
    with pytest.raises(ValueError):
        NoiseSession(is_initiator=True, protocol_name=DEFAULT_NOISE_PROTOCOL)
    with pytest.raises(ValueError):
        NoiseSession(is_initiator=True, psk=b"short")
    # A wrong key fails the handshake.
    a = NoiseSession(is_initiator=True, psk=derive_psk("a"))
    b = NoiseSession(is_initiator=False, psk=derive_psk("b"))
    with pytest.raises(RuntimeError):
        b.read_message(a.write_message())
    # The server trims tokens; so does the key derivation.
    assert derive_psk(" tok\n") == derive_psk("tok") == derive_psk(b"tok")


def test_xx_sessions_with_given_keys_and_prologue():
    responder_key = bytes(range(32))
    initiator = NoiseSession(is_initiator=True, prologue=b"p")
    responder = NoiseSession(is_initiator=False, prologue=b"p", local_static=responder_key)
    responder.read_message(initiator.write_message(b"hi"))
    initiator.read_message(responder.write_message())
    responder.read_message(initiator.write_message())
    assert initiator.finalize_handshake().remote_static is not None
    # Prologues that differ make the second message fail to authenticate.
    left = NoiseSession(is_initiator=True, prologue=b"p")
    right = NoiseSession(is_initiator=False, prologue=b"other")
    right.read_message(left.write_message())
    with pytest.raises(RuntimeError):
        left.read_message(right.write_message())


@pytest.mark.parametrize(
    "protocol, token, tenant",
    [(0, "tok", "tenant"), (1, "", "tenant"), (1, "tok", ""), (1, "   ", "tenant"), (70000, "t", "x")],
)
def test_build_control_hello_validation(protocol, token, tenant):
    with pytest.raises(ValueError):
        build_control_hello(protocol_version=protocol, token=token, tenant_id=tenant)


def test_hello_round_trips_and_hides_the_token():
    hello = build_control_hello(protocol_version=1, token=" s3cr3t ", tenant_id="tenant")
    assert (hello.protocolVersion, hello.token, hello.tenantId, hello.noNoise) == (1, "s3cr3t", "tenant", False)
    assert ControlHello.from_bytes(hello.to_bytes()) == hello
    assert "s3cr3t" not in repr(hello)


def test_hello_bytes_are_what_the_client_sends():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    received = bytearray()

    def accept() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(3)
            try:
                while chunk := conn.recv(4096):
                    received.extend(chunk)
            except OSError:
                pass

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        # A peer that never answers the hello: a retryable connection failure, not a refusal.
        with pytest.raises(EventDBXConnectionError) as stalled:
            EventDBXClient(
                token="my-token", tenant_id="tenant-7", port=listener.getsockname()[1],
                connect_timeout=0.5,
            )
    finally:
        thread.join()
        listener.close()
    assert stalled.value.retryable and not isinstance(stalled.value, EventDBXHandshakeError)
    expected = build_control_hello(protocol_version=1, token="my-token", tenant_id="tenant-7")
    assert bytes(received) == expected.to_bytes()


def test_load_control_schema_with_pycapnp():
    schema = load_control_schema()
    assert load_control_schema() is schema
    hello = build_control_hello(protocol_version=1, token="tok", tenant_id="tenant")
    with schema.ControlHello.from_bytes(hello.to_bytes()) as decoded:
        assert (decoded.protocolVersion, decoded.token, decoded.tenantId) == (1, "tok", "tenant")


def test_load_control_schema_names_the_missing_package(monkeypatch):
    load_control_schema.cache_clear()
    monkeypatch.setitem(sys.modules, "capnp", None)
    try:
        with pytest.raises(MissingDependencyError, match="pip install pycapnp") as missing:
            load_control_schema()
        assert isinstance(missing.value, RuntimeError) and isinstance(missing.value, ImportError)
    finally:
        load_control_schema.cache_clear()


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "server closed the connection"
        data += chunk
    return data


def _send_frame(sock: socket.socket, body: bytes) -> None:
    sock.sendall(struct.pack(">I", len(body)) + body)


def _recv_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">I", _recv_exact(sock, 4))
    return _recv_exact(sock, size)


def test_helpers_speak_to_the_real_server_by_hand(server):
    """A session built from the helpers alone: hello, Noise NNpsk0, one request."""
    schema = load_control_schema()
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        hello = build_control_hello(protocol_version=1, token=server.token, tenant_id=server.tenant)
        sock.sendall(hello.to_bytes())
        # The reply is a bare one-segment message: 8-byte table, then the segment.
        table = _recv_exact(sock, 8)
        words = struct.unpack("<I", table[4:])[0]
        reply = table + _recv_exact(sock, words * 8)
        with schema.ControlHelloResponse.from_bytes(reply) as response:
            assert response.accepted, response.message
            assert response.noNoise is False

        noise = NoiseSession(is_initiator=True, psk=derive_psk(server.token))
        _send_frame(sock, noise.write_message())
        noise.read_message(_recv_frame(sock))
        assert noise.handshake_finished

        request = schema.ControlRequest.new_message()
        request.id = 7
        listing = request.payload.init("listAggregates")
        listing.token = server.token
        listing.take = 1
        listing.hasTake = True
        _send_frame(sock, noise.encrypt(request.to_bytes()))
        with schema.ControlResponse.from_bytes(noise.decrypt(_recv_frame(sock))) as answer:
            assert answer.id == 7
            assert answer.payload.which() == "listAggregates"
            assert answer.payload.listAggregates.aggregatesJson.startswith("[")
