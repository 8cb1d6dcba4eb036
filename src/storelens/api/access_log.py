"""Keep credentials and personal values out of the server's logs.

uvicorn writes each request's full path, query string included, to its access log,
and each WebSocket handshake's to its error log. WebSocket clients may carry a token,
an API key or a ticket in the query; a customer search carries a name or an e-mail
(``?q=``), an event query a customer (``?subject=``), a segment page the customer id it
continues after (``?cursor=``), an audit query the customer asked about
(``?resource_id=``), an erasure its free-text ``?reason=``, and the customer routes the
customer's id in the path, which an erasure must not leave behind in the very log
line that records it. Both loggers' handlers get a filter that replaces those values
with ``***`` before anything is written.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from storelens.core.tracebacks import traceback_without_messages

__all__ = ["RedactCredentials", "redact", "redacting_log_config"]

_SECRET_NAMES = (
    "token", "access_token", "key", "api_key", "apikey", "ticket", "password",
    "q", "subject", "cursor", "resource_id", "reason",
)  # fmt: skip


def _spelled(name: str) -> str:
    """``name`` as a pattern that also matches any of its letters percent-encoded: the
    server decodes ``?%71=ada`` to ``q=ada``, so a log kept it whole (a review)."""
    return "".join(f"(?:{re.escape(ch)}|%{ord(ch):02x}|%{ord(ch.upper()):02x})" for ch in name)


_SECRET_PARAMS = re.compile(
    r"(?P<name>(?:^|[?&;\s])(?:" + "|".join(_spelled(n) for n in _SECRET_NAMES) + r")=)"
    r"[^&;\s\"']*",
    re.IGNORECASE,
)
_DETAIL = re.compile(r"\s*DETAIL:")
_CUSTOMER_PATH = re.compile(r"(?P<route>/v1/customers/)(?!import\b)[^/?\s\"']+")
_KEYS = re.compile(r"slk_[0-9a-f]{8}_[A-Za-z0-9_-]+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+")


def redact(text: str) -> str:
    """``text`` with credential and search query values, customer ids in paths, API
    keys and JWTs replaced by ``***``."""
    text = _SECRET_PARAMS.sub(r"\g<name>***", text)
    text = _CUSTOMER_PATH.sub(r"\g<route>***", text)
    return _JWT.sub("***", _KEYS.sub("***", text))


class RedactCredentials(logging.Filter):
    """``show_messages``: tracebacks keep their exceptions' messages (a developer's
    machine); by default each message is replaced by its length (core/tracebacks.py),
    since a message can quote the value that failed."""

    def __init__(self, show_messages: bool = False) -> None:
        super().__init__()
        self._show_messages = show_messages

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.exc_info and not record.exc_text:
            # The traceback's last line is the exception's text, and PostgreSQL's DETAIL
            # line in it quotes the row ("Key (email)=(ada@…) already exists"): a
            # failing projection wrote it to the server's log (a review). Any message
            # can quote a value, and Starlette re-raises a 500's exception for uvicorn
            # to log whole after our handler logged it without messages (a review).
            error = record.exc_info[1]
            if self._show_messages or error is None:
                text = logging.Formatter().formatException(record.exc_info)
            else:
                text = traceback_without_messages(error)
            kept = [line for line in text.splitlines() if not _DETAIL.match(line)]
            record.exc_text = redact("\n".join(kept))
        return True


def redacting_log_config(show_messages: bool = False) -> dict[str, Any]:
    """uvicorn's default logging config with :class:`RedactCredentials` on every handler,
    and storelens's own warnings and errors through the same handler: they went to
    Python's last-resort handler, past every filter, tracebacks and all."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_credentials"] = {
        "()": f"{__name__}.RedactCredentials",
        "show_messages": show_messages,
    }
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_credentials")
    config["loggers"]["storelens"] = {
        "handlers": ["default"],
        "level": "WARNING",  # what the last-resort handler showed: no new noise
        "propagate": False,
    }
    return config
