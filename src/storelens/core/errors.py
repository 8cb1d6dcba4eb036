"""Errors storelens raises on purpose, and the one shape bad input is reported in.

::

    StorelensError
    ├── ConfigError          settings or a layout file that cannot be used
    │   └── LayoutError      a store layout file, naming the bad key
    ├── NotFound             a resource id that does not exist
    ├── Conflict             a resource that already exists
    ├── AuthError            bad credentials (401)
    │   └── Forbidden        good credentials, wrong role (403)
    └── MissingExtra         an optional backend whose extra is not installed

Validation failures of events are data, not exceptions: they come back as
:class:`FieldError` lists so that one bad event never sinks its batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

__all__ = [
    "AuthError",
    "ConfigError",
    "Conflict",
    "FieldError",
    "Forbidden",
    "LayoutError",
    "MissingExtra",
    "NotFound",
    "StorelensError",
    "field_errors",
    "format_loc",
]


class StorelensError(Exception):
    """Base of every error storelens raises deliberately."""


class ConfigError(StorelensError):
    pass


class LayoutError(ConfigError):
    def __init__(self, path: str, key: str, message: str) -> None:
        self.path, self.key, self.message = path, key, message
        super().__init__(f"{path}: {key}: {message}")


class NotFound(StorelensError):
    pass


class Conflict(StorelensError):
    pass


class AuthError(StorelensError):
    pass


class Forbidden(AuthError):
    pass


class MissingExtra(StorelensError, ImportError):
    """An optional backend was asked for but its extra is not installed."""

    def __init__(self, feature: str, extra: str) -> None:
        self.extra = extra
        super().__init__(f"{feature} needs the '{extra}' extra: pip install 'storelens[{extra}]'")


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field: ``loc`` is a dotted path such as ``payload.lines.0.qty``."""

    loc: str
    msg: str
    type: str

    def as_dict(self) -> dict[str, str]:
        return {"loc": self.loc, "msg": self.msg, "type": self.type}


def format_loc(loc: Sequence[Any], drop: Iterable[str] = ()) -> str:
    """Dotted field path; ``drop`` removes union tags pydantic inserts into locations."""
    skip = set(drop)
    return ".".join(str(part) for part in loc if not (isinstance(part, str) and part in skip))


def field_errors(exc: ValidationError, drop: Iterable[str] = ()) -> list[FieldError]:
    skip = tuple(drop)
    return [
        FieldError(loc=format_loc(e["loc"], skip) or "(event)", msg=e["msg"], type=e["type"])
        for e in exc.errors(include_url=False)
    ]
