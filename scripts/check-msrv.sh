#!/usr/bin/env bash
# Checks that the workspace builds with its declared minimum Rust version (`rust-version` in
# Cargo.toml), using that exact toolchain: Debian ships rustc and cargo 1.85 as `rustc-web` and
# `cargo-web` in bookworm. Their packages (and the libraries they link) are downloaded with
# `apt-get download` and unpacked into the cache folder, not installed, so the machine's own
# toolchain is left alone. Runs `cargo check --workspace --all-targets` with it.
#
# Environment: EDBX_CACHE_DIR (default $HOME/.cache/edbx).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { echo "check-msrv: $*" >&2; }

msrv=$(awk -F'"' '/^rust-version/ { print $2; exit }' Cargo.toml)
cache="${EDBX_CACHE_DIR:-$HOME/.cache/edbx}"
root="$cache/rust-$msrv"
debian_version=$(apt-cache madison rustc-web 2>/dev/null | awk -v v="$msrv" '$3 ~ "^"v"\\." { print $3; exit }')

if [[ ! -x "$root/usr/bin/cargo" ]]; then
    [[ -n "$debian_version" ]] || {
        say "error: Debian has no rustc-web $msrv to check the declared rust-version with"
        exit 1
    }
    say "downloading Rust $msrv from Debian (rustc-web/cargo-web $debian_version) into $root"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    (
        cd "$work"
        apt-get download -q "rustc-web=$debian_version" "cargo-web=$debian_version" \
            "libstd-rust-web-dev=$debian_version" "libstd-rust-web-$msrv=$debian_version" \
            libllvm19 libhttp-parser2.9 libssh2-1 libpcre3 2>&1 | grep -v '^W: ' >&2 || true
    )
    rm -rf "$root.partial"
    for deb in "$work"/*.deb; do dpkg -x "$deb" "$root.partial"; done
    mv "$root.partial" "$root"
fi

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
export LD_LIBRARY_PATH="$root/usr/lib/$multiarch:$root/usr/lib/llvm-19/lib:$root/lib/$multiarch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$root/usr/bin:$PATH"
export CARGO_TARGET_DIR="$cache/target-msrv"
say "$(rustc --version), $(cargo --version)"
exec cargo check --workspace --all-targets --quiet
