"""The impression writer's driver-level insert stores what ``insert()`` would have.

The writer skips SQLAlchemy's per-row statement building and hands tuples to the
driver with each column's bind conversion; these compare its rows with rows written
the ordinary way, on every backend, and check that bad rows still fail loudly. A row
is one shown list: its items travel as (product, confidence) pairs and are stored as
``[{"product_id", "rank", "confidence"}]``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, delete, event, select, text

from storelens.config import Settings
from storelens.recommend import evidence
from storelens.recommend.candidate_store import MemoryCandidates
from storelens.recommend.engine import RecommendationEngine
from storelens.recommend.impression_log import (
    CHUNK_ROWS,
    COLUMNS,
    ImpressionLog,
    queued_for,
    shown_document,
)
from storelens.storage.tables import recommend_impressions

AT = datetime(2026, 3, 9, 17, 45, 12, 345678, tzinfo=timezone(timedelta(hours=1)))


def _read(engine: Engine, customer: str) -> list[tuple[object, ...]]:
    cols = [recommend_impressions.c[c] for c in COLUMNS]
    with engine.connect() as conn:
        rows = conn.execute(
            select(*cols).where(recommend_impressions.c.customer_id == customer)
            .order_by(recommend_impressions.c.id)
        ).all()  # fmt: skip
    return [tuple(r) for r in rows]


SHOWN = (("tea", 0.125), ("bun", 1 / 3))


def test_driver_rows_read_back_like_orm_rows(engine: Engine) -> None:
    rows = [(AT, "ann", "s1", True, "staff:7", SHOWN),
            (AT, "ann", "s2", False, "staff:7", SHOWN[1:])]  # fmt: skip
    impressions = ImpressionLog(engine, every_s=3600.0)
    impressions.add(rows)
    queued = queued_for({"ann"})  # readable while queued, items spelled out
    assert [r["store_id"] for r in queued] == ["s1", "s2"]
    assert queued[0]["shown"] == [
        {"product_id": "tea", "rank": 1, "confidence": 0.125},
        {"product_id": "bun", "rank": 2, "confidence": 1 / 3},
    ]
    assert queued[1]["shown"] == [{"product_id": "bun", "rank": 1, "confidence": 1 / 3}]
    assert impressions.flush() == 2
    with engine.begin() as conn:
        evidence.log_impressions(conn, [
            {**dict(zip(COLUMNS, (AT, "bea", *r[2:]), strict=True)),
             "shown": shown_document(r[5])}
            for r in rows
        ])  # fmt: skip
    mine, theirs = _read(engine, "ann"), _read(engine, "bea")
    assert len(mine) == 2
    assert [r[:1] + r[2:] for r in mine] == [r[:1] + r[2:] for r in theirs]
    assert mine[0][0] == AT  # tz-aware, the same instant
    assert isinstance(mine[0][0], datetime) and mine[0][0].tzinfo is not None
    assert mine[0][0].astimezone(UTC).hour == 16
    assert [r[3] for r in mine] == [True, False]
    assert mine[0][5] == queued[0]["shown"] and mine[1][5] == queued[1]["shown"]
    impressions.close()
    with engine.begin() as conn:
        conn.execute(delete(recommend_impressions))


@pytest.mark.parametrize(
    "bad",
    [
        (datetime(2026, 3, 9, 12, 0), "cy", "s1", True, "t", SHOWN),  # naive
        ("2026-03-09T12:00:00+00:00", "cy", "s1", True, "t", SHOWN),  # text, not a time
        (AT, "cy", "s1", True, "t"),  # a column short
        (),  # nothing at all
    ],
)
def test_a_bad_row_is_refused_by_add_and_nothing_is_queued(
    engine: Engine, bad: tuple[object, ...]
) -> None:
    """The caller that made the row hears of it; the queue never holds it."""
    impressions = ImpressionLog(engine, every_s=3600.0)
    with pytest.raises(ValueError, match=r"ts|columns"):
        impressions.add([(AT, "cz", "s1", True, "t", SHOWN), bad])
    assert impressions.pending() == 0  # the good row of the same call is not queued either
    impressions.close()
    assert _read(engine, "cy") == [] and _read(engine, "cz") == []


BAD_IN_QUEUE = [
    pytest.param((datetime(2026, 3, 9, 12, 0), "db", "s1", True, "t", SHOWN), id="naive"),
    pytest.param((AT, "db", "s1", True, "t", ((object(), 0.5),)), id="item-not-json"),
    pytest.param((AT, None, "s1", True, "t", SHOWN), id="no-customer"),  # failed the sort
    pytest.param((AT, "d\x00b", "s1", True, "t", SHOWN), id="nul-in-id"),  # PostgreSQL: DataError
    pytest.param((AT, "db", "s" * 129, True, "t", SHOWN), id="id-too-long"),
    pytest.param((AT, "db", "s1", "yes", "t", SHOWN), id="flag-not-bool"),
    pytest.param((AT, "db", "s1", True, "t", (("te\x00a", 0.5),)), id="nul-in-item"),
    pytest.param(  # astimezone overflows (a review): not ValueError
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), "db", "s1", True, "t", SHOWN),
        id="year-1",
    ),
]


@pytest.mark.parametrize("bad", BAD_IN_QUEUE)
def test_a_bad_row_already_queued_does_not_hold_the_others(
    engine: Engine, caplog: pytest.LogCaptureFixture, bad: tuple[object, ...]
) -> None:
    """A row that got past ``add`` is dropped at the write, counted in the log without
    its values; the rows around it are written (the whole batch used to fail and go
    back to the queue, every second, for good; then, once the queue was full, every
    request's own write raised)."""
    impressions = ImpressionLog(engine, every_s=3600.0)
    impressions.add([(AT, "da", "s1", True, "t", SHOWN)])
    impressions._rows.append(bad)
    impressions.add([(AT, "dd", "s1", False, "t", SHOWN)])
    with caplog.at_level("ERROR", logger="storelens.recommend.impression_log"):
        assert impressions.flush() == 3  # taken from the queue: two written, one dropped
    assert impressions.pending() == 0
    assert [len(_read(engine, c)) for c in ("da", "db", "dd")] == [1, 0, 1]
    assert "1 impression row(s) could not be stored" in caplog.text
    assert "db" not in caplog.text and "s" * 129 not in caplog.text
    impressions.close()
    with engine.begin() as conn:
        conn.execute(delete(recommend_impressions))


def test_stored_timestamps_are_the_same_text_as_the_orms(engine: Engine) -> None:
    """Range queries compare SQLite's stored text: the writer's own formatting of the
    time must be byte for byte what SQLAlchemy writes, microseconds or none."""
    times = [AT, datetime(2026, 1, 1, tzinfo=UTC), datetime(999, 1, 1, 0, 0, 0, 5, tzinfo=UTC)]
    impressions = ImpressionLog(engine, every_s=3600.0)
    impressions.add([(t, "ea", "s1", True, "t", SHOWN) for t in times])
    impressions.close()
    with engine.begin() as conn:
        evidence.log_impressions(conn, [
            {"ts": t, "customer_id": "eb", "store_id": "s1", "personalized": True,
             "actor": "t", "shown": shown_document(SHOWN)}
            for t in times
        ])  # fmt: skip
        sql = text(
            "SELECT CAST(ts AS TEXT) FROM recommend_impressions WHERE customer_id = :c ORDER BY id"
        )
        raw = {c: list(conn.execute(sql, {"c": c}).scalars()) for c in ("ea", "eb")}
        conn.execute(delete(recommend_impressions))
    assert raw["ea"] == raw["eb"] and len(raw["ea"]) == 3


def test_rows_by_name_and_by_position_are_the_same(engine: Engine) -> None:
    impressions = ImpressionLog(engine, every_s=3600.0)
    row = (AT, "dee", "s1", True, "t", (("tea", 0.5),))
    impressions.add([dict(zip(COLUMNS, row, strict=True))])
    impressions.add([(AT, "dee", "s1", False, "t", (("jam", 0.25),))])
    impressions.close()
    assert [r[5][0]["product_id"] for r in _read(engine, "dee")] == ["tea", "jam"]
    with pytest.raises(KeyError):
        impressions.add([{"ts": AT, "customer_id": "eve"}])  # a column missing


def test_a_batch_goes_in_multi_row_statements_with_the_same_rows(engine: Engine) -> None:
    """One statement per CHUNK_ROWS rows, not one driver step per row: under load the
    driver's GIL release around each step made the writer wait for the GIL per row."""
    statements: list[bool] = []

    def seen(_c: object, _cur: object, sql: str, _p: object, _ctx: object, many: bool) -> None:
        if "recommend_impressions" in sql and sql.lstrip().upper().startswith("INSERT"):
            statements.append(many)

    impressions = ImpressionLog(engine, every_s=3600.0)  # written by the flush below
    n = CHUNK_ROWS * 2 + 7  # two full chunks and a remainder
    rows = [(AT, "chunked", "cafe-01", i % 2 == 0, "staff", ((f"p{i}", i / n), ("x", 0.0)))
            for i in range(n)]  # fmt: skip
    impressions.add(rows)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert impressions.flush() == n
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    impressions.close()
    assert statements == [False, False, False]
    stored = _read(engine, "chunked")
    assert [(r[5][0]["product_id"], r[5][1]["rank"], r[3]) for r in stored] == [
        (f"p{i}", 2, i % 2 == 0) for i in range(n)
    ]
    assert [r[5][0]["confidence"] for r in stored] == pytest.approx([i / n for i in range(n)])


def test_a_write_goes_in_customer_order_each_customers_rows_in_theirs(engine: Engine) -> None:
    """Customer order walks the (customer, time) index once per write instead of
    landing each row elsewhere in it; a customer's own rows keep the order shown."""
    impressions = ImpressionLog(engine, every_s=3600.0)
    came = [("zed", "p1"), ("amy", "p2"), ("zed", "p3"), ("mo", "p4"), ("amy", "p5")]
    impressions.add([(AT + timedelta(seconds=i), who, "s1", True, "t", ((product, 0.5),))
                     for i, (who, product) in enumerate(came)])  # fmt: skip
    assert impressions.flush() == len(came)
    impressions.close()
    with engine.connect() as conn:
        stored = conn.execute(
            select(recommend_impressions.c.customer_id, recommend_impressions.c.shown)
            .where(recommend_impressions.c.customer_id.in_(["zed", "amy", "mo"]))
            .order_by(recommend_impressions.c.id)
        ).all()  # fmt: skip
    assert [(who, shown[0]["product_id"]) for who, shown in stored] == [
        ("amy", "p2"), ("amy", "p5"), ("mo", "p4"), ("zed", "p1"), ("zed", "p3"),
    ]  # fmt: skip


def test_a_burst_wakes_the_writer_before_its_interval(engine: Engine) -> None:
    """``write_at`` queued rows are written without waiting out ``every_s`` (an hour
    here): requests write their own rows only past the bound, not at each interval."""
    impressions = ImpressionLog(engine, every_s=3600.0, max_rows=100, write_at=5)
    impressions.add([(AT, "burst", "s1", True, "t", SHOWN)] * 5)
    for _ in range(2000):  # until the writer thread has written them (bounded; not timed)
        if len(_read(engine, "burst")) == 5:
            break
        threading.Event().wait(0.005)
    assert len(_read(engine, "burst")) == 5 and impressions.pending() == 0
    impressions.close()


def test_the_settings_bound_the_queue(engine: Engine) -> None:
    settings = Settings(recommend_impressions_every_s=30.0, recommend_impressions_max_queued=7)
    reco = RecommendationEngine(engine, settings, MemoryCandidates(600))
    assert not reco.impressions.full(7) and reco.impressions.full(8)
    reco.close()
