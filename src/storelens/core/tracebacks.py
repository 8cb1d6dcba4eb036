"""A traceback for the server's log without the exceptions' own words.

An exception's message often quotes the value that broke it: ``KeyError('ada@…')``,
``invalid literal for int() with base 10: '0612…'``. The server's log goes to stderr,
which no erasure reaches unless listed in ``privacy_log_paths``, so unless
``log_exception_messages`` is on, the 500 handler and the log filter write where a
fault is (each exception's type and frames, the chain of causes) and how long each
message was, not what it said. The error id in the line and in the response leads to
the request; the frames lead to the code.
"""

from __future__ import annotations

import traceback

__all__ = ["HIDDEN", "traceback_without_messages"]

HIDDEN = "message hidden: it may quote personal data"
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
_GROUP_DEPTH = 10  # nested groups shown this deep, as Python's own traceback limits them


def _chain(exc: BaseException) -> list[tuple[BaseException, str]]:
    """``exc`` and the exceptions behind it, oldest first, each with the line printed
    before it that says how it followed the one printed before (as Python does)."""
    out: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        older, link = None, ""
        if current.__cause__ is not None:
            older, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            older, link = current.__context__, _CONTEXT
        if older is not None and id(older) in seen:  # a loop: the older is printed already
            older, link = None, ""
        out.append((current, link))
        current = older
    return out[::-1]


def _length(exc: BaseException) -> str:
    try:
        return f"{len(str(exc))} characters"
    except Exception:  # a __str__ that fails: say so rather than fail the log line
        return "unreadable"


def traceback_without_messages(exc: BaseException, _depth: int = 0) -> str:
    """The traceback Python would print for ``exc``, each message replaced by its
    length (frames, source lines and exception types kept); an exception group's
    members follow it, indented, each the same way."""
    parts: list[str] = []
    for error, link in _chain(exc):
        parts.append(link)
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(error.__traceback__))
        kind = type(error)
        name = kind.__qualname__
        if kind.__module__ != "builtins":
            name = f"{kind.__module__}.{name}"
        parts.append(f"{name}: <{HIDDEN}; {_length(error)}>\n")
        if isinstance(error, BaseExceptionGroup) and _depth < _GROUP_DEPTH:
            for n, member in enumerate(error.exceptions, start=1):
                inner = traceback_without_messages(member, _depth + 1)
                parts.append(f"  +---- member {n} ----\n")
                parts.extend(f"  | {line}\n" for line in inner.splitlines())
    return "".join(parts).rstrip("\n")
