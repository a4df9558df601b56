#!/usr/bin/env python3
"""Fails when a crate declares a dependency that none of its sources name.

Cheap stand-in for cargo-machete (no install, no build): for every workspace member and the fuzz
crate, each name under [dependencies], [dev-dependencies] and [build-dependencies] must appear as
its Rust identifier (the key, `-` becoming `_`) somewhere in that crate's `.rs`
files; A dependency
that is needed without being named in Rust (a feature switch, a linker-only crate) is listed in
that crate's Cargo.toml under [package.metadata.edbx] `used-without-import = ["name"]`.
"""
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def crates():
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]
    for member in workspace["members"]:
        yield ROOT / member
    for extra in workspace.get("exclude", []):
        if (ROOT / extra / "Cargo.toml").exists():
            yield ROOT / extra


def rust_sources(crate):
    return "\n".join(
        p.read_text(errors="replace")
        for p in crate.rglob("*.rs")
        if "target" not in p.relative_to(crate).parts
    )


def main():
    problems = []
    for crate in crates():
        manifest = tomllib.loads((crate / "Cargo.toml").read_text())
        allowed = set(
            manifest.get("package", {}).get("metadata", {}).get("edbx", {}).get("used-without-import", [])
        )
        sources = rust_sources(crate)
        for table in ("dependencies", "dev-dependencies", "build-dependencies"):
            for name, spec in manifest.get(table, {}).items():
                if name in allowed:
                    continue
                # Rust code names a dependency by its key, even when `package =` renames it.
                ident = name.replace("-", "_")
                if not re.search(rf"\b{re.escape(ident)}\b", sources):
                    problems.append(f"{crate.relative_to(ROOT)}: [{table}] {name} is never named in its sources")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print("remove them, or list them under [package.metadata.edbx] used-without-import", file=sys.stderr)
        return 1
    print("every declared dependency is named in its crate's sources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
