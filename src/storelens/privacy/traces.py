"""Finding and redacting a person's identifiers in free text, JSON documents and table rows.

Both the erasers' sweeps and the verification scan use this, so what erasure cleans
and what the scan counts as a trace are the same thing. Matching is case-insensitive
and whole-token: ``L-1`` is found in ``{"customer_id": "L-1"}`` but not in ``L-10``.
A name counts only where first and last name occur together (in one value or one
row): another customer who is also called Ada is not this person.

SQL narrows the rows (``LIKE`` on every text and JSON column), Python confirms them
with the token patterns: ``LIKE`` alone cannot express a token boundary on both
SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Connection,
    String,
    Table,
    Text,
    and_,
    cast,
    func,
    or_,
    select,
)
from sqlalchemy.types import TypeEngine

from storelens.core.tabular import shape
from storelens.privacy.registry import Subject

__all__ = [
    "Matcher",
    "by_name_alone",
    "event_customers",
    "mentioning_rows",
    "record_key_of",
    "row_owner",
    "text_columns",
]

_ROW_CAP = 100_000  # a scan reports counts; this many candidate rows per table is plenty


def _token(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w]){re.escape(value)}(?![\w])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Pattern:
    kind: str
    value: str
    regex: re.Pattern[str]


class Matcher:
    """The subject's identifiers as token patterns: which kinds a text holds, and redaction."""

    def __init__(self, subject: Subject) -> None:
        seen: set[str] = set()
        self.singles: list[_Pattern] = []
        # Longest first, so ``crm:c-1`` is redacted whole before ``c-1`` could be.
        for kind, value in sorted(subject.identifiers(), key=lambda kv: -len(kv[1])):
            if value and value.lower() not in seen:
                seen.add(value.lower())
                self.singles.append(_Pattern(kind, value, _token(value)))
        self.names = [
            (_token(first), _token(last), first, last)
            for first, last in subject.names
            if first and last
        ]

    @property
    def needles(self) -> list[str]:
        """Lower-case substrings a candidate row must contain at least one of."""
        out = [p.value.lower() for p in self.singles]
        out += [last.lower() for _, _, _, last in self.names]
        return out

    def kinds_in(self, text: str) -> set[str]:
        kinds = {p.kind for p in self.singles if p.regex.search(text)}
        if any(f.search(text) and la.search(text) for f, la, _, _ in self.names):
            kinds.add("name")
        return kinds

    def redact_text(self, text: str, pseudonym: str, names: bool | None = None) -> str:
        """``text`` with every identifier replaced; names only where both parts occur
        (or where ``names`` says the surrounding row holds both)."""
        for p in self.singles:
            text = p.regex.sub(pseudonym, text)
        for first, last, _, _ in self.names:
            if names or (names is None and first.search(text) and last.search(text)):
                text = last.sub(pseudonym, first.sub(pseudonym, text))
        return text

    def redact(self, value: Any, pseudonym: str, names: bool | None = None) -> Any:
        """A JSON value with identifiers replaced in every string, keys included."""
        if names is None:
            names = "name" in self.kinds_in(_flat(value))
        if isinstance(value, str):
            return self.redact_text(value, pseudonym, names)
        if isinstance(value, dict):
            return {
                self.redact_text(str(k), pseudonym, names): self.redact(v, pseudonym, names)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.redact(v, pseudonym, names) for v in value]
        return value

    def own_view_text(self, text: str) -> str:
        """``text`` as the person may see it: their own identifiers as they are, every
        other character by its shape (letters ``x``, digits ``9``, punctuation kept).

        A dead letter, a log line or another customer's event that mentions the person
        holds other people's e-mails, names and ids beside theirs; an access export
        gave them whole (a review). The shape keeps what the person needs to see where
        they were mentioned, without the rest.
        """
        spans = [m.span() for p in self.singles for m in p.regex.finditer(text)]
        for first, last, _, _ in self.names:
            if first.search(text) and last.search(text):
                spans += [m.span() for r in (first, last) for m in r.finditer(text)]
        out: list[str] = []
        at = 0
        for start, end in sorted(spans):
            if end <= at:
                continue
            out.append(shape(text[at:start]) if start > at else "")
            out.append(text[max(start, at) : end])
            at = end
        out.append(shape(text[at:]))
        return "".join(out)

    def own_view(self, value: Any) -> Any:
        """:meth:`own_view_text` through a JSON value (keys, the document's own
        vocabulary, are kept; numbers too)."""
        if isinstance(value, str):
            return self.own_view_text(value)
        if isinstance(value, dict):
            return {k: self.own_view(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.own_view(v) for v in value]
        return value


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k} {_flat(v)}" for k, v in value.items())
    if isinstance(value, list):
        return " ".join(_flat(v) for v in value)
    return "" if value is None else str(value)


def _is_text(type_: TypeEngine[Any]) -> bool:
    return isinstance(type_, String | JSON) or type(type_).__name__.upper() in {"JSONB", "JSON"}


def text_columns(table: Table) -> list[Column[Any]]:
    """Columns that can hold an identifier: strings, text and JSON documents."""
    return [c for c in table.columns if _is_text(c.type)]


def _escaped(needle: str) -> str:
    return needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _as_text(column: Column[Any]) -> ColumnElement[Any]:
    return func.lower(column if isinstance(column.type, String) else cast(column, Text))


def mentioning_rows(
    conn: Connection,
    table: Table,
    matcher: Matcher,
    columns: Sequence[Column[Any]] | None = None,
    where: ColumnElement[bool] | None = None,
) -> list[tuple[dict[str, Any], dict[str, set[str]]]]:
    """Rows of ``table`` whose text columns mention the subject, with the identifier
    kinds found per column (a name is reported on the row's ``*`` pseudo-column when
    its parts sit in different columns, as ``first_name`` and ``last_name`` do)."""
    columns = list(columns if columns is not None else text_columns(table))
    needles = matcher.needles
    if not columns or not needles:
        return []
    texts = [_as_text(c) for c in columns]
    clauses = [t.like(f"%{_escaped(n)}%", escape="\\") for t in texts for n in needles]
    condition = or_(*clauses)
    if where is not None:
        condition = and_(where, condition)
    found = []
    for row in conn.execute(select(table).where(condition).limit(_ROW_CAP)):
        data = dict(row._mapping)
        kinds: dict[str, set[str]] = {}
        for column in columns:
            text = _text_of(data.get(column.name))
            hit = matcher.kinds_in(text) if text else set()
            if hit:
                kinds[column.name] = hit
        whole = matcher.kinds_in(" ".join(_text_of(data.get(c.name)) for c in columns))
        if "name" in whole and not any("name" in k for k in kinds.values()):
            kinds["*"] = {"name"}
        if kinds:
            found.append((data, kinds))
    return found


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return _flat(value)
    return str(value)


def by_name_alone(kinds: dict[str, set[str]]) -> bool:
    """Whether a row matched only by the person's first and last name: no id, e-mail or
    phone of theirs. Such a row may be another person's, with the same name."""
    return bool(kinds) and set().union(*kinds.values()) == {"name"}


def record_key_of(payload: Any) -> str | None:
    """The ``source:record`` key a ``customer.upserted`` payload names, or None."""
    p = payload if isinstance(payload, dict) else {}
    system, record = p.get("source_system"), p.get("source_record_id")
    return f"{system}:{record}" if isinstance(system, str) and isinstance(record, str) else None


def event_customers(subject: str | None, type_: str, payload: Any) -> set[str]:
    """The ids of the people an event is about, as it carries them: its ``subject`` and
    a paid order's ``customer_id``; a customer record by its ``source:record`` key
    alone. What a write or a read of the event names in the audit trail
    (``audit.record``'s ``customers``, resolved to current customer ids).

    A record's loyalty id and subject are left out: the row is resolved when written,
    and a card number replaced on the record or reissued to someone else then named the
    wrong person (Bob, given Ada's old card, found reads of her old record in his own
    access export). The key belongs to whoever holds the record, always. A mere mention
    in free text (a search for an e-mail) is not resolved here, as that would mean
    matching every customer's identifiers per read."""
    p = payload if isinstance(payload, dict) else {}
    if type_ == "customer.upserted":
        key = record_key_of(p)
        return set() if key is None else {key}
    found = {subject} if subject else set()
    if isinstance(p.get("customer_id"), str):
        found.add(p["customer_id"])
    return found


def row_owner(row: dict[str, Any]) -> str | None:
    """The customer a row belongs to, where it says: its ``customer_id``, or for an
    event the first of :func:`event_customers` (a customer record's ``source:record``
    key, an event's subject). Events have no ``customer_id`` column, so a web event of
    another customer that named the person only by name read as nobody's (a review)."""
    owner = row.get("customer_id")
    if isinstance(owner, str):
        return owner
    if isinstance(row.get("type"), str):
        found = sorted(event_customers(row.get("subject"), row["type"], row.get("payload")))
        return found[0] if found else None
    return None
