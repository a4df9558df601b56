#!/usr/bin/env python3
"""Fails when a link or a section reference in the repository points at nothing.

Checks, in every tracked Markdown file:
  * relative links `[text](path)` and `[text](path#anchor)`: the file or folder exists, and the
    anchor is a heading of that Markdown file (GitHub's slugs);
  * same-file links `[text](#anchor)`.
And in every tracked Markdown, Rust, Python and shell file:
  * `PROTOCOL.md §N` / `PROTOCOL.md §N.M` (also with `§N` on the next line): docs/PROTOCOL.md has a
    heading numbered `N.` (or `N.M`).
External links (http, mailto) are not fetched: CI must not depend on the network.
"""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SECTION_REF = re.compile(r"PROTOCOL\.md(?:[\s/!*]|//!|#)*\s*§\s*([0-9]+(?:\.[0-9]+)*)")
FENCE = re.compile(r"^\s*(```|~~~)")


def tracked(*patterns):
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", *patterns],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return [ROOT / p for p in out.split("\0") if p and (ROOT / p).is_file()]


def slug(heading):
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(path):
    anchors, seen, in_fence = set(), {}, False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        if in_fence:
            continue
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            anchors.add(base if n == 0 else f"{base}-{n}")
            seen[base] = n + 1
    return anchors


def protocol_sections():
    sections = set()
    for line in (ROOT / "docs/PROTOCOL.md").read_text().splitlines():
        m = re.match(r"^#{2,6}\s+([0-9]+(?:\.[0-9]+)*)\.?\s", line)
        if m:
            sections.add(m.group(1))
    return sections


def main():
    problems = []
    for md in tracked("*.md"):
        in_fence = False
        for number, line in enumerate(md.read_text().splitlines(), 1):
            if FENCE.match(line):
                in_fence = not in_fence
            if in_fence:
                continue
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue  # http:, https:, mailto:
                path_part, _, anchor = target.partition("#")
                dest = (md.parent / path_part).resolve() if path_part else md
                where = f"{md.relative_to(ROOT)}:{number}"
                if not dest.exists():
                    problems.append(f"{where}: link to {target}: no such file")
                elif anchor and dest.suffix == ".md" and anchor not in headings(dest):
                    problems.append(f"{where}: link to {target}: no such heading in {dest.name}")
    sections = protocol_sections()
    for source in tracked("*.md", "*.rs", "*.py", "*.pyi", "*.sh"):
        text = source.read_text(errors="replace")
        for m in SECTION_REF.finditer(text):
            if m.group(1) not in sections:
                number = text.count("\n", 0, m.start()) + 1
                problems.append(
                    f"{source.relative_to(ROOT)}:{number}: PROTOCOL.md §{m.group(1)}: docs/PROTOCOL.md has no such section"
                )
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"every internal link and PROTOCOL.md § reference resolves ({', '.join(sorted(sections))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
