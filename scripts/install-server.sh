#!/usr/bin/env bash
# Installs the EventDBX server the edbx tests run against (crate `eventdbx`, binary `dbx`),
# pinned to one version, once per machine, into a cache folder outside the repository:
#
#     ${EDBX_CACHE_DIR:-$HOME/.cache/edbx}/server-<version>/bin/dbx
#
# That is where edbx-testkit looks for it (after $EDBX_DBX). Running the script again is cheap:
# it exits at once when the binary is there and reports the pinned version.
#
# The build needs Debian packages, which scripts/system-packages.sh installs (as root) or names
# (otherwise). It links Debian's RocksDB (librocksdb-dev, libsnappy-dev) when those are
# installed, which takes ~6.5 minutes on 2 cores; without them RocksDB is compiled from source
# (~20 minutes). The server then needs librocksdb at run time, so keep that package installed. The build happens in a temporary folder that is moved into place only when it is
# complete, so an interrupted run never leaves something that looks installed; the cargo target
# folder is kept between interrupted runs so a retry resumes where the last one stopped.
#
# Environment:
#   EDBX_CACHE_DIR       cache folder (default $HOME/.cache/edbx)
#   EDBX_KEEP_BUILD_DIR  set to 1 to keep the cargo target folder after a successful build
set -euo pipefail

VERSION=3.19.4
CRATE=eventdbx

die() {
    echo "install-server: error: $*" >&2
    exit 1
}
say() { echo "install-server: $*" >&2; }

if [[ -z "${EDBX_CACHE_DIR:-}" && -z "${HOME:-}" ]]; then
    die "neither EDBX_CACHE_DIR nor HOME is set; cannot choose a cache folder"
fi
CACHE_DIR="${EDBX_CACHE_DIR:-$HOME/.cache/edbx}"
DEST="$CACHE_DIR/server-$VERSION"
BIN="$DEST/bin/dbx"

# Prints the version the given dbx reports (`eventdbx version X`), or nothing. dbx writes logs and
# a skeleton data folder under $HOME even for --version, so run it in a throwaway HOME.
reported_version() {
    local bin=$1 scratch out
    [[ -x "$bin" ]] || return 0
    scratch=$(mktemp -d)
    out=$(HOME="$scratch" EVENTDBX_LOG_DIR="$scratch/logs" DBX_NO_UPGRADE_CHECK=1 RUST_LOG=error \
        "$bin" --version </dev/null 2>/dev/null || true)
    rm -rf "$scratch"
    awk '$1 == "eventdbx" && $2 == "version" { print $3; exit }' <<<"$out"
}

already_installed() {
    [[ "$(reported_version "$BIN")" == "$VERSION" ]]
}

if already_installed; then
    echo "eventdbx $VERSION is installed: $BIN"
    exit 0
fi

mkdir -p "$CACHE_DIR"

# One build at a time per cache folder: a second run waits, then finds the finished install.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE_DIR/.server-$VERSION.lock"
    if ! flock -n 9; then
        say "another install of eventdbx $VERSION is running; waiting for it to finish"
        flock 9
    fi
    if already_installed; then
        echo "eventdbx $VERSION is installed: $BIN"
        exit 0
    fi
fi

if [[ -e "$DEST" ]]; then
    found=$(reported_version "$BIN")
    say "$DEST exists but does not hold a working dbx $VERSION (found: ${found:-nothing}); reinstalling"
fi

command -v cargo >/dev/null 2>&1 ||
    die "cargo not found on PATH; install Rust (https://rustup.rs) first"

# --- build dependencies (scripts/system-packages.sh says which and why) ----------------------
"$(dirname "${BASH_SOURCE[0]}")/system-packages.sh"
command -v capnp >/dev/null 2>&1 || die "capnp not found: the build needs the capnproto package"

# Link Debian's RocksDB when it is installed (README, Set-up details: 6½ minutes instead of 20); else the bundled build.
link_env=()
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || true)
if [[ -n "$multiarch" && -e "/usr/lib/$multiarch/librocksdb.so" && -e "/usr/lib/$multiarch/libsnappy.so" ]]; then
    link_env=(ROCKSDB_LIB_DIR="/usr/lib/$multiarch" SNAPPY_LIB_DIR="/usr/lib/$multiarch")
    say "linking Debian's RocksDB from /usr/lib/$multiarch"
else
    say "Debian's RocksDB is not installed (librocksdb-dev, libsnappy-dev): compiling RocksDB from source"
fi

# --- build into a temporary root, then move into place ----------------------------------------
STAGE=$(mktemp -d "$CACHE_DIR/.server-$VERSION.staging.XXXXXX")
cleanup() { rm -rf "$STAGE"; }
trap cleanup EXIT

TARGET_DIR="$CACHE_DIR/.build-$VERSION"
if ((${#link_env[@]})); then minutes="~6.5"; else minutes="~20"; fi
say "building $CRATE $VERSION, takes $minutes minutes on 2 cores (cargo output follows)"
say "target folder: $TARGET_DIR (reused if this run is interrupted and started again)"
start=$(date +%s)
if ! env "${link_env[@]}" cargo install --locked "$CRATE" --version "$VERSION" \
    --root "$STAGE/root" --target-dir "$TARGET_DIR"; then
    die "cargo install of $CRATE $VERSION failed (see above); running this script again resumes the build"
fi
say "build finished in $(( ($(date +%s) - start) / 60 )) min"

built=$(reported_version "$STAGE/root/bin/dbx")
[[ "$built" == "$VERSION" ]] ||
    die "the freshly built $STAGE/root/bin/dbx reports version '${built:-nothing}', expected $VERSION"

# Move any previous (broken or other-version) install out of the way, then rename the complete
# new root into place; both renames are on the same file system.
if [[ -e "$DEST" ]]; then
    mv "$DEST" "$STAGE/previous"
fi
mv "$STAGE/root" "$DEST"

if [[ "${EDBX_KEEP_BUILD_DIR:-}" != 1 ]]; then
    rm -rf "$TARGET_DIR"
fi

echo "eventdbx $VERSION is installed: $BIN"
