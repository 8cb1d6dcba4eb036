"""Validate a batch of raw events and append the good ones; never let one bad item sink it.

Every entry point (HTTP, files, MQTT) hands raw JSON-like items here and gets back
accepted / duplicate / rejected counts with a field-level reason per rejected item.
An event whose id already names a different event is rejected too (error type
``id_conflict`` on ``id``, counted in ``conflicts``): it was not stored, and only a
new id will store it.
Storing entry points also check heat grids against their store's floor plan
(:mod:`storelens.ingest.floor_plans`); the MQTT writer, which validates here and
stores itself, adds that check to its own permit.

Every entry point can pass ``then``, work done in the append's own transaction with
the batch's report: the write's audit row (:mod:`storelens.ingest.write_audit`), so a
batch is never committed without its row, nor a row without its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import Connection

from storelens.core.errors import (
    ID_CONFLICT_ERROR,
    FieldError,
    InvalidInput,
    MalformedInput,
    field_errors,
)
from storelens.core.events import (
    EVENT_TYPES,
    Event,
    EventTimeWindow,
    event_adapter,
    event_batch_adapter,
)
from storelens.ingest.floor_plans import and_floor_plans
from storelens.storage.eventlog import AppendResult, EventLog

__all__ = [
    "BadBody",
    "BatchTooLarge",
    "InTransaction",
    "IngestReport",
    "InvalidJSON",
    "NotAnArray",
    "Permit",
    "RejectedItem",
    "ingest_items",
    "ingest_json",
    "ingest_numbered",
    "report_append",
    "validate_indexed",
    "validate_items",
]


@dataclass(frozen=True, slots=True)
class RejectedItem:
    index: int
    errors: list[FieldError]
    id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "errors": [e.as_dict() for e in self.errors]}


@dataclass(slots=True)
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[RejectedItem] = field(default_factory=list)
    conflicts: int = 0
    """How many of ``rejected`` reuse an id that names a different event. They stay
    counted as rejected, so accepted + duplicates + rejected is still the batch size
    for clients that predate conflicts."""
    stored: list[Event] = field(default_factory=list)
    """The events this call appended (not the duplicates): what the write's audit row
    names people from. Not part of the answer; :func:`ingest_numbered` hands each
    batch's report to ``then`` and keeps none, so a file's events are not all held."""

    def add(self, part: IngestReport, index: Callable[[int], int]) -> None:
        """Count ``part``, one batch of a larger load, into this report; ``index`` maps a
        rejection's place in the batch to its place in the load (a line, an offset)."""
        self.accepted += part.accepted
        self.duplicates += part.duplicates
        self.conflicts += part.conflicts
        self.rejected.extend(replace(r, index=index(r.index)) for r in part.rejected)

    def as_dict(self, max_errors: int = 1000) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "conflicts": self.conflicts,
            "errors": [r.as_dict() for r in self.rejected[:max_errors]],
        }


def report_append(
    result: AppendResult,
    appended: Sequence[Event],
    indices: Sequence[int],
    rejected: Sequence[RejectedItem] = (),
) -> IngestReport:
    """Counts for one append of ``appended``; ``indices[p]`` is the caller's index of batch
    position ``p``, so a conflict is reported where the caller sent it."""
    conflicts = [
        RejectedItem(indices[c.position], [ID_CONFLICT_ERROR], str(c.id)) for c in result.conflicts
    ]
    merged = sorted([*rejected, *conflicts], key=lambda r: r.index) if conflicts else list(rejected)
    new = set(result.accepted)
    stored = []
    for event in appended:  # the log stored an id's first occurrence in the batch
        if event.id in new:
            new.discard(event.id)
            stored.append(event)
    return IngestReport(
        len(result.accepted), len(result.duplicates), merged, len(conflicts), stored
    )


InTransaction = Callable[[Connection, IngestReport], None]
"""Runs in the append's transaction, after the append, with the batch's report."""


def _append(
    log: EventLog,
    events: Sequence[Event],
    indices: Sequence[int],
    rejected: Sequence[RejectedItem] = (),
    *,
    sent_by: str | None,
    then: InTransaction | None,
) -> IngestReport:
    """Append and report; ``then`` shares the transaction, and runs for a batch with
    nothing to append too (a batch of rejections still leaves its audit row)."""
    if then is None:
        return report_append(log.append(events, sent_by), events, indices, rejected)
    with log.engine.begin() as conn:
        result = log.append_in(conn, events, sent_by) if events else AppendResult()
        report = report_append(result, events, indices, rejected)
        then(conn, report)
    return report


_TAGS = tuple(EVENT_TYPES)


def _item_id(item: Any) -> str | None:
    if isinstance(item, dict):
        value = item.get("id")
        return str(value) if value is not None else None
    return None


Permit = Callable[[Event], FieldError | None]
"""Says why the caller may not send an event (None: it may); see ``api.permissions``."""


def _refusal(event: Event, store_scope: str | None, permit: Permit | None) -> FieldError | None:
    if store_scope is not None and event.store_id != store_scope:
        return FieldError(
            "store_id", f"this key may only send events for store {store_scope!r}", "store_scope"
        )
    return permit(event) if permit is not None else None


def _window(window: EventTimeWindow | None) -> dict[str, Any]:
    """Validation context bounding event times; without one, the defaults from now."""
    return (window or EventTimeWindow(now=datetime.now(UTC))).context()


def validate_items(
    items: Sequence[Any],
    *,
    store_scope: str | None = None,
    permit: Permit | None = None,
    window: EventTimeWindow | None = None,
) -> tuple[list[Event], list[RejectedItem]]:
    """Split raw items into valid events and rejections (with their index in ``items``)."""
    valid, rejected = validate_indexed(items, store_scope=store_scope, permit=permit, window=window)
    return [e for _, e in valid], rejected


def validate_indexed(
    items: Sequence[Any],
    *,
    store_scope: str | None = None,
    permit: Permit | None = None,
    window: EventTimeWindow | None = None,
) -> tuple[list[tuple[int, Event]], list[RejectedItem]]:
    """:func:`validate_items`, each valid event with its index in ``items``.

    The whole batch is validated in one call first (the common, all-good case);
    only when that fails are the items validated one by one to isolate the bad ones.
    ``store_scope`` limits a device key to its own store; ``permit`` refuses the
    event types the caller may not send (both per item); ``window`` bounds event times.
    """
    context = _window(window)
    try:
        batch = event_batch_adapter.validate_python(items, context=context)
        valid: list[tuple[int, Event]] = list(enumerate(batch))
        rejected: list[RejectedItem] = []
    except ValidationError:
        valid, rejected = [], []
        for i, item in enumerate(items):
            try:
                valid.append((i, event_adapter.validate_python(item, context=context)))
            except ValidationError as exc:
                rejected.append(RejectedItem(i, field_errors(exc, _TAGS), _item_id(item)))
    if store_scope is not None or permit is not None:
        kept: list[tuple[int, Event]] = []
        for i, event in valid:
            reason = _refusal(event, store_scope, permit)
            if reason is None:
                kept.append((i, event))
            else:
                rejected.append(RejectedItem(i, [reason], str(event.id)))
        valid = kept
        rejected.sort(key=lambda r: r.index)
    return valid, rejected


def ingest_json(
    log: EventLog,
    body: bytes,
    *,
    max_items: int,
    store_scope: str | None = None,
    permit: Permit | None = None,
    window: EventTimeWindow | None = None,
    sent_by: str | None = None,
    then: InTransaction | None = None,
) -> IngestReport:
    """Ingest a JSON array body. Validating straight from the bytes skips building
    Python dicts when the whole batch is good; otherwise items are isolated one by one.

    Raises a :class:`BadBody` when the body is not a JSON array or holds too many items.
    """
    window = window or EventTimeWindow(now=datetime.now(UTC))
    try:
        events: list[Event] = event_batch_adapter.validate_json(body, context=window.context())
    except ValidationError:
        pass
    else:
        if len(events) > max_items:
            raise BatchTooLarge(len(events), max_items)
        checked = and_floor_plans(log.engine, permit)
        if all(_refusal(e, store_scope, checked) is None for e in events):
            return _append(log, events, range(len(events)), sent_by=sent_by, then=then)
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"body is not valid JSON: {exc}") from exc
    if not isinstance(items, list):
        raise NotAnArray("body must be a JSON array of events")
    if len(items) > max_items:
        raise BatchTooLarge(len(items), max_items)
    return ingest_items(
        log,
        items,
        store_scope=store_scope,
        permit=permit,
        window=window,
        sent_by=sent_by,
        then=then,
    )


class BadBody(InvalidInput):
    """The request body as a whole is unusable (as opposed to some bad events in it)."""


class InvalidJSON(BadBody, MalformedInput):
    error_type = "json_invalid"


class NotAnArray(BadBody):
    error_type = "list_type"


class BatchTooLarge(BadBody):
    error_type = "too_long"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"batch of {size} events is over the limit of {limit}")


def ingest_items(
    log: EventLog,
    items: Sequence[Any],
    *,
    store_scope: str | None = None,
    permit: Permit | None = None,
    window: EventTimeWindow | None = None,
    sent_by: str | None = None,
    then: InTransaction | None = None,
) -> IngestReport:
    permit = and_floor_plans(log.engine, permit)
    valid, rejected = validate_indexed(items, store_scope=store_scope, permit=permit, window=window)
    appended = [e for _, e in valid]
    indices = [i for i, _ in valid]
    return _append(log, appended, indices, rejected, sent_by=sent_by, then=then)


def ingest_numbered(
    log: EventLog,
    numbered: Iterable[tuple[int, Any]],
    *,
    batch_size: int = 1000,
    on_batch: Callable[[int], None] | None = None,
    sent_by: str | None = None,
    then: InTransaction | None = None,
) -> IngestReport:
    """Ingest ``(line number, item)`` pairs from a file; rejections carry the line number.
    ``then`` runs in each batch's transaction with that batch's report, its lines that
    could not be parsed counted among the rejected.

    Items that could not be parsed arrive as objects with a ``reason`` attribute and
    are reported as rejected on their line; nothing is dropped without a trace.
    """
    total = IngestReport()
    lines: list[int] = []
    items: list[Any] = []
    unparsed: list[RejectedItem] = []  # since the last batch
    batches: list[int] = []  # what each batch stored

    def with_unparsed(conn: Connection, report: IngestReport) -> None:
        assert then is not None
        then(conn, replace(report, rejected=[*unparsed, *report.rejected]))

    def flush() -> None:
        report = ingest_items(
            log, items, sent_by=sent_by, then=None if then is None else with_unparsed
        )
        total.add(report, lines.__getitem__)
        total.rejected.extend(unparsed)
        if on_batch is not None:
            on_batch(len(items) + len(unparsed))
        lines.clear()
        items.clear()
        unparsed.clear()
        batches.append(report.accepted)

    for line, item in numbered:
        reason = getattr(item, "reason", None)
        if reason is not None:
            unparsed.append(RejectedItem(line, [FieldError("(line)", reason, "parse")]))
        else:
            lines.append(line)
            items.append(item)
        if len(items) + len(unparsed) >= batch_size:
            flush()
    if items or unparsed or (then is not None and not batches):
        flush()  # an empty file too: who loaded what stays on record
    total.rejected.sort(key=lambda r: r.index)
    return total
