"""Whether another ``eventdbx`` package is installed beside this one.

The official client (distribution ``eventdbx``) and this package (distribution ``edbx``) both
install the import package ``eventdbx``; with both present, one overwrote the other's files and
which one ``import eventdbx`` runs depends on the order they were installed in. At import this
module warns, saying which distribution owns the files that were imported and how to keep one.
(When the official client was installed last, its own ``__init__`` runs, which does not call
this: it cannot warn then, but ``import eventdbx.aio`` and the other additions fail.)
"""

from __future__ import annotations

import base64
import hashlib
import pathlib
import warnings
from importlib import metadata
from typing import List, Optional

#: Our distribution, and the official one that provides the same import package.
THIS = "edbx"
OFFICIAL = "eventdbx"


def _owner(name: str, imported: pathlib.Path) -> Optional[bool]:
    """Whether distribution ``name`` installed the imported ``__init__.py`` (``None`` when it
    is not installed). Both distributions list the same path, so the hash each recorded for it
    says whose copy is on disk."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name != "__init__.py" or file.parent.name != "eventdbx":
            continue
        try:
            if pathlib.Path(str(dist.locate_file(file))).resolve() != imported:
                continue
            if file.hash is None or file.hash.mode != "sha256":
                return True
            digest = hashlib.sha256(imported.read_bytes()).digest()
            return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == file.hash.value
        except OSError:
            continue
    return False


def shadowing_message() -> Optional[str]:
    """The warning to give when both distributions are installed, else ``None``."""
    imported = pathlib.Path(__file__).resolve().parent / "__init__.py"
    owners = {name: _owner(name, imported) for name in (THIS, OFFICIAL)}
    if owners[THIS] is None or owners[OFFICIAL] is None:
        return None
    found: List[str] = [name for name, owns in owners.items() if owns]
    if found == [THIS]:
        running = f"{THIS}'s files are the ones imported, over the official client's"
    elif found == [OFFICIAL]:
        running = f"the official client's ({OFFICIAL!r}) __init__ was imported, not {THIS}'s"
    else:
        running = "their files are mixed"
    return (
        f"Both the {THIS!r} and the {OFFICIAL!r} distributions are installed, and both provide "
        f"the 'eventdbx' package: {running} (from {imported.parent}). Keep only one: "
        f"`pip uninstall -y {OFFICIAL} {THIS} && pip install {THIS}` for this client, or "
        f"`pip uninstall -y {THIS}` for the official one."
    )


def warn_if_shadowed() -> None:
    message = shadowing_message()
    if message is not None:
        warnings.warn(message, RuntimeWarning, stacklevel=3)
