"""Output paths the command line checks before the long work it writes them after.

A command that loads a file for minutes, or scores a run, and only then finds that
``--out`` lies under a regular file used to end in a traceback with the work half done.
:func:`unwritable` says why a path cannot be written, so each command can refuse it
first, in its own error line. The write itself must still catch ``OSError`` (a full
disk, a folder removed meanwhile): :func:`write_error` words that one. In ``core``
because every command group uses it, ``vision`` included (it may not import storage).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["unwritable", "write_error"]


def _nearest_existing(path: Path) -> Path:
    for parent in path.absolute().parents:
        if parent.exists():
            return parent
    return Path("/")  # pragma: no cover - the root always exists


def unwritable(option: str, path: Path, *, folder: bool = False) -> str | None:
    """The error line for ``path`` given as ``option`` when it cannot be written, or None
    when it can: as a file, or with ``folder`` as a folder files go into (created,
    parents too, when missing)."""
    why = _why_unwritable(path, folder)
    return None if why is None else f"{option} {path}: {why}"


def _why_unwritable(path: Path, folder: bool) -> str | None:
    if path.exists():
        if folder != path.is_dir():
            return "is a folder" if path.is_dir() else "is a file, not a folder"
        return None if os.access(path, os.W_OK) else "is not writable"
    parent = path.absolute().parent
    if not folder and not parent.exists():
        base = _nearest_existing(path)
        if not base.is_dir():
            return f"{base} is a file, not a folder"
        return f"folder {parent} does not exist"
    base = parent if parent.exists() else _nearest_existing(path)
    if not base.is_dir():
        return f"{base} is a file, not a folder"
    return None if os.access(base, os.W_OK | os.X_OK) else f"folder {base} is not writable"


def write_error(option: str, path: Path, exc: OSError) -> str:
    """The one line for an ``OSError`` met while writing ``path`` given as ``option``."""
    where = exc.filename if exc.filename is not None else path
    return f"{option} {path}: cannot write {where}: {exc.strerror or exc}"
