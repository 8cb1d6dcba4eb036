"""``positions.parquet``: every person's floor position at a camera-like frame rate.

The vision pipeline renders synthetic frames from this file and scores its tracker
against it, so rows are sorted by time (one frame's people together) and use the same
paths as the sampled ``vision.track`` events. A day is written as one row group.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from storelens.sim.clock import SECOND
from storelens.sim.day import Track
from storelens.sim.paths import FloorPlan

__all__ = ["POSITION_SCHEMA", "PositionWriter"]

POSITION_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("ms", tz="UTC")),
        ("track_id", pa.string()),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("zone_id", pa.string()),
        ("is_staff", pa.bool_()),
    ]
)


_CHUNK_ROWS = 200_000


def _table(columns: dict[str, list[Any]]) -> pa.Table:
    """Arrow copies of the collected rows; the lists are emptied for the next chunk."""
    arrays = [
        pa.array(columns[field.name], pa.int64() if field.name == "ts" else field.type)
        for field in POSITION_SCHEMA
    ]
    arrays[0] = arrays[0].cast(POSITION_SCHEMA.field("ts").type)
    for values in columns.values():
        values.clear()
    return pa.Table.from_arrays(arrays, schema=POSITION_SCHEMA)


class PositionWriter:
    """Frame times are multiples of round(1000 / fps) ms, shared by everyone in the store."""

    def __init__(self, path: Path, floor: FloorPlan, fps: float) -> None:
        if fps <= 0:
            raise ValueError("positions_fps must be positive")
        self.path = path
        self.step_ms = max(1, round(SECOND / fps))
        self._floor = floor
        self._writer = pq.ParquetWriter(path, POSITION_SCHEMA, compression="zstd")

    def write_day(self, tracks: Sequence[Track]) -> None:
        """Sort the day's rows by time; Python lists are turned into Arrow chunk by chunk."""
        chunks: list[pa.Table] = []
        columns: dict[str, list[Any]] = {name: [] for name in POSITION_SCHEMA.names}
        ts, ids, xs, ys = columns["ts"], columns["track_id"], columns["x"], columns["y"]
        zones, staff = columns["zone_id"], columns["is_staff"]
        for track in tracks:
            before = len(ts)
            for ms, x, y, zone_id in self._floor.sample(track.track_id, track.stays, self.step_ms):
                ts.append(ms)
                xs.append(x)
                ys.append(y)
                zones.append(zone_id)
            added = len(ts) - before
            ids.extend([track.track_id] * added)
            staff.extend([track.staff] * added)
            if len(ts) >= _CHUNK_ROWS:
                chunks.append(_table(columns))
        chunks.append(_table(columns))
        day = pa.concat_tables(chunks)
        self._writer.write_table(day.sort_by([("ts", "ascending"), ("track_id", "ascending")]))

    def close(self) -> None:
        self._writer.close()
