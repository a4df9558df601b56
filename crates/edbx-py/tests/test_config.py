"""Constructor arguments, retry options and the environment, as 0.1.8 spells and checks them."""

from __future__ import annotations

import inspect

import pytest

import eventdbx
from eventdbx import AsyncEventDBXClient, EventDBXClient, RetryOptions


def test_retry_options_validate_as_0_1_8():
    assert RetryOptions() == RetryOptions(attempts=1, initial_delay_ms=100, max_delay_ms=1000)
    for bad in ({"attempts": 0}, {"initial_delay_ms": -1}, {"max_delay_ms": -5}, {"attempts": 2**40}):
        with pytest.raises(ValueError):
            RetryOptions(**bad)
    assert RetryOptions.from_config(None) == RetryOptions()
    assert RetryOptions.from_config({"attempts": 3, "initialDelayMs": 5, "maxDelayMs": 50}) == RetryOptions(3, 5, 50)
    assert RetryOptions.from_config({"attempts": 2, "initial_delay_ms": 7}) == RetryOptions(2, 7, 1000)
    given = RetryOptions(4, 1, 2)
    assert RetryOptions.from_config(given) == given and RetryOptions.from_config(given) is not given
    with pytest.raises(ValueError):
        RetryOptions.from_config({"attempts": 0})
    with pytest.raises(TypeError):
        RetryOptions.from_config(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"token": ""}, ValueError),
        ({"tenant_id": ""}, ValueError),
        ({"protocol_version": 2}, ValueError),
        ({"port": 70000}, ValueError),
        ({"pool_size": 0}, ValueError),
        ({"max_in_flight": 10**9}, ValueError),
        ({"read_timeout": 0}, ValueError),
        ({"connect_timeout": -1.0}, ValueError),
        ({"transport": object()}, TypeError),
        ({"retry": {"attempts": -1}}, ValueError),
    ],
)
def test_bad_constructor_arguments_fail_before_connecting(overrides, error):
    kwargs = {"token": "t", "tenant_id": "x", "port": 1, **overrides}
    with pytest.raises(error):
        EventDBXClient(**kwargs)
    with pytest.raises(error):
        AsyncEventDBXClient(**kwargs)


def test_keyword_only_like_0_1_8():
    with pytest.raises(TypeError):
        EventDBXClient("token", "tenant")  # type: ignore[misc]


def test_plaintext_request_warns_and_the_token_never_shows(server):
    with pytest.warns(RuntimeWarning, match="testing only"):
        client = EventDBXClient(**server.kwargs(use_noise=False))
    with client:
        # The server does not allow plaintext: the session stays encrypted.
        client.list(take=1)
        assert client.encrypted
        assert server.token not in repr(client) and "<redacted>" in repr(client)


def test_environment_configures_the_client(server, monkeypatch, uid):
    monkeypatch.setenv("EVENTDBX_HOST", server.host)
    monkeypatch.setenv("EVENTDBX_PORT", str(server.port))
    monkeypatch.setenv("EVENTDBX_TOKEN", server.token)
    monkeypatch.setenv("EVENTDBX_TENANT_ID", uid)
    monkeypatch.delenv("EVENTDBX_NO_NOISE", raising=False)
    with EventDBXClient.from_env() as client:
        client.create(aggregate_type="orders", aggregate_id="o1", event_type="created", payload_json="{}")
    # The tenant came from the environment: another tenant does not see the aggregate.
    with EventDBXClient(token=server.token, tenant_id=server.tenant) as other:
        assert other.get(aggregate_type="orders", aggregate_id="o1").found is False
    with EventDBXClient(token=server.token, tenant_id=uid) as same:
        assert same.get(aggregate_type="orders", aggregate_id="o1").found is True

    monkeypatch.delenv("EVENTDBX_TENANT_ID")
    with pytest.raises(ValueError, match="EVENTDBX_TENANT_ID"):
        EventDBXClient.from_env()
    monkeypatch.setenv("EVENTDBX_PORT", "not-a-port")
    with pytest.raises(ValueError):
        EventDBXClient(token="t", tenant_id="x")


def test_package_exports_what_0_1_8_exports():
    for name in [
        "EventDBXClient", "EventDBXAPIError", "EventDBXHandshakeError", "EventDBXConnectionError",
        "NoiseSession", "DEFAULT_NOISE_PROTOCOL", "DEFAULT_NOISE_PROLOGUE", "derive_psk",
        "build_control_hello", "load_control_schema", "ListEventsResult", "ListAggregatesResult",
        "GetAggregateResult", "ListSnapshotsResult", "GetSnapshotResult", "PublishTarget",
        "SelectAggregateResult", "TenantAssignResult", "TenantQuotaResult",
        "TenantSchemaPublishResult", "AggregateSortField", "AggregateSortOption", "RetryOptions",
        "__version__",
    ]:
        assert name in eventdbx.__all__ and hasattr(eventdbx, name), name
    from eventdbx.client import EventDBXAPIError, EventDBXClient as FromClientModule  # noqa: F401

    assert FromClientModule is EventDBXClient
    assert issubclass(eventdbx.EventDBXHandshakeError, eventdbx.EventDBXConnectionError)
    assert issubclass(eventdbx.EventDBXConnectionError, RuntimeError)
    assert issubclass(eventdbx.EventDBXAPIError, RuntimeError)


def test_the_constructors_defaults_are_the_engines():
    # One default per setting, the engine's: the Python and Rust clients pool alike.
    for cls in (EventDBXClient, AsyncEventDBXClient):
        parameters = inspect.signature(cls).parameters
        for name in ("pool_size", "max_in_flight"):
            assert parameters[name].default == eventdbx._native.DEFAULTS[name], (cls, name)
    assert eventdbx._native.DEFAULTS["pool_size"] <= eventdbx._native.LIMITS["pool_size"]


@pytest.mark.parametrize(
    "argument, limit, make",
    [
        ("pool_size", eventdbx._native.LIMITS["pool_size"], lambda n: {"pool_size": n}),
        ("max_in_flight", eventdbx._native.LIMITS["max_in_flight"], lambda n: {"max_in_flight": n}),
        ("retry.attempts", eventdbx._native.LIMITS["retry_attempts"], lambda n: {"retry": RetryOptions(attempts=n)}),
        ("read_timeout", eventdbx._native.LIMITS["timeout_seconds"], lambda n: {"read_timeout": n}),
        ("connect_timeout", eventdbx._native.LIMITS["timeout_seconds"], lambda n: {"connect_timeout": n}),
    ],
)
def test_the_engine_limits_are_the_constructors(server, argument, limit, make):
    # The limit itself is accepted and the client works with it...
    with EventDBXClient(**server.kwargs(**make(limit))) as client:
        assert client.list(take=1) is not None
    # ...one past it is refused before connecting, naming the argument as Python spells it.
    for cls in (EventDBXClient, AsyncEventDBXClient):
        with pytest.raises(eventdbx.EventDBXInputError, match=rf"^{argument.replace('.', '[.]')} must .*\b{int(limit) + 1}"):
            cls(**server.kwargs(**make(int(limit) + 1)))
