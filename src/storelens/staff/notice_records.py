"""A staff notice as stored and as sent, and its place in a person's data.

Kept apart from the desk (``staff.notices``), which decides who may raise, claim and
read a notice: this is what a notice *is* (its row, the card a phone is sent, the
message that takes it off phones) and how an access request or an erasure reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, delete, select

from storelens.core.errors import NotFound
from storelens.privacy.registry import PersonalStore, SubjectRequest, plain, register
from storelens.storage.tables import notices

__all__ = [
    "OUTCOMES",
    "TRIGGERS",
    "Notice",
    "Outcome",
    "Trigger",
    "notice_of",
    "notice_row",
    "read_notice",
    "withdrawn_message",
]

Trigger = Literal["recognition", "loyalty_scan", "app_checkin"]
Outcome = Literal["served", "purchase", "declined"]
TRIGGERS: tuple[str, ...] = ("recognition", "loyalty_scan", "app_checkin")
OUTCOMES: tuple[str, ...] = ("served", "purchase", "declined")


@dataclass(frozen=True, slots=True)
class Notice:
    id: str
    store_id: str
    customer_id: str
    trigger: str
    state: str
    raised_at: datetime
    raised_by: str
    expires_at: datetime
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    releases: int = 0
    outcome: str | None = None
    closed_at: datetime | None = None

    def live_state(self, now: datetime) -> str:
        """``expired`` for an open notice past its time that no sweep has marked yet."""
        return "expired" if self.state == "open" and self.expires_at <= now else self.state

    def card(self) -> dict[str, Any]:
        """What a staff device is sent: no customer id, no name (see the module doc)."""
        return {
            "id": self.id,
            "store_id": self.store_id,
            "trigger": self.trigger,
            "state": self.state,
            "raised_at": self.raised_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "claimed_by": self.claimed_by,
        }


def notice_of(row: Any) -> Notice:
    return Notice(**dict(row._mapping))


def read_notice(conn: Connection, notice_id: str) -> Notice:
    row = conn.execute(select(notices).where(notices.c.id == notice_id)).first()
    if row is None:
        raise NotFound(f"no notice {notice_id!r}")
    return notice_of(row)


def withdrawn_message(notice: Notice, reason: str) -> dict[str, Any]:
    return {
        "type": "notice_withdrawn",
        "store_id": notice.store_id,
        "id": notice.id,
        "reason": reason,
        "claimed_by": notice.claimed_by,
    }


def notice_row(notice: Notice) -> dict[str, Any]:
    return {f: getattr(notice, f) for f in Notice.__slots__}


def _export_notices(req: SubjectRequest) -> list[dict[str, Any]]:
    """Staff notices about the person: when, where, why, who served them, the outcome."""
    rows = req.conn.execute(
        select(notices)
        .where(notices.c.customer_id.in_(req.subject.ids))
        .order_by(notices.c.raised_at)
    )
    return [plain(r) for r in rows]


def _erase_notices(req: SubjectRequest) -> int:
    gone = req.conn.execute(delete(notices).where(notices.c.customer_id.in_(req.subject.ids)))
    return int(gone.rowcount or 0)


register(PersonalStore("staff_notices", _export_notices, _erase_notices, tables=("notices",)))
