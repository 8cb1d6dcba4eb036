"""Reading and writing operations facts, processor state and alerts (the I/O half)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, select

from storelens.instore.alerts import AlertChange, AlertRule
from storelens.instore.facts import (
    Fact,
    OpsFacts,
    OrderFact,
    QueueWait,
    ShiftFact,
    VisitFact,
    ZoneVisit,
)
from storelens.storage.dialects import dialect_for
from storelens.storage.tables import (
    alerts,
    consumer_offsets,
    ops_orders,
    ops_queue_waits,
    ops_shifts,
    ops_visits,
    ops_zone_visits,
    processor_state,
    store_alert_rules,
    zones,
)

__all__ = [
    "HAND_OFF_MEMORY",
    "HandOffs",
    "cursor_position",
    "list_alerts",
    "load_facts",
    "load_state",
    "recent_hand_offs",
    "reset_store_rules",
    "save_state",
    "save_store_rules",
    "store_rules",
    "write_alerts",
    "write_facts",
    "zone_kinds",
]

_TABLES: dict[type, Table] = {
    OrderFact: ops_orders,
    ZoneVisit: ops_zone_visits,
    VisitFact: ops_visits,
    QueueWait: ops_queue_waits,
    ShiftFact: ops_shifts,
}
_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(c.name for c in table.columns if c.name != "id") for cls, table in _TABLES.items()
}


def write_facts(conn: Connection, facts: Sequence[Fact]) -> None:
    grouped: dict[type, list[dict[str, Any]]] = {}
    for f in facts:
        cls = type(f)
        grouped.setdefault(cls, []).append({k: getattr(f, k) for k in _FIELDS[cls]})
    for cls, rows in grouped.items():
        conn.execute(_TABLES[cls].insert(), rows)


def load_facts(
    engine: Engine,
    store_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    kinds: Collection[type] | None = None,
) -> OpsFacts:
    """Facts that can fall in ``[since, until)``; shifts and orders are read with an
    eight-hour margin because they are counted by overlap and by payment time.
    ``kinds`` reads only those fact classes (store insights need zone visits alone)."""
    margin = timedelta(hours=8)
    out = OpsFacts()
    time_col = {
        OrderFact: "paid_at",
        ZoneVisit: "enter",
        VisitFact: "enter",
        QueueWait: "queue_enter",
        ShiftFact: "start",
    }
    with engine.connect() as conn:
        for cls, table in _TABLES.items():
            if kinds is not None and cls not in kinds:
                continue
            stmt = select(*[table.c[k] for k in _FIELDS[cls]])
            if store_id is not None:
                stmt = stmt.where(table.c.store_id == store_id)
            col = table.c[time_col[cls]]
            if since is not None:
                stmt = stmt.where((col >= since - margin) | col.is_(None))
            if until is not None:
                stmt = stmt.where((col < until + margin) | col.is_(None))
            rows = conn.execute(stmt.order_by(table.c.id)).all()
            out.add([cls(*r) for r in rows])
    return out


def load_state(conn: Connection, processor: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(processor_state.c.state).where(processor_state.c.processor == processor)
    ).first()
    return row.state if row else None


def cursor_position(conn: Connection, consumer: str) -> int | None:
    """The committed log position of ``consumer`` as this transaction sees it."""
    stmt = select(consumer_offsets.c.position).where(consumer_offsets.c.consumer == consumer)
    value = conn.execute(stmt).scalar()
    return None if value is None else int(value)


def save_state(conn: Connection, processor: str, state: dict[str, Any]) -> None:
    stmt = dialect_for(conn).upsert(processor_state, ["processor"], ["state", "updated_at"])
    conn.execute(stmt, {"processor": processor, "state": state, "updated_at": datetime.now(UTC)})


def write_alerts(conn: Connection, changes: Sequence[AlertChange]) -> list[dict[str, Any]]:
    rows = [
        {
            "store_id": c.store_id,
            "rule_id": c.rule_id,
            "state": c.state,
            "at": c.at,
            "severity": c.severity,
            "message": c.message,
            "value": c.value,
            "created_at": datetime.now(UTC),
        }
        for c in changes
    ]
    if rows:
        conn.execute(alerts.insert(), rows)
    return rows


def list_alerts(
    engine: Engine, store_id: str, *, limit: int = 100, since: datetime | None = None
) -> list[dict[str, Any]]:
    stmt = select(alerts).where(alerts.c.store_id == store_id)
    if since is not None:
        stmt = stmt.where(alerts.c.at >= since)
    with engine.connect() as conn:
        rows = conn.execute(stmt.order_by(alerts.c.id.desc()).limit(limit)).all()
    return [dict(r._mapping) for r in rows]


def store_rules(conn: Connection) -> dict[str, tuple[AlertRule, ...]]:
    """Alert rules of the stores that have their own (others use the defaults)."""
    return {
        store_id: tuple(AlertRule(**r) for r in rules)
        for store_id, rules in conn.execute(
            select(store_alert_rules.c.store_id, store_alert_rules.c.rules)
        )
    }


def save_store_rules(
    conn: Connection, store_id: str, rules: Sequence[AlertRule], by: str | None
) -> None:
    stmt = dialect_for(conn).upsert(
        store_alert_rules, ["store_id"], ["rules", "updated_at", "updated_by"]
    )
    conn.execute(
        stmt,
        {
            "store_id": store_id,
            "rules": [asdict(r) for r in rules],
            "updated_at": datetime.now(UTC),
            "updated_by": by,
        },
    )


HAND_OFF_MEMORY = timedelta(days=14)
"""How far back a hand-off shows that a store's order screen reports them."""


@dataclass(frozen=True, slots=True)
class HandOffs:
    """What a store's recent hand-offs say about its open orders."""

    reported: bool
    """It handed an order off: it has an order screen, and an open order is waiting."""
    without_drinks: bool
    """It handed off an order with no drink in it: food is handed over at the bar too
    (or its tills send no categories), so a drink-less order waits as well. Where it
    never did, a croissant sold at the till is served there and never waits."""


def recent_hand_offs(conn: Connection, store_id: str, since: datetime) -> HandOffs:
    """The store's :class:`HandOffs` from orders paid in the :data:`HAND_OFF_MEMORY`
    before ``since`` or after it: two indexed probes of one row each."""
    handed = (
        select(ops_orders.c.id)
        .where(
            ops_orders.c.store_id == store_id,
            ops_orders.c.paid_at >= since - HAND_OFF_MEMORY,
            ops_orders.c.handed_off_at.is_not(None),
        )
        .limit(1)
    )
    if conn.execute(handed).first() is None:
        return HandOffs(reported=False, without_drinks=False)
    drinkless = conn.execute(handed.where(ops_orders.c.drinks == 0)).first()
    return HandOffs(reported=True, without_drinks=drinkless is not None)


def zone_kinds(conn: Connection) -> dict[str, dict[str, str]]:
    """store id -> zone id -> kind, from the latest layouts."""
    out: dict[str, dict[str, str]] = {}
    for store_id, zone_id, kind in conn.execute(
        select(zones.c.store_id, zones.c.zone_id, zones.c.kind)
    ):
        out.setdefault(store_id, {})[zone_id] = kind
    return out


def reset_store_rules(conn: Connection, store_id: str) -> None:
    """Drop a store's own alert rules: it goes back to the defaults."""
    conn.execute(delete(store_alert_rules).where(store_alert_rules.c.store_id == store_id))
