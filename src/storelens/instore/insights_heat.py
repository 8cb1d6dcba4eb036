"""Heatmaps for store insights: people per square metre over a day, week or daypart.

``vision.heatmap`` events carry person-seconds per floor cell for a short period
(see :mod:`storelens.vision.heatmap`); averaging them here is summing person-seconds
and dividing by the time covered and the cell's area, so a daypart of four hours and a
week of opening hours read in the same unit. Drawing uses OpenCV, like the vision
heatmap (the ``vision`` extra), imported only when a picture is asked for.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from storelens.core.dayparts import daypart_of_hour
from storelens.core.events import heat_cell_limit
from storelens.core.layout import Floor, StoreLayout

__all__ = [
    "HeatDensity",
    "HeatSample",
    "average_density",
    "density_png",
    "heat_sample",
    "scale_top",
    "side_by_side_png",
]

FloatArray = npt.NDArray[np.float64]
_OVERLAP_SHARE = 0.1  # of a grid's period that may overlap its source's previous grid


@dataclass(frozen=True, eq=False)
class HeatSample:
    """One ``vision.heatmap`` event: ``values`` person-seconds per cell over ``period_s``
    ending at ``ts``, from ``source`` (see :func:`heat_sample`)."""

    ts: datetime
    period_s: float
    cell_m: float
    values: FloatArray
    source: str = ""

    @property
    def middle(self) -> datetime:
        return self.ts - timedelta(seconds=self.period_s / 2)

    @property
    def start(self) -> datetime:
        return self.ts - timedelta(seconds=self.period_s)


def heat_sample(ts: datetime, payload: dict[str, Any], *, source: str = "") -> HeatSample:
    """``source`` is the envelope's; with the payload's ``camera_id`` it names who voted."""
    values = np.asarray(payload["values"], dtype=np.float64)
    camera = payload.get("camera_id")
    return HeatSample(
        ts,
        float(payload["period_s"]),
        float(payload["cell_m"]),
        values.reshape(int(payload["rows"]), int(payload["cols"])),
        f"{source}/{camera}" if camera else source,
    )


@dataclass(frozen=True, eq=False)
class HeatDensity:
    """Average people per m² in each cell over ``hours`` of observed time."""

    label: str
    cell_m: float
    people_per_m2: FloatArray
    hours: float
    samples: int

    @property
    def peak(self) -> float:
        return float(self.people_per_m2.max()) if self.people_per_m2.size else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "hours": round(self.hours, 2),
            "samples": self.samples,
            "cell_m": self.cell_m,
            "peak_people_per_m2": round(self.peak, 4),
            "mean_people_per_m2": round(float(self.people_per_m2.mean()), 5),
        }


def average_density(
    samples: Iterable[HeatSample],
    *,
    timezone: str,
    label: str,
    daypart: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    floor: Floor | None = None,
) -> HeatDensity | None:
    """The average over the samples whose middle falls in the window (and daypart).

    Several cameras report grids for the same period: their person-seconds add up, and
    the time they cover counts once. Any key allowed to send heat for a store can send
    grids, and summing whatever came let one of them outweigh every camera, so:

    * **One vote per source per period.** A source is the sender and its camera
      (:func:`heat_sample`). Its grids ending at the same moment are one vote, the
      larger reading per cell (a resent grid counts once, and two halves of a floor
      from one camera combine); a grid of a source overlapping its earlier one is left
      out, so a grid stamped every second adds neither heat nor "observed" time that
      would dilute everyone else's heat.
    * **Sources choose the shape.** Grids of another shape or cell size than most
      sources send (a misconfigured camera, a layout changed mid-period) are left out;
      counted by grids, fifty crafted ones outvoted every camera. Given the store's
      ``floor``, only grids that fit it count at all (ingest refuses the others, but the
      log may hold older ones).
    * **No cell holds more than fits.** A cell reads at most
      :func:`~storelens.core.events.heat_cell_limit` people per its area: what one grid
      may claim (ingest refuses more; older grids are clipped here).

    Identity is what devices say it is (the log does not keep which key sent an event),
    so a key can still pose as several cameras; what each can claim stays bounded.
    None when no sample matches.
    """
    tz = ZoneInfo(timezone)
    chosen: list[HeatSample] = []
    for s in samples:
        mid = s.middle
        if (since is not None and mid < since) or (until is not None and mid >= until):
            continue
        if daypart is not None and daypart_of_hour(mid.astimezone(tz).hour) != daypart:
            continue
        if floor is not None and s.values.shape != floor.grid(s.cell_m):
            continue
        chosen.append(s)
    if not chosen:
        return None
    by_source: dict[str, list[HeatSample]] = {}
    for s in chosen:
        by_source.setdefault(s.source, []).append(s)
    kinds = Counter(_usual_kind(grids) for grids in by_source.values())
    shape, cell_m = kinds.most_common(1)[0][0]  # ties: the one seen first
    votes = [
        vote
        for grids in by_source.values()
        for vote in _votes([s for s in grids if (s.values.shape, s.cell_m) == (shape, cell_m)])
    ]
    total: FloatArray = np.zeros(shape, dtype=np.float64)
    for vote in votes:
        total += vote.values
    seconds = _covered_seconds(votes)
    most = heat_cell_limit(cell_m) / (cell_m * cell_m)
    density: FloatArray = np.minimum(total / seconds / (cell_m * cell_m), most)
    return HeatDensity(label, cell_m, density, seconds / 3600, len(votes))


def _usual_kind(grids: Sequence[HeatSample]) -> tuple[tuple[int, ...], float]:
    """The (shape, cell size) a source sends most: its one vote on the store's grid."""
    return Counter((s.values.shape, s.cell_m) for s in grids).most_common(1)[0][0]


def _votes(grids: Sequence[HeatSample]) -> list[HeatSample]:
    """One source's grids as votes: one per period end (the larger reading per cell),
    none overlapping an earlier one by more than a tenth of its period (a camera's
    periods are counted in frames, so one may start a frame before the last ended;
    a grid stamped every second overlaps by almost all of it)."""
    votes: list[HeatSample] = []
    for s in sorted(grids, key=lambda g: g.ts):
        last = votes[-1] if votes else None
        if last is not None and s.ts == last.ts:
            merged = np.maximum(last.values, s.values)
            votes[-1] = HeatSample(s.ts, max(last.period_s, s.period_s), s.cell_m, merged, s.source)
        elif last is None or (last.ts - s.start).total_seconds() <= _OVERLAP_SHARE * s.period_s:
            votes.append(s)
    return votes


def _covered_seconds(votes: Iterable[HeatSample]) -> float:
    """Observed time: the union of the votes' periods, so cameras reporting the same
    quarter hour count it once and overlapping grids never add time."""
    seconds, end = 0.0, None
    for s in sorted(votes, key=lambda v: v.start):
        start = s.start if end is None else max(s.start, end)
        if s.ts > start:
            seconds += (s.ts - start).total_seconds()
        end = s.ts if end is None else max(end, s.ts)
    return seconds


def _ascii(text: str) -> str:
    """OpenCV's fonts draw only ASCII; 'Café' becomes 'Cafe' rather than 'Caf??'."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise RuntimeError(
            "drawing heatmaps needs OpenCV: pip install 'storelens[vision]'"
        ) from None
    return cv2


STAFF_GREY = (222, 222, 222)
"""Staff-only zones on the floor plan: no heat is counted there (``vision.heatmap``)."""


def _render(
    layout: StoreLayout, heat: HeatDensity, top: float, px_per_m: float
) -> npt.NDArray[np.uint8]:
    cv2 = _cv2()
    fw = round(layout.floor.width_m * px_per_m)
    fh = round(layout.floor.height_m * px_per_m)
    margin, head, foot = 16, 40, 76
    canvas = np.full((head + fh + foot, fw + 2 * margin, 3), 240, dtype=np.uint8)
    level = np.sqrt(np.clip(heat.people_per_m2 / top, 0, 1)).astype(np.float32)
    cells = cv2.resize(level, (fw, fh), interpolation=cv2.INTER_NEAREST)
    smooth = cv2.GaussianBlur(cells, (0, 0), max(heat.cell_m * px_per_m * 0.5, 0.5))
    index = (40 + 215 * np.clip(smooth, 0, 1)).astype(np.uint8)
    colours = cv2.applyColorMap(index, cv2.COLORMAP_TURBO).astype(np.float64)
    alpha = np.where(smooth > 0.02, 0.35 + 0.55 * smooth, 0.0)[..., None]
    floor = np.full((fh, fw, 3), 255.0)
    canvas[head : head + fh, margin : margin + fw] = (floor * (1 - alpha) + colours * alpha).astype(
        np.uint8
    )
    cv2.rectangle(canvas, (margin, head), (margin + fw, head + fh), (60, 60, 60), 2)
    font = cv2.FONT_HERSHEY_SIMPLEX
    staff_only = False
    for zone in layout.zones:
        ring = np.array(
            [(margin + x * px_per_m, head + y * px_per_m) for x, y in zone.polygon], dtype=np.int32
        )
        name = _ascii(zone.name)
        if zone.kind == "staff_only":  # not counted (vision.heatmap): grey, not "nobody"
            cv2.fillPoly(canvas, [ring], STAFF_GREY)
            name, staff_only = f"{name} (staff only)", True
        cv2.polylines(canvas, [ring], True, (70, 70, 70), 1, cv2.LINE_AA)
        org = (int(ring[:, 0].min()) + 4, int(ring[:, 1].min()) + 14)
        (w, h), base = cv2.getTextSize(name, font, 0.38, 1)
        box = ((org[0] - 2, org[1] - h - 2), (org[0] + w + 2, org[1] + base))
        cv2.rectangle(canvas, *box, (255, 255, 255), -1)
        cv2.putText(canvas, name, org, font, 0.38, (40, 40, 40), 1, cv2.LINE_AA)
    title = f"{_ascii(heat.label)} ({heat.hours:.1f} h observed)"
    cv2.putText(canvas, title, (margin, 26), font, 0.55, (30, 30, 30), 1, cv2.LINE_AA)
    width = min(300, fw)
    y = head + fh + 12
    ramp = np.linspace(40, 255, width).astype(np.uint8)[None, :].repeat(12, axis=0)
    canvas[y : y + 12, margin : margin + width] = cv2.applyColorMap(ramp, cv2.COLORMAP_TURBO)
    for frac in (0.0, 0.5, 1.0):
        value = top * frac * frac  # the colour scale is a square root
        x = margin + round(frac * (width - 1)) - (0 if frac == 0 else 16 if frac < 1 else 34)
        cv2.putText(canvas, f"{value:.2f}", (x, y + 26), font, 0.38, (40, 40, 40), 1, cv2.LINE_AA)
    caption = "people per m2 on average (no colour: nobody there"
    caption += "; grey: staff only, not counted)" if staff_only else ")"
    cv2.putText(canvas, caption, (margin, y + 46), font, 0.4, (40, 40, 40), 1, cv2.LINE_AA)
    return canvas


def scale_top(heats: Sequence[HeatDensity]) -> float:
    """One scale for pictures shown together, topped at the 99th percentile of used cells."""
    used = np.concatenate([h.people_per_m2[h.people_per_m2 > 0] for h in heats])
    top = float(np.percentile(used, 99)) if used.size else 0.0
    return top if math.isfinite(top) and top > 0 else 1.0


def _png(image: npt.NDArray[np.uint8]) -> bytes:
    cv2 = _cv2()
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError("OpenCV could not encode the heatmap as PNG")
    return bytes(data.tobytes())


def _fit(layout: StoreLayout, px_per_m: float | None, width_px: int) -> float:
    """Pixels per metre: as asked, or what fits the floor into ``width_px`` (40 at most),
    which keeps a mailed report small whatever the store's size."""
    return px_per_m if px_per_m is not None else min(40.0, width_px / layout.floor.width_m)


def density_png(layout: StoreLayout, heat: HeatDensity, px_per_m: float | None = None) -> bytes:
    """The floor plan with zone outlines and names, the heat on top, and its colour scale."""
    return _png(_render(layout, heat, scale_top([heat]), _fit(layout, px_per_m, 760)))


def side_by_side_png(
    layout: StoreLayout, left: HeatDensity, right: HeatDensity, px_per_m: float | None = None
) -> bytes:
    """Two periods on one colour scale, so the same colour means the same density."""
    top = scale_top([left, right])
    px_per_m = _fit(layout, px_per_m, 520)
    a, b = _render(layout, left, top, px_per_m), _render(layout, right, top, px_per_m)
    gap = np.full((a.shape[0], 12, 3), 255, dtype=np.uint8)
    return _png(np.hstack([a, gap, b]))
