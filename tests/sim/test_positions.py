from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storelens.sim import default_layout_path, run_simulation
from storelens.sim.positions import POSITION_SCHEMA


def test_positions_follow_the_tracks(tmp_path: Path) -> None:
    summary = run_simulation(default_layout_path(), 1, 3, tmp_path, positions_fps=1)
    assert summary.positions_path == tmp_path / "positions.parquet"
    table = pq.read_table(summary.positions_path)
    assert table.schema.equals(POSITION_SCHEMA)
    stamps = table.column("ts").cast(pa.int64()).to_pylist()
    assert stamps == sorted(stamps) and all(t % 1000 == 0 for t in stamps)

    truth = json.loads(summary.truth_path.read_text())
    staff = set(truth["staff_tracks"])
    visits = {v["track_id"] for v in truth["visits"]}
    tracks = set(table.column("track_id").to_pylist())
    assert tracks == staff | visits
    flagged = pc.filter(table.column("track_id"), table.column("is_staff")).to_pylist()
    assert set(flagged) == staff

    # Every 15 s track point in the events is one of the 1 fps positions, to the centimetre.
    rows = {
        (t, track): (x, y, zone)
        for t, track, x, y, zone in zip(
            stamps,
            table.column("track_id").to_pylist(),
            table.column("x").to_pylist(),
            table.column("y").to_pylist(),
            table.column("zone_id").to_pylist(),
            strict=True,
        )
    }
    checked = 0
    for line in summary.events_path.open():
        event = json.loads(line)
        if event["type"] == "vision.track":
            payload = event["payload"]
            key = (
                round(datetime.fromisoformat(event["ts"]).timestamp() * 1000),
                payload["track_id"],
            )
            assert rows[key][:2] == (payload["x"], payload["y"])
            checked += 1
    assert checked > 1000
