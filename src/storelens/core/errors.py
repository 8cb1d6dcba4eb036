"""Errors storelens raises on purpose, and the one shape bad input is reported in.

::

    StorelensError
    ├── ConfigError          settings or a layout file that cannot be used
    │   └── LayoutError      a store layout, naming the bad key (also InvalidInput)
    ├── InvalidInput         the caller's input is wrong: 4xx, with field-level errors
    │   ├── MalformedInput   bytes that are not the declared format at all (400)
    │   ├── BadBody          a request body unusable as a whole (ingest.batch)
    │   │   ├── InvalidJSON      not JSON at all (400; also a MalformedInput)
    │   │   ├── NotAnArray       JSON, but not an array of events
    │   │   └── BatchTooLarge    more items than STORELENS_MAX_BATCH (413)
    │   ├── UnreadableRecords an import upload that cannot be read as rows
    │   ├── MappingError     a source field mapping that cannot be used (cdp.sources)
    │   └── InvalidEvent     an event refused by the edge outbox (ingest.outbox)
    ├── NotFound             a resource id that does not exist
    ├── Conflict             a resource that already exists
    ├── AuthError            bad credentials (401)
    │   └── Forbidden        good credentials, wrong role (403)
    └── MissingExtra         an optional backend whose extra is not installed

Only :class:`InvalidInput` (and the resource errors) reach a client as 4xx: any
other exception is a server fault, reported as a 500 with an error id, because
telling a client "your input was wrong" about our own bug sends them the wrong way.
``InvalidInput`` stays a ``ValueError`` so that callers which caught the old
``ValueError`` subclasses keep working.

Validation failures of single events are data, not exceptions: they come back as
:class:`FieldError` lists so that one bad event never sinks its batch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

__all__ = [
    "ID_CONFLICT",
    "ID_CONFLICT_ERROR",
    "AuthError",
    "ConfigError",
    "Conflict",
    "FieldError",
    "Forbidden",
    "InvalidInput",
    "LayoutError",
    "Loc",
    "MalformedInput",
    "MissingExtra",
    "NotFound",
    "StorelensError",
    "UnreadableRecords",
    "field_errors",
    "format_loc",
    "parse_loc",
]

Loc = tuple[str | int, ...]


class StorelensError(Exception):
    """Base of every error storelens raises deliberately."""


class ConfigError(StorelensError):
    pass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field.

    ``loc`` is the dotted path people read (``payload.lines.0.qty``) and item-level
    reports carry; ``parts`` is the same path as a list, the shape FastAPI documents
    for 422 bodies. Built from a string alone, ``parts`` is parsed from it.
    """

    loc: str
    msg: str
    type: str
    parts: Loc = ()

    @classmethod
    def at(cls, parts: Sequence[str | int], msg: str, type: str) -> FieldError:
        return cls(format_loc(parts), msg, type, tuple(parts))

    @property
    def path(self) -> Loc:
        return self.parts or parse_loc(self.loc)

    def as_dict(self) -> dict[str, str]:
        """Item-level report entry (ingest and import results): ``loc`` dotted."""
        return {"loc": self.loc, "msg": self.msg, "type": self.type}

    def as_detail(self, prefix: Sequence[str | int] = ()) -> dict[str, Any]:
        """Entry of a 4xx ``detail`` list: ``loc`` a list, as ``HTTPValidationError``."""
        return {"loc": [*prefix, *self.path], "msg": self.msg, "type": self.type}


ID_CONFLICT = "id_conflict"
"""Error type of an event whose id already names a different event in the log. It was
not stored, and sending it again unchanged never will store it: a device tells this
type apart from the others, which no new id can fix."""

ID_CONFLICT_ERROR = FieldError(
    "id",
    "this id already names a different event in the log; this event was not stored: "
    "send it again under a new id",
    ID_CONFLICT,
)


class InvalidInput(StorelensError, ValueError):
    """The caller's input is wrong; ``errors`` say which field and why.

    Without field errors, the whole input is at fault: ``loc`` is :attr:`where`.
    """

    where: Loc = ("body",)
    error_type = "value_error"

    def __init__(self, message: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(message)
        self.errors: list[FieldError] = list(errors) or [
            FieldError.at(self.where, message, self.error_type)
        ]


class MalformedInput(InvalidInput):
    """Bytes that are not the declared format at all: not UTF-8, not JSON."""

    error_type = "body_malformed"


class UnreadableRecords(InvalidInput):
    """An import upload (CSV or JSON records) that cannot be read as rows."""

    error_type = "records_unreadable"


class LayoutError(ConfigError, InvalidInput):
    """A layout that cannot be used; from a file it is configuration, from the API input."""

    def __init__(self, path: str, key: str, message: str) -> None:
        self.path, self.key, self.message = path, key, message
        InvalidInput.__init__(
            self, f"{path}: {key}: {message}", [FieldError(key, message, "layout")]
        )


class NotFound(StorelensError):
    pass


class Conflict(StorelensError):
    pass


class AuthError(StorelensError):
    pass


class Forbidden(AuthError):
    pass


class MissingExtra(StorelensError, ImportError):
    """An optional backend was asked for but its extra is not installed.

    ``feature`` is what the caller wanted (a backend, or the missing package's name).
    """

    def __init__(self, feature: str, extra: str) -> None:
        self.feature, self.extra = feature, extra
        super().__init__(f"{feature} needs the '{extra}' extra: pip install 'storelens[{extra}]'")


_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_loc(loc: str) -> Loc:
    """``zones[1].polygon`` or ``payload.lines.0.qty`` as parts; digits become indexes."""
    parts: list[str | int] = []
    for name, index in _PART.findall(loc):
        if index:
            parts.append(int(index))
        else:
            parts.append(int(name) if name.isdigit() else name)
    return tuple(parts)


def format_loc(loc: Sequence[Any], drop: Iterable[str] = ()) -> str:
    """Dotted field path; ``drop`` removes union tags pydantic inserts into locations."""
    skip = set(drop)
    return ".".join(str(part) for part in loc if not (isinstance(part, str) and part in skip))


def field_errors(exc: ValidationError, drop: Iterable[str] = ()) -> list[FieldError]:
    skip = set(drop)
    out = []
    for e in exc.errors(include_url=False):
        parts = tuple(p for p in e["loc"] if not (isinstance(p, str) and p in skip))
        out.append(FieldError(format_loc(parts) or "(event)", e["msg"], e["type"], parts))
    return out
