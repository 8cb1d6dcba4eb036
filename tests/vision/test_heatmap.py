"""Floor heatmaps: person-seconds per cell, the event payload, and the picture."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from storelens.core.events import HeatmapGrid
from storelens.core.layout import load_layout
from storelens.sim.run import default_layout_path
from storelens.vision.heatmap import (
    FloorHeatmap,
    HeatGrid,
    day_heatmap,
    render_heatmap,
    save_heatmap_png,
)

CAFE = load_layout(default_layout_path())  # 14 x 9 m


def test_grid_shape_covers_the_floor_without_rounding_noise() -> None:
    heat = FloorHeatmap(14.0, 9.0, cell_m=0.25)
    assert (heat.rows, heat.cols) == (36, 56)
    odd = FloorHeatmap(1.0, 0.7, cell_m=0.3)  # partial last cells still exist
    assert (odd.rows, odd.cols) == (3, 4)
    assert (FloorHeatmap.for_layout(CAFE, 0.5).rows, FloorHeatmap.for_layout(CAFE, 0.5).cols) == (
        18,
        28,
    )


def test_sum_of_cells_equals_person_seconds_added_on_the_floor() -> None:
    heat = FloorHeatmap(14.0, 9.0)
    rng = np.random.default_rng(3)
    for _ in range(50):
        heat.add(rng.uniform([0, 0], [14, 9], size=(7, 2)), 0.2)
    grid = heat.flush()
    assert grid.values.sum() == pytest.approx(50 * 7 * 0.2)
    assert grid.period_s == pytest.approx(10.0)
    assert (grid.rows, grid.cols) == (36, 56)


def test_the_bar_stays_blank_and_the_floor_keeps_its_time() -> None:
    """A barista's eight hours behind the bar were the café map's hottest spot; the
    layout's staff-only zones now add nothing, and customers' cells keep every second."""
    bar = next(z for z in CAFE.zones if z.kind == "staff_only")  # x 5.5-14, y 0-2.2
    heat = FloorHeatmap.for_layout(CAFE)
    heat.add([[9.0, 1.0], [9.0, 6.0], [2.0, 1.0]], 10.0)  # behind the bar, seat, door
    grid = heat.flush()
    assert grid.values.sum() == pytest.approx(20.0)
    assert grid.values[int(1.0 / 0.25), int(9.0 / 0.25)] == 0  # in the bar
    assert grid.values[int(6.0 / 0.25), int(9.0 / 0.25)] == 10.0
    assert grid.period_s == pytest.approx(10.0)
    assert bar.id == "bar"
    plain = FloorHeatmap(CAFE.floor.width_m, CAFE.floor.height_m)  # no layout: all counted
    plain.add([[9.0, 1.0]], 10.0)
    assert plain.flush().values.sum() == pytest.approx(10.0)


def test_points_land_in_the_right_cell_including_the_far_walls() -> None:
    heat = FloorHeatmap(2.0, 1.0, cell_m=0.5)
    heat.add([[0.1, 0.1], [1.9, 0.9], [2.0, 1.0], [0.5, 0.5], [0.0, 0.0]], 1.0)
    values = heat.flush().values
    assert values.tolist() == [[2.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 2.0]]


def test_points_off_the_floor_are_ignored_not_clipped_into_edge_cells() -> None:
    heat = FloorHeatmap(14.0, 9.0)
    heat.add([[-0.5, 4.0], [14.2, 4.0], [3.0, -0.01], [3.0, 9.5], [3.0, 4.0]], 2.0)
    grid = heat.flush()
    assert grid.values.sum() == pytest.approx(2.0)  # only the one person on the floor
    assert grid.values[:, 0].sum() == 0 and grid.values[:, -1].sum() == 0
    assert grid.values[0, :].sum() == 0 and grid.values[-1, :].sum() == 0
    assert grid.values[16, 12] == pytest.approx(2.0)


def test_flush_starts_a_new_period_and_accepts_an_explicit_period() -> None:
    heat = FloorHeatmap(4.0, 4.0, cell_m=1.0)
    heat.add([[1.5, 1.5]], 3.0)
    heat.add(np.zeros((0, 2)), 2.0)  # an empty frame is still time that passed
    first = heat.flush()
    assert first.period_s == pytest.approx(5.0)
    heat.add([[2.5, 2.5]], 1.0)
    second = heat.flush(period_s=60.0)
    assert second.period_s == 60.0
    assert second.values[1, 1] == 0 and second.values[2, 2] == pytest.approx(1.0)
    assert first.values[1, 1] == pytest.approx(3.0)  # flushed grids are not reused


def test_nothing_added_cannot_be_flushed() -> None:
    with pytest.raises(ValueError, match="period must be positive"):
        FloorHeatmap(4.0, 4.0).flush()


@pytest.mark.parametrize(
    ("xy", "dt", "message"),
    [
        ([[np.nan, 1.0]], 0.2, "finite"),
        ([[1.0, np.inf]], 0.2, "finite"),
        ([1.0, 2.0], 0.2, r"shape \(N, 2\)"),
        ([[1.0, 1.0]], -0.2, "dt_s"),
        ([[1.0, 1.0]], float("nan"), "dt_s"),
    ],
)
def test_bad_input_is_refused_and_adds_nothing(xy: object, dt: float, message: str) -> None:
    heat = FloorHeatmap(4.0, 4.0)
    heat.add([[1.0, 1.0]], 1.0)
    with pytest.raises(ValueError, match=message):
        heat.add(xy, dt)  # type: ignore[arg-type]
    grid = heat.flush()
    assert grid.values.sum() == pytest.approx(1.0) and grid.period_s == pytest.approx(1.0)


@pytest.mark.parametrize(("w", "h", "cell"), [(0.0, 4.0, 0.25), (4.0, -1.0, 0.25), (4, 4, 0)])
def test_bad_floor_sizes_are_refused(w: float, h: float, cell: float) -> None:
    with pytest.raises(ValueError, match="positive number of metres"):
        FloorHeatmap(w, h, cell)


def test_grid_round_trips_through_the_event_payload() -> None:
    heat = FloorHeatmap(2.0, 1.0, cell_m=0.5)
    heat.add([[1.9, 0.1]], 4.0)
    grid = heat.flush()
    payload = grid.to_payload(camera_id="cam-entrance")
    assert isinstance(payload, HeatmapGrid)
    assert (payload.rows, payload.cols, payload.cell_m) == (2, 4, 0.5)
    assert payload.values == [0, 0, 0, 4.0, 0, 0, 0, 0]  # row-major from the top-left
    back = HeatGrid.from_payload(payload)
    assert np.array_equal(back.values, grid.values) and back.period_s == grid.period_s


def test_day_heatmap_weights_periods_by_their_length() -> None:
    heat = FloorHeatmap(2.0, 2.0, cell_m=1.0)
    heat.add([[0.5, 0.5]], 3600.0)  # one person all hour in the top-left cell
    full = heat.flush()
    heat.add([[1.5, 1.5]], 600.0)  # a short last period: ten minutes elsewhere
    short = heat.flush()
    day = day_heatmap([full, short])
    assert day.period_s == pytest.approx(4200.0)
    assert day.values.sum() == pytest.approx(4200.0)
    assert day.average_people[0, 0] == pytest.approx(3600 / 4200)
    assert day.average_people[1, 1] == pytest.approx(600 / 4200)


def test_day_heatmap_refuses_mismatched_or_missing_grids() -> None:
    a = HeatGrid(60.0, 0.25, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="grid 1 is 4x5"):
        day_heatmap([a, HeatGrid(60.0, 0.25, np.zeros((4, 5)))])
    with pytest.raises(ValueError, match="grid 1"):
        day_heatmap([a, HeatGrid(60.0, 0.5, np.zeros((4, 4)))])
    with pytest.raises(ValueError, match="no heatmap grids"):
        day_heatmap([])


def cafe_grid() -> HeatGrid:
    heat = FloorHeatmap.for_layout(CAFE)
    for _ in range(300):  # a queue of three for a minute, and one table
        heat.add([[3.0, 2.9], [3.6, 2.9], [4.2, 2.9], [8.0, 7.0]], 0.2)
    return heat.flush()


def test_render_draws_heat_where_people_were_and_leaves_empty_floor_clear() -> None:
    image = render_heatmap(CAFE, cafe_grid(), px_per_m=40)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    top, left = 46, 20  # the floor's corner in the picture, below the title
    assert image.shape[1] == 14 * 40 + 2 * left
    queue = image[top + round(2.9 * 40), left + round(3.6 * 40)]
    empty = image[top + round(8.5 * 40), left + round(12.5 * 40)]
    assert empty.tolist() == [255, 255, 255]  # nobody there: the plain floor
    assert not np.array_equal(queue, [255, 255, 255])
    assert int(queue.max()) - int(queue.min()) > 60  # a real colour, not a grey line


def test_render_uses_the_floor_plan_picture_underneath() -> None:
    picture = np.zeros((90, 140, 3), dtype=np.uint8)
    picture[:] = (0, 0, 200)  # a red plan
    grid = HeatGrid(60.0, 0.25, np.zeros((36, 56)))
    image = render_heatmap(CAFE, grid, floor_image=picture, px_per_m=40)
    sample = image[46 + 340, 20 + 500]
    assert sample[2] > 150 and sample[0] < 150  # reddish: the plan shows through


def test_render_refuses_a_grid_for_another_floor() -> None:
    with pytest.raises(ValueError, match="cafe-01's floor"):
        render_heatmap(CAFE, HeatGrid(60.0, 0.25, np.zeros((10, 10))))
    with pytest.raises(ValueError, match="px_per_m"):
        render_heatmap(CAFE, HeatGrid(60.0, 0.25, np.zeros((36, 56))), px_per_m=0)


def test_save_heatmap_png_writes_a_readable_picture(tmp_path: Path) -> None:
    target = save_heatmap_png(tmp_path / "cafe.png", CAFE, cafe_grid(), px_per_m=30)
    image = cv2.imread(str(target))
    assert image is not None and image.shape == render_heatmap(CAFE, cafe_grid(), px_per_m=30).shape
    with pytest.raises(ValueError, match=r"\.png"):
        save_heatmap_png(tmp_path / "cafe.jpg", CAFE, cafe_grid())
    with pytest.raises(OSError, match="could not write"):
        save_heatmap_png(tmp_path / "missing" / "cafe.png", CAFE, cafe_grid())
