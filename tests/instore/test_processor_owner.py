"""The ops processor on a shared cursor: stale in-memory state is never continued, and
a far-future event in the log costs bounded work, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine

from storelens import stores
from storelens.core.events import event_adapter
from storelens.instore.processor import OpsProcessor, report_from_db, report_from_file
from storelens.sim import default_layout_path
from storelens.storage.eventlog import EventLog

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
LINE = [{"product_id": "latte", "qty": 1, "unit_price": 3.4, "category": "coffee"}]


def _raw(type_: str, ts: datetime, **payload: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": type_,
        "ts": ts.isoformat(),
        "source": "test",
        "store_id": "cafe-01",
        "payload": payload,
    }


def _orders(n: int) -> list[dict[str, Any]]:
    out = [_raw("staff.clock_in", T0, staff_id="ana", role="barista")]
    for i in range(n):
        t = T0 + timedelta(minutes=3 * i + 1)
        out += [
            _raw("pos.order_paid", t, order_id=f"o{i}", lines=LINE),
            _raw("order.started", t + timedelta(seconds=30), order_id=f"o{i}", staff_id="ana"),
            _raw("order.handed_off", t + timedelta(seconds=150), order_id=f"o{i}", staff_id="ana"),
        ]
    return sorted(out, key=lambda e: e["ts"])


def _append(log: EventLog, raws: list[dict[str, Any]]) -> None:
    log.append([event_adapter.validate_python(r) for r in raws])


def _setup(engine: Engine) -> EventLog:
    with engine.begin() as conn:
        stores.load_layout_file(conn, default_layout_path())
    return EventLog(engine)


def _report(engine: Engine) -> dict[str, Any]:
    return report_from_db(engine, "cafe-01", timezone="Europe/Berlin", detail=True)


def _batch(tmp_path: Path, raws: list[dict[str, Any]]) -> dict[str, Any]:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in raws))
    report = report_from_file(path, default_layout_path(), detail=True)
    return {k: v for k, v in report.items() if k != "alerts"}


def test_two_processors_on_one_cursor_never_count_twice(engine: Engine, tmp_path: Path) -> None:
    log = _setup(engine)
    raws = _orders(12)
    server, cli = OpsProcessor(), OpsProcessor()
    thirds = [raws[: len(raws) // 3], raws[len(raws) // 3 : 2 * len(raws) // 3]]
    thirds.append(raws[2 * len(raws) // 3 :])
    _append(log, thirds[0])
    server.run(log)  # loads its tracker and keeps it in memory
    _append(log, thirds[1])
    cli.run(log)  # another process moves the cursor
    _append(log, thirds[2])
    server.run(log)  # must reload, not continue from the state of the first third
    report = _report(engine)
    assert (report["fulfillment"]["complete"], report["fulfillment"]["incomplete"]) == (12, 0)
    assert report == _batch(tmp_path, raws)
    assert server.reloads == 2


def test_processor_keeps_its_state_while_it_alone_moves_the_cursor(engine: Engine) -> None:
    log = _setup(engine)
    processor = OpsProcessor()
    for chunk in (_orders(2), _orders(2)):
        _append(log, chunk)
        processor.run(log, batch=3)
    assert processor.reloads == 1


def test_far_future_event_in_the_log_is_bounded_and_harmless(
    engine: Engine, tmp_path: Path
) -> None:
    log = _setup(engine)
    raws = _orders(10)
    stray = _raw("pos.order_paid", datetime(2099, 1, 1, tzinfo=UTC), order_id="x", lines=LINE)
    _append(log, [*raws[:15], stray])
    _append(log, raws[15:])
    processor = OpsProcessor()
    processor.run(log, batch=7)
    assert processor.tracker is not None
    assert processor.tracker.ticks <= 40  # minutes with work, not 38 million
    assert processor.tracker.clock("cafe-01") == max(datetime.fromisoformat(r["ts"]) for r in raws)
    assert _report(engine) == _batch(tmp_path, raws)
