"""The audit row an HTTP batch, a file load or a customer import leaves, in its own transaction.

The row used to be written after the events committed, in a transaction of its own: a
crash or a Ctrl-C in between (a file load runs for minutes) left stored events that no
row accounted for, so an access request could not show who wrote them. The row is now
written by :data:`~storelens.ingest.batch.InTransaction` work in the append's
transaction: committed together or not at all, as MQTT's rows always were
(:mod:`storelens.ingest.mqtt_audit`).

The cost is that a batch's row names people as the records said *when they were
written*. A customer import's row is written before the projections have resolved the
new records, so it names a new person by their record's ``source:record`` key (never
its loyalty id, which a card reissue can move to someone else; see
:meth:`storelens.privacy.writes.Writes.stored`) rather than by their customer id: the
person's access request finds it all the same, because the key is an id of theirs, and
erasure puts the pseudonym in its place.

A file load leaves one row per batch (``--batch-size``, 1,000 events by default), not
one per file (an empty file one row): each row is committed with its batch, and a load
that stops halfway has rows for exactly the batches it stored. Imports commit 1,000
records at a time, over HTTP too, so the append lock that every writer waits on is held
for one batch and its audit work, not for a whole upload.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from storelens.ingest.batch import IngestReport, InTransaction
from storelens.privacy import audit
from storelens.privacy.writes import Writes

__all__ = ["audited", "writes_of"]


def writes_of(report: IngestReport) -> Writes:
    """The tally of one batch: its stored events name people, the rest are counted."""
    writes = Writes(duplicates=report.duplicates, rejected=len(report.rejected))
    writes.forbidden = sum(any(e.type == "forbidden" for e in r.errors) for r in report.rejected)
    writes.stored_events(report.stored)
    return writes


def audited(
    actor: audit.Actor,
    resource_id: str | None,
    *,
    action: str | None = None,
    resource: str = "events",
    **extra: Any,
) -> InTransaction:
    """Work for ``then=``: the batch's row, by ``actor``, with ``extra`` in its detail
    (the channel, a file's name, an import's source)."""

    def record(conn: Connection, report: IngestReport) -> None:
        writes_of(report).record(
            conn,
            actor,
            resource_id,
            action=action,
            resource=resource,
            conflicts=report.conflicts,
            **extra,
        )

    return record
