"""The server's own :class:`ArrivalSink`: a member recognised in this process raises a notice.

When the entrance camera runs inside the server process, a confirmed arrival goes
straight to the notice desk (``staff.raise_notice`` on ``app.state.notice_desk``),
which stores the notice and broadcasts it to the staff on shift, the same as
``POST /v1/notices`` does for an edge box (``recognition.notice_poster``). Recognition
and staff are sibling domains, so the two meet here, one layer above both.

A member already waiting or being served is not announced twice (the desk answers
with the notice they have). An arrival the desk refuses (the customer was erased
between the match and the call, the store was deleted) is dropped and logged by store
and track only: the camera loop must go on, and the log must not say who came in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from storelens.core.errors import InvalidInput, NotFound
from storelens.privacy.audit import Actor
from storelens.recognition.matcher import Arrival
from storelens.staff import Notice, NoticeDesk, raise_notice

__all__ = ["DeskArrivalSink"]

log = logging.getLogger(__name__)
RECOGNITION = Actor(name="recognition", kind="system")


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
