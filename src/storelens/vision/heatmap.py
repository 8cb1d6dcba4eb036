"""Where people spend time: person-seconds per floor cell, and a picture a manager can read.

The grid is anonymous by construction (no ids, only time per cell) and matches the
``vision.heatmap`` payload: row-major cells of ``cell_m`` metres from the plan's
top-left corner. Only :func:`render_heatmap` needs OpenCV, imported when called.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from storelens.core.errors import MissingExtra
from storelens.core.events import HeatmapGrid
from storelens.core.layout import StoreLayout, Zone, floor_grid
from storelens.vision.zone_map import ZoneMap

__all__ = [
    "FloorHeatmap",
    "HeatGrid",
    "day_heatmap",
    "render_heatmap",
    "save_heatmap_png",
    "staff_cells",
]

FloatArray = npt.NDArray[np.float64]
_EPS = 1e-9


@dataclass(frozen=True, eq=False)
class HeatGrid:
    """Person-seconds per cell over ``period_s``; ``values`` is (rows, cols)."""

    period_s: float
    cell_m: float
    values: FloatArray

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def cols(self) -> int:
        return int(self.values.shape[1])

    @property
    def average_people(self) -> FloatArray:
        """How many people stood in each cell on average over the period."""
        result: FloatArray = self.values / self.period_s
        return result

    def to_payload(self, camera_id: str | None = None) -> HeatmapGrid:
        return HeatmapGrid(
            period_s=self.period_s,
            cell_m=self.cell_m,
            rows=self.rows,
            cols=self.cols,
            values=self.values.ravel().tolist(),
            camera_id=camera_id,
        )

    @classmethod
    def from_payload(cls, payload: HeatmapGrid) -> HeatGrid:
        values = np.asarray(payload.values, dtype=np.float64).reshape(payload.rows, payload.cols)
        return cls(payload.period_s, payload.cell_m, values)


class FloorHeatmap:
    """Accumulates time spent per cell for one period; flush it to start the next."""

    def __init__(
        self,
        width_m: float,
        height_m: float,
        cell_m: float = 0.25,
        staff_only: Sequence[Zone] = (),
    ) -> None:
        self.rows, self.cols = floor_grid(width_m, height_m, cell_m)
        self.width_m, self.height_m, self.cell_m = width_m, height_m, cell_m
        self._values = np.zeros(self.rows * self.cols, dtype=np.float64)
        self._period_s = 0.0
        self._hidden = _cells_in(staff_only, self.rows, self.cols, cell_m)

    @classmethod
    def for_layout(cls, layout: StoreLayout, cell_m: float = 0.25) -> FloorHeatmap:
        """The floor of ``layout``, its staff-only zones left blank: time behind the bar
        or in the stockroom is staff at work, and was the hottest spot of a café's map
        (the baristas), drawing the eye away from where customers spend theirs."""
        staff = [z for z in layout.zones if z.kind == "staff_only"]
        return cls(layout.floor.width_m, layout.floor.height_m, cell_m, staff)

    def add(self, xy: npt.ArrayLike, dt_s: float) -> None:
        """People at ``xy`` (N, 2 metres) for ``dt_s`` seconds: one frame's worth of time.

        Points off the floor (the street outside the door) add nothing rather than piling
        up in the edge cells.
        """
        if not (math.isfinite(dt_s) and dt_s >= 0):
            raise ValueError(f"dt_s must be a finite number of seconds >= 0, got {dt_s!r}")
        points = np.asarray(xy, dtype=np.float64)
        if points.size == 0:
            points = points.reshape(0, 2)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"xy must have shape (N, 2), got {points.shape}")
        if not np.isfinite(points).all():
            raise ValueError("positions must be finite numbers of metres (got NaN or inf)")
        self._period_s += dt_s
        x, y = points[:, 0], points[:, 1]
        keep = (x >= -_EPS) & (x <= self.width_m + _EPS) & (y >= -_EPS)
        keep &= y <= self.height_m + _EPS
        if not keep.any() or dt_s == 0:
            return
        col = np.clip((x[keep] / self.cell_m).astype(np.int64), 0, self.cols - 1)
        row = np.clip((y[keep] / self.cell_m).astype(np.int64), 0, self.rows - 1)
        cells = np.bincount(row * self.cols + col, minlength=self._values.size)
        cells[self._hidden] = 0
        self._values += cells * dt_s

    def flush(self, period_s: float | None = None) -> HeatGrid:
        """The period's grid; ``period_s`` defaults to the frame time added since the last flush."""
        period = round(self._period_s, 6) if period_s is None else period_s
        if not (math.isfinite(period) and period > 0):
            raise ValueError(f"a heatmap period must be positive, got {period!r}; add frames first")
        grid = HeatGrid(period, self.cell_m, self._values.reshape(self.rows, self.cols).copy())
        self._values[:] = 0
        self._period_s = 0.0
        return grid


def staff_cells(layout: StoreLayout, rows: int, cols: int, cell_m: float) -> npt.NDArray[np.bool_]:
    """Cells (row-major) whose centre lies in a staff-only zone of ``layout``: left blank
    by every heatmap, the vision pipeline's and the simulator's alike."""
    return _cells_in([z for z in layout.zones if z.kind == "staff_only"], rows, cols, cell_m)


def _cells_in(zones: Sequence[Zone], rows: int, cols: int, cell_m: float) -> npt.NDArray[np.bool_]:
    """Cells (row-major) whose centre lies in any of ``zones``."""
    if not zones:
        return np.zeros(rows * cols, dtype=bool)
    r, c = np.divmod(np.arange(rows * cols), cols)
    centres = np.column_stack(((c + 0.5) * cell_m, (r + 0.5) * cell_m))
    return np.asarray(ZoneMap(zones).inside(centres).any(axis=1), dtype=bool)


def day_heatmap(grids: Sequence[HeatGrid]) -> HeatGrid:
    """Several periods as one: total person-seconds over their total time.

    ``average_people`` of the result is the day's average, each period weighted by its
    length, so a short last period does not count as much as a full one.
    """
    if not grids:
        raise ValueError("no heatmap grids to combine")
    first = grids[0]
    for i, grid in enumerate(grids[1:], start=1):
        if grid.values.shape != first.values.shape or grid.cell_m != first.cell_m:
            raise ValueError(
                f"grid {i} is {grid.rows}x{grid.cols} cells of {grid.cell_m} m; grid 0 is "
                f"{first.rows}x{first.cols} of {first.cell_m} m"
            )
    total = np.sum([grid.values for grid in grids], axis=0)
    return HeatGrid(sum(grid.period_s for grid in grids), first.cell_m, total)


def _ascii(text: str) -> str:
    """OpenCV's fonts draw only ASCII; 'Café' becomes 'Cafe' rather than 'Caf??'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode("ascii")


def _label(
    image: npt.NDArray[np.uint8], text: str, org: tuple[int, int], scale: float = 0.45
) -> None:
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (w, h), base = cv2.getTextSize(text, font, scale, 1)
    x, y = org
    cv2.rectangle(image, (x - 2, y - h - 3), (x + w + 2, y + base), (255, 255, 255), -1)
    cv2.putText(image, text, (x, y), font, scale, (40, 40, 40), 1, cv2.LINE_AA)


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return f"{seconds:.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def render_heatmap(
    layout: StoreLayout,
    grid: HeatGrid,
    *,
    floor_image: npt.NDArray[np.uint8] | None = None,
    px_per_m: float = 60,
) -> npt.NDArray[np.uint8]:
    """The floor plan with zones, count lines and the heat on top, as a BGR image."""
    try:
        import cv2
    except ImportError:
        raise MissingExtra("opencv-python", "vision") from None
    expected = floor_grid(layout.floor.width_m, layout.floor.height_m, grid.cell_m)
    if (grid.rows, grid.cols) != expected:
        raise ValueError(
            f"grid is {grid.rows}x{grid.cols} cells; {layout.store_id}'s floor in "
            f"{grid.cell_m} m cells is {expected[0]}x{expected[1]}"
        )
    if not (math.isfinite(px_per_m) and px_per_m > 0):
        raise ValueError(f"px_per_m must be positive, got {px_per_m!r}")
    fw, fh = round(layout.floor.width_m * px_per_m), round(layout.floor.height_m * px_per_m)
    margin, top, bottom = 20, 46, 84
    canvas = np.full((top + fh + bottom, fw + 2 * margin, 3), 235, dtype=np.uint8)
    floor = np.full((fh, fw, 3), 255, dtype=np.uint8)
    if floor_image is not None:
        picture = cv2.resize(floor_image, (fw, fh), interpolation=cv2.INTER_AREA)
        floor = np.asarray(
            cv2.addWeighted(picture, 0.55, floor, 0.45, 0), dtype=np.uint8
        )  # faded, so heat stands out
    colours, alpha, top_value = _heat_layer(grid, (fw, fh), px_per_m)
    blended = floor * (1 - alpha) + colours * alpha
    canvas[top : top + fh, margin : margin + fw] = blended.astype(np.uint8)
    cv2.rectangle(canvas, (margin, top), (margin + fw, top + fh), (60, 60, 60), 2)
    _draw_plan(canvas, layout, (margin, top), px_per_m)
    title = f"{_ascii(layout.name)}: where people spent time ({_duration(grid.period_s)})"
    cv2.putText(canvas, title, (margin, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.65, (30, 30, 30), 1,
                cv2.LINE_AA)  # fmt: skip
    _legend(canvas, top + fh + 18, margin, top_value)
    return canvas


def _heat_layer(
    grid: HeatGrid, size: tuple[int, int], px_per_m: float
) -> tuple[npt.NDArray[np.uint8], FloatArray, float]:
    """Colours, opacity and the value at the top of the scale, in minutes per m².

    The scale is a square root, so a walkway shows beside seats held for hours, and
    tops out at the 99th percentile so one staff spot cannot wash out the rest. Every
    cell anyone stood in gets some colour; empty floor stays clear.
    """
    import cv2

    width, height = size
    per_m2 = grid.values / (grid.cell_m * grid.cell_m) / 60.0
    positive = per_m2[per_m2 > 0]
    top_value = float(np.percentile(positive, 99)) if positive.size else 1.0
    level = np.sqrt(np.clip(per_m2 / top_value, 0, 1)).astype(np.float32)
    used = (per_m2 > 0).astype(np.float32)
    cells_px = (
        round(grid.cols * grid.cell_m * px_per_m),
        round(grid.rows * grid.cell_m * px_per_m),
    )
    sigma = max(grid.cell_m * px_per_m * 0.4, 0.5)
    layers = []
    for layer in (level, used):
        up = cv2.resize(layer, cells_px, interpolation=cv2.INTER_NEAREST)[:height, :width]
        up = np.pad(up, ((0, height - up.shape[0]), (0, width - up.shape[1])))
        layers.append(cv2.GaussianBlur(up, (0, 0), sigma))
    smooth, coverage = layers
    index = (_LOWEST + (255 - _LOWEST) * np.clip(smooth, 0, 1)).astype(np.uint8)
    colours = np.asarray(cv2.applyColorMap(index, cv2.COLORMAP_TURBO), dtype=np.uint8)
    alpha = np.where(coverage > 0.2, 0.45 + 0.4 * smooth, 0.0)[..., None].astype(np.float64)
    return colours, alpha, top_value


_LOWEST = 40  # skip turbo's near-black purple: the faintest heat should still read as blue


def _draw_plan(
    canvas: npt.NDArray[np.uint8], layout: StoreLayout, origin: tuple[int, int], px_per_m: float
) -> None:
    import cv2

    def px(point: tuple[float, float]) -> tuple[int, int]:
        return round(origin[0] + point[0] * px_per_m), round(origin[1] + point[1] * px_per_m)

    corners = []
    for zone in layout.zones:
        ring = np.array([px(p) for p in zone.polygon], dtype=np.int32)
        cv2.polylines(canvas, [ring], True, (90, 90, 90), 1, cv2.LINE_AA)
        corners.append((int(ring[:, 0].min()) + 5, int(ring[:, 1].min()) + 16))
    green = (0, 140, 0)
    for line in layout.lines:
        a, b = np.array(px(line.a), dtype=np.float64), np.array(px(line.b), dtype=np.float64)
        cv2.line(canvas, px(line.a), px(line.b), green, 3, cv2.LINE_AA)
        along = (b - a) / max(float(np.hypot(*(b - a))), 1.0)
        inward = np.array([along[1], -along[0]])  # the walker's left, y down: the "in" side
        middle = (a + b) / 2
        tip = middle + inward * 0.7 * px_per_m
        start, end = tuple(middle.astype(int).tolist()), tuple(tip.astype(int).tolist())
        cv2.arrowedLine(canvas, start, end, green, 2, cv2.LINE_AA, tipLength=0.3)
        _label(canvas, f"{_ascii(line.name)}: in", (int(tip[0]) + 6, int(tip[1]) + 5), 0.4)
    for zone, corner in zip(layout.zones, corners, strict=True):
        _label(canvas, _ascii(zone.name), corner, 0.4)


def _legend(canvas: npt.NDArray[np.uint8], y: int, x: int, top_value: float) -> None:
    import cv2

    width = min(360, canvas.shape[1] - 2 * x)
    ramp = np.linspace(_LOWEST, 255, width).astype(np.uint8)[None, :].repeat(14, axis=0)
    canvas[y : y + 14, x : x + width] = cv2.applyColorMap(ramp, cv2.COLORMAP_TURBO)
    cv2.rectangle(canvas, (x, y), (x + width, y + 14), (60, 60, 60), 1)
    unit, factor = ("minutes", 1.0) if top_value >= 1 else ("seconds", 60.0)
    for frac in (0.0, 0.5, 1.0):
        value = top_value * factor * frac * frac  # the colour scale is a square root
        text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
        text += "+" if frac == 1.0 else ""
        tx = x + round(frac * (width - 1)) - (0 if frac == 0 else 14 if frac == 0.5 else 30)
        cv2.putText(canvas, text, (tx, y + 30), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (40, 40, 40), 1,
                    cv2.LINE_AA)  # fmt: skip
    caption = f"{unit} spent per square metre (no colour: nobody stood there)"
    cv2.putText(canvas, caption, (x, y + 52), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (40, 40, 40), 1,
                cv2.LINE_AA)  # fmt: skip


def save_heatmap_png(
    path: str | Path,
    layout: StoreLayout,
    grid: HeatGrid,
    *,
    floor_image: npt.NDArray[np.uint8] | None = None,
    px_per_m: float = 60,
) -> Path:
    image = render_heatmap(layout, grid, floor_image=floor_image, px_per_m=px_per_m)
    import cv2

    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"{target} must end in .png")
    if not cv2.imwrite(str(target), image):
        raise OSError(f"could not write {target}")
    return target
