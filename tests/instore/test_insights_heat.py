"""Heat density averaged over periods, the pictures, and the self-contained HTML report."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from storelens.core.layout import load_layout
from storelens.instore.insights import store_insights
from storelens.instore.insights_heat import (
    HeatSample,
    average_density,
    density_png,
    heat_sample,
    side_by_side_png,
)
from storelens.instore.insights_html import insights_html
from storelens.instore.zone_traffic import FloorZone, SaleLine
from storelens.samples import sample_layout_path

TZ = "Europe/Berlin"
BERLIN = ZoneInfo(TZ)


def grid(hour: int, minute: int, values: list[float], camera: str = "cam-a") -> HeatSample:
    payload = {"period_s": 900, "cell_m": 0.5, "rows": 1, "cols": 2, "values": values,
               "camera_id": camera}  # fmt: skip
    return heat_sample(datetime(2026, 11, 2, hour, minute, tzinfo=BERLIN), payload)


def test_density_is_person_seconds_over_observed_time_and_cell_area() -> None:
    samples = [
        grid(8, 15, [900, 0]),
        grid(8, 15, [0, 450], camera="cam-b"),  # same period, another camera: time counts once
        grid(13, 15, [1800, 0]),
    ]
    whole = average_density(samples, timezone=TZ, label="day")
    assert whole is not None
    assert np.allclose(whole.people_per_m2, [[6.0, 1.0]])  # 2700 and 450 p-s / 1800 s / 0.25 m2
    assert (whole.hours, whole.samples) == (0.5, 3)
    midday = average_density(samples, timezone=TZ, label="midday", daypart="midday")
    assert midday is not None and np.allclose(midday.people_per_m2, [[8.0, 0.0]])
    assert average_density(samples, timezone=TZ, label="x", daypart="evening") is None
    assert whole.summary()["peak_people_per_m2"] == 6.0


def test_pictures_are_pngs_of_the_floor_and_two_periods_share_a_scale() -> None:
    layout = load_layout(sample_layout_path())  # the café, 14 x 9 m
    rows, cols = 36, 56
    values = np.zeros(rows * cols)
    values[10 * cols + 30] = 3600.0
    payload = {"period_s": 3600, "cell_m": 0.25, "rows": rows, "cols": cols}
    morning = heat_sample(datetime(2026, 11, 2, 9, tzinfo=BERLIN), {**payload, "values": values})
    density = average_density([morning], timezone=TZ, label="Morning")
    assert density is not None
    png = density_png(layout, density)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    import cv2

    one = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    both = cv2.imdecode(
        np.frombuffer(side_by_side_png(layout, density, density), np.uint8), cv2.IMREAD_COLOR
    )
    assert one is not None and both is not None
    assert one.shape[1] == 14 * 40 + 32  # the floor at 40 px per metre and its margins
    assert both.shape[1] == 2 * (520 + 32) + 12  # each floor fitted into 520 px


def test_the_staff_only_bar_is_grey_and_named_so_not_blank_like_an_empty_floor() -> None:
    """Heat is not counted behind the bar (vision.heatmap); drawn white, it read as
    "nobody there". It is grey, and labelled and captioned as staff only."""
    import cv2

    from storelens.instore.insights_heat import STAFF_GREY

    layout = load_layout(sample_layout_path())  # the bar: x 5.5-14 m, y 0-2.2 m
    rows, cols = 36, 56
    payload = {"period_s": 3600, "cell_m": 0.25, "rows": rows, "cols": cols,
               "values": np.ones(rows * cols)}  # fmt: skip
    density = average_density(
        [heat_sample(datetime(2026, 11, 2, 9, tzinfo=BERLIN), payload)], timezone=TZ, label="x"
    )
    assert density is not None
    png = density_png(layout, density, px_per_m=40)
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    margin, head = 16, 40
    bar = image[head + 60, margin + 480]  # 1.5 m down, 12 m across: inside the bar
    floor = image[head + 240, margin + 320]  # 6 m down, 8 m across: the seating
    assert tuple(int(v) for v in bar) == STAFF_GREY
    assert tuple(int(v) for v in floor) != STAFF_GREY


def test_html_report_is_one_file_with_nothing_to_fetch() -> None:
    zones = [FloorZone("shelf", "Shelf <A>", "fixture", 4.0)]
    insights = store_insights(
        store_id="s1",
        store_name="Shop & Co",
        timezone=TZ,
        since=datetime(2026, 11, 2, tzinfo=BERLIN),
        until=datetime(2026, 11, 3, tzinfo=BERLIN),
        zones=zones,
        visits=[],
        sales=[SaleLine(datetime(2026, 11, 2, 9, tzinfo=BERLIN), "p", 1, 2.0)],
        product_zones={"p": "shelf"},
    )
    page = insights_html(insights, [("Morning heat", b"\x89PNG-bytes")])
    assert "<title>Shop &amp; Co: store insights, 2026-11-02 to 2026-11-02</title>" in page
    assert "Shelf &lt;A&gt;" in page and "Shelf <A>" not in page
    assert 'src="data:image/png;base64,iVBORy1ieXRlcw=="' in page
    assert "<svg" in page
    links = re.findall(r"""(?:src|href)=["']([^"']+)""", page)
    assert links == ["data:image/png;base64,iVBORy1ieXRlcw=="]
    assert "<script" not in page


@pytest.mark.parametrize("daypart", ["morning", None])
def test_grids_of_another_shape_are_left_out(daypart: str | None) -> None:
    a = grid(8, 15, [900, 0])
    b = heat_sample(
        datetime(2026, 11, 2, 8, 30, tzinfo=BERLIN),
        {"period_s": 900, "cell_m": 0.5, "rows": 1, "cols": 1, "values": [5.0]},
    )
    density = average_density([a, b], timezone=TZ, label="x", daypart=daypart)
    assert density is not None and density.samples == 1


def test_one_stray_grid_first_does_not_shadow_the_cameras_that_agree() -> None:
    """The first grid's shape used to decide: one 1 x 1 grid stamped at opening (a
    misconfigured camera, or any key of the store) dropped every real grid of the day."""
    stray = heat_sample(
        datetime(2026, 11, 2, 8, 0, tzinfo=BERLIN),
        {"period_s": 900, "cell_m": 0.5, "rows": 1, "cols": 1, "values": [99_999.0]},
    )
    real = [grid(8, 15, [900, 0]), grid(8, 30, [0, 900], camera="cam-b")]
    density = average_density([stray, *real], timezone=TZ, label="x")
    assert density is not None
    assert (density.people_per_m2.shape, density.samples) == ((1, 2), 2)
    assert np.allclose(density.people_per_m2, [[2.0, 2.0]])  # 900 p-s / 1800 s / 0.25 m2
