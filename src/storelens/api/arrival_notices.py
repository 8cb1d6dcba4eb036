"""The server's own :class:`ArrivalSink`: a member recognised in this process raises a notice.

When the entrance camera runs inside the server process, a confirmed arrival goes
straight to the notice desk (``staff.raise_notice`` on ``app.state.notice_desk``),
which stores the notice and broadcasts it to the staff on shift, the same as
``POST /v1/notices`` does for an edge box (``recognition.notice_poster``). Recognition
and staff are sibling domains, so the two meet here, one layer above both.

A member already waiting or being served is not announced twice (the desk answers
with the notice they have). An arrival the desk refuses (the customer was erased
between the match and the call, the store was deleted, consent was withdrawn or the
store switched recognition off) is dropped and logged by store and track only: the
camera loop must go on, and the log must not say who came in.

:func:`recognition_gate` is the desk's gate (``NoticeDesk(gate=)``): whichever way a
``recognition`` notice arrives, in-process or from an edge box, the server re-reads
the consent and the switch as it stores it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection

from storelens.core.errors import FieldError, InvalidInput, NotFound
from storelens.privacy.audit import Actor
from storelens.recognition.matcher import Arrival
from storelens.recognition.store import consent_in_force, recognition_enabled
from storelens.staff import Notice, NoticeDesk, raise_notice

__all__ = ["DeskArrivalSink", "recognition_gate"]

log = logging.getLogger(__name__)
RECOGNITION = Actor(name="recognition", kind="system")


def recognition_gate(
    conn: Connection, store_id: str, customer_id: str, trigger: str
) -> InvalidInput | None:
    """Refuse a ``recognition`` notice unless the store has recognition on and the
    member may be recognised there now (``recognition.store.consent_in_force``: a
    biometric consent in force covering the store, under any of their ids, and no
    later withdrawal). The edge box matched against a gallery of consenting members,
    but its post is retried for up to ``faces_notice_retry_s`` after the match, and
    a device key could call any arrival "recognition": only the server's own reading
    at the moment of storing decides.

    The refusal is a 422, not a 409 or a 5xx: the edge box retries 5xx, 408 and 429
    and gives up on other 4xx (``IngestRefused``), and a 422 with a field error is how
    this route already refuses an unknown store or customer. The switch is named (it
    is the store's, and the box's operator must learn it is off); the member's case
    says only that recognition may not announce them here, not whether they never
    enrolled, withdrew or enrolled for other stores. Other triggers (a card scanned,
    an app check-in) are the member's own act and not biometric: no gate."""
    if trigger != "recognition":
        return None
    if not recognition_enabled(conn, store_id):
        message = "recognition is switched off for this store"
        return InvalidInput(
            message, [FieldError.at(("body", "store_id"), message, "recognition_off")]
        )
    if not consent_in_force(conn, customer_id, store_id):
        message = "recognition may not announce this member in this store"
        loc = ("body", "trigger")
        return InvalidInput(message, [FieldError.at(loc, message, "recognition_not_allowed")])
    return None


class DeskArrivalSink:
    """Raises a ``recognition`` notice on the desk for each confirmed arrival."""

    def __init__(
        self,
        desk: NoticeDesk,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.desk = desk
        self.clock = clock
        self.raised: list[Notice] = []  # the last ones, for status pages and tests
        self.dropped = 0

    def __call__(self, arrival: Arrival) -> None:
        try:
            notice = raise_notice(
                self.desk,
                arrival.store_id,
                arrival.customer_id,
                "recognition",
                actor=RECOGNITION,
                now=self.clock(),
            )
        except (InvalidInput, NotFound) as exc:
            self.dropped += 1
            log.warning(
                "arrival on track %s at store %s not announced: %s",
                arrival.track_id,
                arrival.store_id,
                type(exc).__name__,
            )
            return
        self.raised = [*self.raised[-99:], notice]
