"""Staff notices: a member arrived, every on-shift colleague hears of it, one serves them.

A notice is raised when a recognised member walks in, a loyalty card is scanned or a
member checks in from the app. It goes to every on-shift staff device of the store;
the first to claim it wins and it is withdrawn from everyone else's screen. The
claim is one conditional ``UPDATE … WHERE state = 'open' AND expires_at > now``
whose row count decides the winner, so the database, not the application, makes the
choice: PostgreSQL re-checks the condition on the row after waiting for a concurrent
claimer's lock, SQLite serialises writers; neither can let two claimers through,
which a read-then-write could. On SQLite the driver opens the transaction at that
write, so no claim has to upgrade a read snapshot to a writer (which fails at once
instead of waiting for the busy timeout).

::

    open ──claim──▶ claimed ──outcome──▶ closed
     ▲  │              │
     │  └─(too late)─▶ expired
     └────release──────┘

What devices are sent names no customer: the list shows a trigger and a time, and
only the claimer opens the customer (``claimer_view``), so what sits on a dozen
phones is nothing an erasure has to chase.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Engine, select, update

from storelens import stores
from storelens.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from storelens.privacy import audit
from storelens.privacy.audit import SYSTEM, Actor
from storelens.privacy.subject import canonical_id
from storelens.staff.notice_records import (
    OUTCOMES,
    TRIGGERS,
    Notice,
    Outcome,
    Trigger,
    notice_of,
    notice_row,
    read_notice,
    withdrawn_message,
)
from storelens.staff.shifts import on_shift_logins, on_shift_staff_ids, staff_ids_of
from storelens.storage.tables import notices

__all__ = [
    "OUTCOMES",
    "TRIGGERS",
    "Gate",
    "Notice",
    "NoticeDesk",
    "Outcome",
    "Trigger",
    "no_recognition",
    "raise_notice",
]

log = logging.getLogger(__name__)

Publish = Callable[[list[dict[str, Any]]], None]
Gate = Callable[[Connection, str, str, str], InvalidInput | None]
"""Whether a notice may be raised: called with the store, the member's current id and
the trigger inside the transaction that would store it; returns the refusal, or None."""


def no_recognition(
    conn: Connection, store_id: str, customer_id: str, trigger: str
) -> InvalidInput | None:
    """The gate of a desk that was given none: a ``recognition`` notice needs the
    member's biometric consent and the store's switch, which only the recognition
    domain can read (the api layer wires its gate in), so without one it is refused
    rather than announced unchecked."""
    if trigger != "recognition":
        return None
    message = "recognition notices are not accepted here"
    return InvalidInput(message, [FieldError.at(("body", "trigger"), message, "recognition_off")])


_NOT_ALLOWED = "this member may no longer be announced here: the notice is withdrawn"


def _refusal(notice: Notice, now: datetime) -> Conflict:
    """Why a claim on ``notice`` lost, in words a staff member understands."""
    state = notice.live_state(now)
    if state == "expired":
        return Conflict("notice expired: nobody claimed it in time")
    if state == "claimed":
        return Conflict("notice already claimed by a colleague")
    if state == "closed":
        return Conflict("notice already closed")
    return Conflict(f"notice is {state}")


class NoticeDesk:
    """Raises, claims, releases, closes and expires notices, and tells devices.

    ``publish`` gets device messages (a hub, a webhook, both); a ``notice`` message
    carries ``audience``, the logins that may see it (None: every staff device of the
    store). ``audience="all_staff"`` skips the shift check, for stores whose tills
    send no clock-ins. ``gate`` may refuse a notice before anything is stored or sent
    (recognition without consent); the refusal is audited.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        open_for: timedelta,
        max_shift: timedelta,
        audience: Literal["on_shift", "all_staff"] = "on_shift",
        publish: Publish | None = None,
        clock: Callable[[], datetime] | None = None,
        gate: Gate = no_recognition,
    ) -> None:
        self.engine, self.open_for, self.max_shift = engine, open_for, max_shift
        self.gate = gate
        self.audience_mode = audience
        self.publish: Publish = publish or (lambda _messages: None)
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        """What the server's expiry sweep calls "now"; tests put their own clock here."""

    # -- who --------------------------------------------------------------------------

    def audience(self, conn: Connection, store_id: str, now: datetime) -> list[str] | None:
        if self.audience_mode == "all_staff":
            return None
        return sorted(on_shift_logins(conn, store_id, now, self.max_shift))

    def may_serve(self, conn: Connection, store_id: str, username: str, now: datetime) -> bool:
        """Whether ``username`` receives and may claim this store's notices now."""
        if self.audience_mode == "all_staff":
            return True
        on = on_shift_staff_ids(conn, store_id, now, self.max_shift)
        return bool(on & staff_ids_of(conn, username))

    # -- raise --------------------------------------------------------------------------

    def raise_notice(
        self,
        store_id: str,
        customer_id: str,
        trigger: str,
        *,
        actor: Actor = SYSTEM,
        now: datetime | None = None,
    ) -> tuple[Notice, bool]:
        """The notice for this member in this store, and whether it is new.

        A member already waiting (open) or being served (claimed) is not announced
        twice: the camera and the loyalty scan of one arrival give one notice.

        The gate is asked first, in the transaction that would store the notice, so
        a refused arrival neither is stored nor broadcast nor gets the member's
        waiting notice back (which would tell the caller one exists); its audit row
        is the one thing the transaction commits."""
        now = now or datetime.now(UTC)
        if trigger not in TRIGGERS:
            message = f"must be one of {', '.join(TRIGGERS)}"
            raise InvalidInput(message, [FieldError.at(("body", "trigger"), message, "enum")])
        with self.engine.begin() as conn:
            outcome = self._raise(conn, store_id, customer_id, trigger, actor, now)
        if isinstance(outcome, InvalidInput):
            raise outcome  # after the commit: the refusal's audit row stays
        notice, created, audience = outcome
        if created:
            self._announce(notice, audience)
        return notice, created

    def _raise(
        self,
        conn: Connection,
        store_id: str,
        customer_id: str,
        trigger: str,
        actor: Actor,
        now: datetime,
    ) -> tuple[Notice, bool, list[str] | None] | InvalidInput:
        try:
            stores.get_store(conn, store_id)
        except NotFound:
            message = f"unknown store {store_id!r}"
            loc = ("body", "store_id")
            raise InvalidInput(message, [FieldError.at(loc, message, "unknown")]) from None
        current = canonical_id(conn, customer_id)
        if current is None:
            message = "unknown customer"  # the id itself stays out of messages and logs
            loc = ("body", "customer_id")
            raise InvalidInput(message, [FieldError.at(loc, message, "unknown")])
        refusal = self.gate(conn, store_id, current, trigger)
        if refusal is not None:
            why = {"store_id": store_id, "trigger": trigger, "reason": refusal.errors[0].type}
            audit.record(conn, actor, "notice.refused", "customer", current, why)
            return refusal
        waiting = conn.execute(
            select(notices).where(
                notices.c.store_id == store_id,
                notices.c.customer_id == current,
                notices.c.state.in_(("open", "claimed")),
            )
        ).all()
        for row in waiting:
            found = notice_of(row)
            state = found.live_state(now)
            if state == "open" or (state == "claimed" and not self._lapsed(conn, found, now)):
                return found, False, None
        notice = Notice(
            id=str(uuid.uuid4()),
            store_id=store_id,
            customer_id=current,
            trigger=trigger,
            state="open",
            raised_at=now,
            raised_by=actor.name[:128],
            expires_at=now + self.open_for,
        )
        conn.execute(notices.insert(), notice_row(notice))
        audit.record(conn, actor, "notice.raise", "notice", notice.id, {"trigger": trigger})
        return notice, True, self.audience(conn, store_id, now)

    # -- claim, release, outcome --------------------------------------------------------

    def claim(self, notice_id: str, username: str, actor: Actor, now: datetime) -> Notice:
        """Exactly one claimer of an open notice wins; every other gets :class:`Conflict`.

        The reads before the update take no write lock (SQLite's driver begins the
        transaction at the first write), so the update alone decides the race."""
        with self.engine.begin() as conn:
            before = read_notice(conn, notice_id)
            if not self.may_serve(conn, before.store_id, username, now):
                raise Forbidden("only staff on shift in this store may claim its notices")
            withdrawn = self._no_longer_allowed(conn, before, now)
            if withdrawn:  # end it for everyone, not only for this claimer
                won = conn.execute(
                    update(notices)
                    .where(notices.c.id == notice_id, notices.c.state == "open")
                    .values(expires_at=now)
                ).rowcount
                audit.record(conn, actor, "notice.refused", "notice", notice_id, {"at": "claim"})
            else:
                won = conn.execute(
                    update(notices)
                    .where(
                        notices.c.id == notice_id,
                        notices.c.state == "open",
                        notices.c.expires_at > now,
                    )
                    .values(state="claimed", claimed_by=username, claimed_at=now)
                ).rowcount
                if won == 1:
                    audit.record(conn, actor, "notice.claim", "notice", notice_id)
            notice = read_notice(conn, notice_id)
        if withdrawn:
            if won == 1:
                self.publish([withdrawn_message(notice, "expired")])
            raise Conflict(_NOT_ALLOWED)
        if won != 1:
            raise _refusal(notice, now)
        self.publish([withdrawn_message(notice, "claimed")])
        return notice

    def _held(self, conn: Connection, notice_id: str, username: str, now: datetime) -> Notice:
        notice = read_notice(conn, notice_id)
        if notice.state != "claimed":
            raise Conflict(f"notice is {notice.live_state(now)}, not claimed")
        if notice.claimed_by != username:
            raise Forbidden("only the staff member who claimed this notice may do this")
        return notice

    def _lapsed(self, conn: Connection, notice: Notice, now: datetime) -> bool:
        """Whether a claim no longer stands for someone serving the member now: its
        claimer is off shift in the store, or it is older than a shift. Nothing else
        ends a claim nobody closed, so without this its claimer could open the
        customer from home days later, and the member, "being served" for ever, was
        never announced again in that store (security review)."""
        if notice.claimed_by is None or notice.claimed_at is None:
            return True
        if notice.claimed_at <= now - self.max_shift:
            return True
        return not self.may_serve(conn, notice.store_id, notice.claimed_by, now)

    def held_claim(self, notice_id: str, username: str, now: datetime) -> Notice:
        """The notice if ``username`` holds its open claim and is still on shift in its
        store (the claimer view's gate). Release and outcome need no shift: closing a
        claim after clocking out is what should happen."""
        with self.engine.connect() as conn:
            return self.claim_in(conn, notice_id, username, now)

    def claim_in(
        self,
        conn: Connection,
        notice_id: str,
        username: str,
        now: datetime,
        *,
        withdrawing: bool = False,
    ) -> Notice:
        """:meth:`held_claim` inside the caller's transaction, for a write that must
        still hold the claim when it commits (photos take seconds to embed).

        ``withdrawing``: the member takes something back (their face). The gate that
        keeps a member who said no from being announced must not stop that: it refused
        the withdrawal of a member recognised at the door who had said no in the app,
        or whose store switched recognition off meanwhile (a review)."""
        notice = self._held(conn, notice_id, username, now)
        if self._lapsed(conn, notice, now):
            raise Forbidden(
                "only staff on shift in this store may open its customers: "
                "the claim lapsed with your shift"
            )
        if not withdrawing and self._no_longer_allowed(conn, notice, now):
            raise Forbidden(_NOT_ALLOWED)
        return notice

    def _no_longer_allowed(self, conn: Connection, notice: Notice, now: datetime) -> bool:
        """Whether the gate that let the notice in would refuse it now: a member who
        withdrew recognition consent, or a store that switched it off, after their
        face was announced. The notice stays on phones until it expires (5 minutes);
        without this a claim in that time still opened their visits and purchases."""
        return self.gate(conn, notice.store_id, notice.customer_id, notice.trigger) is not None

    def release(self, notice_id: str, username: str, actor: Actor, now: datetime) -> Notice:
        """Hand the customer back: the notice is open again, for a fresh wait."""
        with self.engine.begin() as conn:
            released = conn.execute(
                update(notices)
                .where(
                    notices.c.id == notice_id,
                    notices.c.state == "claimed",
                    notices.c.claimed_by == username,
                )
                .values(
                    state="open",
                    claimed_by=None,
                    claimed_at=None,
                    expires_at=now + self.open_for,
                    releases=notices.c.releases + 1,
                )
            ).rowcount
            if released != 1:
                self._held(conn, notice_id, username, now)  # raises the reason
                raise Conflict("notice changed meanwhile; reload it")
            audit.record(conn, actor, "notice.release", "notice", notice_id)
            notice = read_notice(conn, notice_id)
            audience = self.audience(conn, notice.store_id, now)
        self._announce(notice, audience)
        return notice

    def record_outcome(
        self, notice_id: str, username: str, outcome: str, actor: Actor, now: datetime
    ) -> Notice:
        """Close the claim with what happened; the customer view closes with it."""
        if outcome not in OUTCOMES:
            message = f"must be one of {', '.join(OUTCOMES)}"
            raise InvalidInput(message, [FieldError.at(("body", "outcome"), message, "enum")])
        with self.engine.begin() as conn:
            closed = conn.execute(
                update(notices)
                .where(
                    notices.c.id == notice_id,
                    notices.c.state == "claimed",
                    notices.c.claimed_by == username,
                )
                .values(state="closed", outcome=outcome, closed_at=now)
            ).rowcount
            if closed != 1:
                self._held(conn, notice_id, username, now)  # raises the reason
                raise Conflict("notice changed meanwhile; reload it")
            audit.record(conn, actor, "notice.outcome", "notice", notice_id, {"outcome": outcome})
            return read_notice(conn, notice_id)

    # -- expiry and listing -------------------------------------------------------------

    def expire_due(self, now: datetime) -> list[Notice]:
        """Mark open notices past their time expired and withdraw them from devices."""
        with self.engine.begin() as conn:
            due = conn.execute(
                update(notices)
                .where(notices.c.state == "open", notices.c.expires_at <= now)
                .values(state="expired", closed_at=now)
                .returning(*notices.c)
            ).all()
        expired = [notice_of(r) for r in due]
        if expired:
            self.publish([withdrawn_message(n, "expired") for n in expired])
        return expired

    def visible_to(self, store_id: str, username: str, now: datetime) -> list[Notice]:
        """What a device shows on connecting: open notices (if on shift) and own claims."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(notices)
                .where(notices.c.store_id == store_id, notices.c.state.in_(("open", "claimed")))
                .order_by(notices.c.raised_at)
            ).all()
            serving = self.may_serve(conn, store_id, username, now)
        found = [notice_of(r) for r in rows]
        return [
            n
            for n in found
            if (n.live_state(now) == "open" and serving)
            or (n.state == "claimed" and n.claimed_by == username)
        ]

    def _announce(self, notice: Notice, audience: list[str] | None) -> None:
        message = {"type": "notice", "store_id": notice.store_id, "notice": notice.card()}
        self.publish([{**message, "audience": audience}])


def raise_notice(
    desk: NoticeDesk,
    store_id: str,
    customer_id: str,
    trigger: Trigger,
    *,
    actor: Actor = SYSTEM,
    now: datetime | None = None,
) -> Notice:
    """The entry point for code in the server process (recognition at the entrance):
    raise a notice on the app's desk (``app.state.notice_desk``). An edge box posts
    ``POST /v1/notices`` instead."""
    return desk.raise_notice(store_id, customer_id, trigger, actor=actor, now=now)[0]
