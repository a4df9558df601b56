"""The typing files ship in the wheel and stay in step with the code."""

from __future__ import annotations

import importlib.util
import inspect
import pathlib

import eventdbx
from eventdbx import AsyncEventDBXClient, EventDBXClient, _native

TOOLS = pathlib.Path(__file__).resolve().parents[1] / "tools"


def test_typing_files_are_installed():
    installed = pathlib.Path(eventdbx.__file__).parent
    for name in ("py.typed", "_native.pyi", "aio.pyi", "proto/control.capnp", "proto/admin.capnp"):
        assert (installed / name).is_file(), f"{name} is missing from the installed package"


def test_async_stub_is_generated_from_the_operations():
    spec = importlib.util.spec_from_file_location("aio_stub", TOOLS / "aio_stub.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.stub_path().read_text() == module.render(), (
        "python/eventdbx/aio.pyi is stale: run python3 crates/edbx-py/tools/aio_stub.py"
    )


def test_both_clients_offer_the_same_operations():
    def public(cls: type) -> set:
        return {n for n in dir(cls) if not n.startswith("_")}

    # Only the explicit connect of the asyncio client (the blocking one connects when built).
    assert public(EventDBXClient) ^ public(AsyncEventDBXClient) == {"connect"}
    for name in ("iter_aggregates", "iter_events"):
        sync, aio = (inspect.signature(getattr(c, name)) for c in (EventDBXClient, AsyncEventDBXClient))
        assert sync.parameters == aio.parameters, name


def test_native_stub_names_every_native_function():
    stub = (pathlib.Path(eventdbx.__file__).parent / "_native.pyi").read_text()
    for name in dir(_native):
        if not name.startswith("_"):
            assert name in stub, f"_native.{name} is missing from _native.pyi"
    for method in dir(_native.NativeClient):
        if not method.startswith("_"):
            assert f"def {method}(" in stub, f"NativeClient.{method} is missing from _native.pyi"
