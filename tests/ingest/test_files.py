"""Event files: JSON Lines, CSV and Parquet; bad lines are reported by number, not dropped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine

from storelens.ingest.batch import ingest_numbered
from storelens.ingest.files import Unreadable, count_items, detect_format, read_items
from storelens.storage.eventlog import EventLog

RawEvent = Callable[..., dict[str, Any]]


def test_jsonl_bad_lines_keep_their_numbers(
    tmp_path: Path, engine: Engine, raw_event: RawEvent
) -> None:
    path = tmp_path / "events.jsonl"
    good = [raw_event() for _ in range(4)]
    lines = [
        json.dumps(good[0]),
        "{broken",
        json.dumps(good[1]),
        "",
        "[1, 2]",
        json.dumps(raw_event(ts="never")),
        json.dumps(good[2]),
        json.dumps(good[3]),
    ]
    path.write_text("\n".join(lines) + "\n")
    assert count_items(path) == 7
    report = ingest_numbered(EventLog(engine), read_items(path), batch_size=2)
    assert report.accepted == 4
    assert [(r.index, r.errors[0].loc) for r in report.rejected] == [
        (2, "(line)"),
        (5, "(line)"),
        (6, "ts"),
    ]
    assert "not valid JSON" in report.rejected[0].errors[0].msg
    again = ingest_numbered(EventLog(engine), read_items(path))
    assert again.accepted == 0 and again.duplicates == 4


def test_a_line_reusing_a_stored_id_for_another_event_is_rejected_on_its_line(
    tmp_path: Path, engine: Engine, raw_event: RawEvent
) -> None:
    """A later file whose event shares an id with a stored one from another store used to
    count it a duplicate; ``storelens ingest`` now rejects that line (and exits 1)."""
    stored = raw_event(store_id="cafe-01")
    ingest_numbered(EventLog(engine), enumerate([stored], start=1))
    path = tmp_path / "events.jsonl"
    rows = [raw_event(store_id="cafe-02"), {**stored, "store_id": "cafe-02"}, stored]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = ingest_numbered(EventLog(engine), read_items(path))
    assert (report.accepted, report.duplicates, report.conflicts) == (1, 1, 1)
    assert [(r.index, r.id, r.errors[0].type) for r in report.rejected] == [
        (2, stored["id"], "id_conflict")
    ]


def test_csv_with_payload_json_and_dotted_columns(
    tmp_path: Path, engine: Engine, raw_event: RawEvent
) -> None:
    a, b = raw_event(), raw_event("order.handed_off")
    path = tmp_path / "events.csv"
    path.write_text(
        "id,type,ts,store_id,source,payload,payload.order_id,payload.staff_id\n"
        f'{a["id"]},{a["type"]},{a["ts"]},cafe-01,pos,"{json.dumps(a["payload"]).replace(chr(34), chr(34) * 2)}",,\n'  # noqa: E501
        f"{b['id']},{b['type']},{b['ts']},cafe-01,kds,,o-1,barista-ana\n"
        "x,y,z,extra,columns,here,too,many,values\n"
    )
    report = ingest_numbered(EventLog(engine), read_items(path))
    assert report.accepted == 2
    assert [(r.index, r.errors[0].msg) for r in report.rejected] == [
        (4, "more values than header columns")
    ]
    stored = EventLog(engine).read_after(0)
    assert stored[1].payload == {"order_id": "o-1", "staff_id": "barista-ana"}


def test_parquet_round_trip(tmp_path: Path, engine: Engine, raw_event: RawEvent) -> None:
    rows = [raw_event() for _ in range(3)]
    table = pa.Table.from_pylist([{**r, "payload": json.dumps(r["payload"])} for r in rows])
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    assert count_items(path) == 3
    report = ingest_numbered(EventLog(engine), read_items(path))
    assert report.accepted == 3 and report.rejected == []


def test_unknown_format_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot tell the format"):
        detect_format(tmp_path / "events.xlsx")
    with pytest.raises(ValueError, match="unknown format"):
        read_items(tmp_path / "x.jsonl", "xml")


def test_non_object_json_line_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text("42\n")
    assert list(read_items(path)) == [(1, Unreadable("not a JSON object"))]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_header_without_the_envelope_is_refused_naming_the_columns(
    tmp_path: Path, fmt: str
) -> None:
    """A customer export given to ingest: one error naming what is missing, not a
    rejection per row that says "Unable to extract tag using discriminator 'type'"."""
    path = tmp_path / f"customers.{fmt}"
    if fmt == "csv":
        path.write_text("customer_id,email\nL1,a@example.org\n")
    else:
        pq.write_table(pa.table({"customer_id": ["L1"], "email": ["a@example.org"]}), path)
    with pytest.raises(ValueError, match=r"no column id, type, ts, source in the header"):
        list(read_items(path))


def test_an_empty_csv_counts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("")
    assert count_items(path) == 0 and list(read_items(path)) == []
