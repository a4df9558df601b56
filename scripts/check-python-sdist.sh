#!/usr/bin/env bash
# Checks the Python source distribution the way a user without a matching wheel gets it:
# `maturin sdist`, then `pip install edbx-*.tar.gz` in a fresh virtual environment (compiling the
# extension with the machine's Rust), then a smoke test that needs no server:
# import, version, the bundled schemas, a Noise handshake and a control hello.
#
# Kept cheap: maturin comes from a cached wheel and is installed into the environment beforehand
# (--no-build-isolation: pip creates no build environment and downloads nothing), and cargo
# builds in a target folder shared between runs, so only the workspace's own crates recompile.
#
# Environment: EDBX_CACHE_DIR (default $HOME/.cache/edbx), EDBX_PYTHON (default python3),
# CARGO_TARGET_DIR (default $EDBX_CACHE_DIR/target; the sdist build uses its sdist/ folder).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { echo "check-python-sdist: $*" >&2; }

cache="${EDBX_CACHE_DIR:-$HOME/.cache/edbx}"
python="${EDBX_PYTHON:-python3}"
tools="$cache/py-build-venv"
wheelhouse="$cache/py-wheelhouse"
venv="$cache/py-sdist-venv"
# Its own folder: the unpacked sdist's path differs from the checkout's, so sharing the main
# target folder would only make the two invalidate each other's workspace crates.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}/sdist"
maturin_req="maturin>=1.9.4,<2"
mkdir -p "$cache" "$wheelhouse"

if [[ ! -x "$tools/bin/maturin" ]]; then
    say "creating $tools and installing maturin (from the Python index)"
    rm -rf "$tools"
    "$python" -m venv "$tools"
    "$tools/bin/python" -m pip install --quiet "$maturin_req"
fi
if ! "$tools/bin/python" -m pip download --quiet --no-index --find-links "$wheelhouse" \
        -d "$wheelhouse" "$maturin_req" >/dev/null 2>&1; then
    say "downloading maturin into $wheelhouse (from the Python index)"
    "$tools/bin/python" -m pip download --quiet --only-binary :all: -d "$wheelhouse" "$maturin_req"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
say "maturin sdist"
(cd crates/edbx-py && "$tools/bin/maturin" sdist --out "$out" >&2)
sdist=$(ls "$out"/edbx-*.tar.gz)
say "$(basename "$sdist"): $(du -h "$sdist" | cut -f1)"

# The unpacked sdist's files carry the tarball's fixed timestamps, older than any earlier build,
# so cargo would take stale builds of the workspace's own crates in the shared target folder for
# fresh (and compile the extension against an old edbx). Remove those; the dependencies' builds
# stay, which is what makes the cache worth having.
cargo clean --quiet -p edbx-py -p edbx -p edbx-wire
# The dev profile: what this checks is the packaging (every file the build needs is in the sdist,
# it compiles with the machine's Rust, the module imports and works), which the profile does not
# change. A second release build of the extension and its dependency tree (Arrow and Parquet
# among them) would add minutes to a cold CI run for nothing; the release wheel is built and
# tested by scripts/test-python.sh.
export MATURIN_PEP517_ARGS="--profile dev"
say "pip install $(basename "$sdist") into a fresh $venv (dev build, target $CARGO_TARGET_DIR)"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --no-index --find-links "$wheelhouse" "$maturin_req"
# maturin's build backend runs the `maturin` command: the environment's bin comes first on PATH.
PATH="$venv/bin:$PATH" "$venv/bin/python" -m pip install --quiet --no-index --no-build-isolation "$sdist"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
say "smoke test (no server needed)"
(cd "$out" && "$venv/bin/python" - "$version" <<'PY'
import sys
from importlib import metadata, resources

import eventdbx
from eventdbx import AsyncEventDBXClient, EventDBXClient, NoiseSession, build_control_hello

expected = sys.argv[1]
assert eventdbx.__version__ == expected, (eventdbx.__version__, expected)
assert metadata.version("edbx") == expected
folder = resources.files("eventdbx")
for name in ("py.typed", "_native.pyi", "aio.pyi", "proto/control.capnp", "proto/admin.capnp"):
    assert folder.joinpath(name).is_file(), f"{name} is missing from the package built from the sdist"
initiator, responder = NoiseSession(is_initiator=True), NoiseSession(is_initiator=False)
responder.read_message(initiator.write_message())
initiator.read_message(responder.write_message())
responder.read_message(initiator.write_message())
assert responder.decrypt(initiator.encrypt(b"ping")) == b"ping"
assert build_control_hello(protocol_version=1, token="t", tenant_id="x").to_bytes()
assert callable(EventDBXClient.from_env) and callable(AsyncEventDBXClient.from_env)
print(f"edbx {expected} from the sdist: imports, Noise handshake, hello: ok")
PY
)
