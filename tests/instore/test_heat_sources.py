"""One heat-grid source cannot outweigh the others in a store's heatmap.

An attacker review found that grids were summed as they came: any key allowed to send
``vision.heatmap`` for a store could resend one grid fifty times (fifty times the
heat), claim millions of person-seconds in a cell, stretch "observed time" with grids
stamped a second apart (everyone else's heat diluted), or send many grids of another
shape and so win the "most grids" vote that drops every camera's grid. Each source now
has one vote per period, the shape is voted by sources (or fixed by the floor plan),
overlapping grids of a source are left out, and no cell reads more people per m² than
one grid may claim.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pydantic import ValidationError

from storelens.core.events import HeatmapGrid, heat_cell_limit
from storelens.core.layout import Floor
from storelens.instore.insights_heat import HeatSample, average_density, heat_sample

TZ = "Europe/Berlin"
BERLIN = ZoneInfo(TZ)
END = datetime(2026, 11, 2, 8, 15, tzinfo=BERLIN)
FLOOR = Floor(width_m=1.0, height_m=0.5)  # one row of two 0.5 m cells


def grid(
    values: list[float],
    *,
    source: str = "vision",
    camera: str | None = None,
    end: datetime = END,
    period_s: float = 900,
    rows: int = 1,
) -> HeatSample:
    payload = {"period_s": period_s, "cell_m": 0.5, "rows": rows,
               "cols": len(values) // rows, "values": values}  # fmt: skip
    if camera is not None:
        payload["camera_id"] = camera
    return heat_sample(end, payload, source=source)


def density(samples: list[HeatSample], floor: Floor | None = None) -> list[float]:
    heat = average_density(samples, timezone=TZ, label="day", floor=floor)
    assert heat is not None
    return [round(float(v), 6) for v in heat.people_per_m2.ravel()]


def test_resending_one_grid_counts_it_once() -> None:
    cameras = [grid([450, 0], camera="cam-a"), grid([0, 225], camera="cam-b")]
    honest = density(cameras)
    assert honest == [2.0, 1.0]  # 450 p-s / 900 s / 0.25 m²; cameras still add up
    flood = [grid([450, 0], camera="cam-a") for _ in range(50)]  # new ids, same period
    assert density([*cameras, *flood]) == honest  # was 51 times cam-a's heat


def test_a_source_is_its_sender_and_camera() -> None:
    """Two cameras behind one sender are two sources; one camera is one, however often."""
    a, b = grid([450, 0], camera="cam-a"), grid([0, 450], camera="cam-b")
    assert density([a, b]) == [2.0, 2.0]
    a_again = grid([450, 450], camera="cam-a")  # the same camera's other grid for the period
    assert density([a, a_again]) == [2.0, 2.0]  # one vote: the larger reading per cell


def test_many_grids_of_another_shape_do_not_drop_the_cameras() -> None:
    cameras = [grid([450, 0], camera="cam-a"), grid([0, 225], camera="cam-b")]
    stray = [grid([900], source="rogue", end=END - timedelta(minutes=15 * i)) for i in range(5)]
    assert density([*cameras, *stray]) == [2.0, 1.0]  # sources vote, not grids
    # one rogue source against one camera: the floor plan decides
    alone = [grid([450, 0], camera="cam-a"), stray[0]]
    assert density(alone, FLOOR) == [2.0, 0.0]
    assert average_density(stray, timezone=TZ, label="day", floor=FLOOR) is None


def test_no_cell_reads_more_people_than_a_grid_may_claim() -> None:
    """Grids stored before the schema bound (or read from an old log) are clipped."""
    limit = heat_cell_limit(0.5)  # people one 0.5 m cell may hold at once
    huge = HeatSample(END, 900, 0.5, np.array([[1e12, 0.0]]), "rogue")
    camera = grid([0, 450], camera="cam-a")
    assert density([huge, camera]) == [round(limit / 0.25, 6), 2.0]


def test_overlapping_grids_of_one_source_neither_add_heat_nor_dilute_others() -> None:
    camera = grid([450, 0], camera="cam-a")
    # a grid every second, each claiming the quarter hour before it
    spray = [grid([0, 900], source="rogue", end=END + timedelta(seconds=s)) for s in range(1, 61)]
    heat = average_density([camera, *spray], timezone=TZ, label="day")
    assert heat is not None
    assert heat.hours == pytest.approx(901 / 3600)  # was 61 quarter hours of "observed" time
    assert heat.people_per_m2.ravel() == pytest.approx([450 / 901 / 0.25, 900 / 901 / 0.25])
    assert heat.samples == 2  # cam-a's vote and the rogue's first


def test_a_grid_may_not_claim_more_people_in_a_cell_than_fit() -> None:
    limit = heat_cell_limit(0.5) * 900
    HeatmapGrid(period_s=900, cell_m=0.5, rows=1, cols=2, values=[limit, 0])
    with pytest.raises(ValidationError) as caught:
        HeatmapGrid(period_s=900, cell_m=0.5, rows=1, cols=2, values=[0, limit * 1.01])
    [error] = caught.value.errors()
    assert error["loc"] == ("values",)
    assert error["type"] == "heat_cell_limit"
    assert "cell 1" in error["msg"] and "0.5 m cell" in error["msg"]


def test_a_camera_period_a_frame_longer_than_its_slot_still_counts() -> None:
    """Periods are counted in frames: one may start a frame before the last one ended."""
    first = grid([450, 0], camera="cam-a", period_s=900.2)
    second = grid([450, 0], camera="cam-a", end=END + timedelta(minutes=15), period_s=900.2)
    heat = average_density([first, second], timezone=TZ, label="day")
    assert heat is not None and heat.samples == 2
    assert heat.hours == pytest.approx(1800.2 / 3600)
