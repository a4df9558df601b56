"""The typing files ship in the wheel and stay in step with the code."""

from __future__ import annotations

import importlib.util
import inspect
import pathlib

import pytest

import eventdbx
from eventdbx import AsyncEventDBXClient, EventDBXClient, _native

TOOLS = pathlib.Path(__file__).resolve().parents[1] / "tools"


@pytest.mark.every_python
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


@pytest.mark.every_python
def test_every_exported_name_is_written_out_for_type_checkers():
    """``__all__`` is a literal list (a type checker cannot follow a computed one), and it
    names everything the error and type modules export, so nothing goes missing from it."""
    import ast

    from eventdbx import errors, types

    source = (pathlib.Path(eventdbx.__file__)).read_text()
    [assignment] = [
        node for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"
    ]
    assert isinstance(assignment.value, ast.List)
    assert all(isinstance(e, ast.Constant) for e in assignment.value.elts)
    assert set(errors.__all__) | set(types.__all__) <= set(eventdbx.__all__)
    for name in eventdbx.__all__:
        assert hasattr(eventdbx, name), name
