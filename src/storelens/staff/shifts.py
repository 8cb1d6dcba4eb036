"""Who is on shift in a store right now, from the tills' clock-in and clock-out events.

A notice about a member goes to the people who can walk over and serve them, not to
everyone with a staff login. The till already records that as ``staff.clock_in`` and
``staff.clock_out`` events (a break is a clock-out and a clock-in), so shifts are read
straight from the event log rather than kept in a second shift table that could
disagree with it: the last of those events per staff id within ``shift_max_hours``
decides. An older clock-in with no clock-out is a forgotten clock-out, not a person
still at work.

A staff *id* (what the till sends) reaches a *login* in one of two ways: a row in
``staff`` linked to the user (``staff.user_id``), or a login whose username is the
staff id itself (``barista-ana`` at the till and in the app), which needs no setup.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection, or_, select

from storelens.accounts import Role
from storelens.storage.tables import events, staff, users

__all__ = ["SHIFT_TYPES", "on_shift_logins", "on_shift_staff_ids", "on_shift_state", "staff_ids_of"]

SHIFT_TYPES = ("staff.clock_in", "staff.clock_out")


def on_shift_state(shift_events: Iterable[tuple[str, str]]) -> set[str]:
    """Staff ids whose last event is a clock-in, from (type, staff id) in time order."""
    on: set[str] = set()
    for kind, staff_id in shift_events:
        if kind == "staff.clock_in":
            on.add(staff_id)
        else:
            on.discard(staff_id)
    return on


def on_shift_staff_ids(
    conn: Connection, store_id: str, now: datetime, max_shift: timedelta
) -> set[str]:
    """Staff ids clocked in at ``store_id`` at ``now`` (the window bounds the read)."""
    rows = conn.execute(
        select(events.c.type, events.c.payload)
        .where(
            events.c.store_id == store_id,
            events.c.type.in_(SHIFT_TYPES),
            events.c.ts > now - max_shift,
            events.c.ts <= now,
        )
        .order_by(events.c.ts, events.c.seq)
    )
    return on_shift_state((str(r.type), str(r.payload.get("staff_id", ""))) for r in rows)


def staff_ids_of(conn: Connection, username: str) -> set[str]:
    """The staff ids a login answers to: its username and any ``staff`` rows linked to it."""
    linked = conn.execute(
        select(staff.c.id)
        .join(users, staff.c.user_id == users.c.id)
        .where(users.c.username == username)
    ).scalars()
    return {username, *(str(s) for s in linked)}


def on_shift_logins(
    conn: Connection, store_id: str, now: datetime, max_shift: timedelta
) -> set[str]:
    """Usernames of active staff logins on shift at ``store_id``: who gets its notices."""
    ids = on_shift_staff_ids(conn, store_id, now, max_shift)
    if not ids:
        return set()
    linked = select(staff.c.user_id).where(staff.c.id.in_(ids), staff.c.user_id.is_not(None))
    rows = conn.execute(
        select(users.c.username).where(
            users.c.active.is_(True),
            users.c.role == Role.staff.value,
            or_(users.c.username.in_(ids), users.c.id.in_(linked)),
        )
    ).scalars()
    return {str(u) for u in rows}
