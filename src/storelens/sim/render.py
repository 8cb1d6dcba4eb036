"""The simulator's shoppers as one camera would film them, so vision can be scored on truth.

Each frame draws everyone the camera sees (`CameraView.sees`) inside
`CameraView.person_boxes`, far ones first so near people occlude them: the same person
model the scoring uses, so a perfect detector's foot points land on the true floor spots.

Two looks: ``"figures"`` are solid bodies and heads in a stable colour per person on a
tiled floor with sensor noise, what background subtraction needs and nothing more;
``"photos"`` paste real people (scikit-image's bundled ``astronaut`` and ``camera``
pictures, so nothing is downloaded) for the CNN detectors. Frames stay in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from storelens.core.camera import CameraView
from storelens.core.errors import MissingExtra
from storelens.core.layout import StoreLayout, load_layout
from storelens.vision.frames import Frame

__all__ = ["CameraScene", "RenderMode", "render_camera", "synthetic_frame"]

RenderMode = Literal["figures", "photos"]
Image = npt.NDArray[np.uint8]

_TEXTURE_PX_PER_M = 40
_NOISE_FIELDS = 6
_NOISE_LEVEL = 6
_WALL = np.array([168, 176, 182], np.float32)
_TILES = (np.array([150, 170, 188], np.float32), np.array([140, 160, 179], np.float32))
_FIXTURE = np.array([62, 96, 132], np.float32)  # counters and bars: darker wood
_SKIN = ((80, 120, 190), (60, 95, 150), (45, 70, 110), (110, 150, 215))
_BATCH_ROWS = 65_536


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise MissingExtra("opencv-python", "vision") from None
    return cv2


def _digest(person_id: str, seed: int) -> bytes:
    return hashlib.blake2b(f"{seed}|{person_id}".encode(), digest_size=8).digest()


@cache
def _palette(person_id: str, seed: int) -> tuple[tuple[int, ...], ...]:
    """Shirt, trousers and skin, stable for a person: the tracker may use colour, so must we."""
    cv2 = _cv2()
    d = _digest(person_id, seed)
    hsv = np.array([[[d[0] % 180, 150 + d[1] % 100, 110 + d[2] % 130]]], np.uint8)
    shirt = tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])
    trousers = (40 + d[3] % 50, 30 + d[4] % 40, 20 + d[5] % 40)
    return shirt, trousers, _SKIN[d[6] % len(_SKIN)]


def _floor_texture(width_m: float, height_m: float, layout: StoreLayout | None, seed: int) -> Image:
    """Floor tiles (0.6 m) with grout and slow stains, fixtures darker: fixed pattern to learn."""
    cv2 = _cv2()
    rng = np.random.default_rng(seed)
    w, h = int(width_m * _TEXTURE_PX_PER_M) + 1, int(height_m * _TEXTURE_PX_PER_M) + 1
    ys, xs = np.mgrid[0:h, 0:w] / (_TEXTURE_PX_PER_M * 0.6)
    checker = ((xs.astype(int) + ys.astype(int)) % 2).astype(bool)
    floor = np.where(checker[..., None], _TILES[0], _TILES[1])
    if layout is not None:
        for zone in layout.zones:
            if zone.kind in {"counter", "staff_only", "fixture", "checkout"}:
                mask = np.zeros((h, w), np.uint8)
                polygon = np.round(np.asarray(zone.polygon) * _TEXTURE_PX_PER_M).astype(np.int32)
                cv2.fillPoly(mask, [polygon], 1)
                floor[mask.astype(bool)] = _FIXTURE
    grout = (np.abs(xs - np.round(xs)) < 0.03) | (np.abs(ys - np.round(ys)) < 0.03)
    floor[grout] *= 0.8
    stains = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 6)
    floor *= (1.0 + 2.5 * stains / (np.abs(stains).max() + 1e-6) * 0.08)[..., None]
    return np.clip(floor, 0, 255).astype(np.uint8)


def _photo_people() -> list[tuple[Image, npt.NDArray[np.float32]]]:
    """Upper-body crops of the two people in scikit-image's test pictures, with soft masks."""
    cv2 = _cv2()
    try:
        from skimage import data as bundled
    except ImportError:
        raise MissingExtra("scikit-image", "vision") from None
    data: Any = bundled  # scikit-image has no type hints
    astronaut = np.ascontiguousarray(data.astronaut()[10:512, 15:370, ::-1])
    cameraman = cv2.cvtColor(np.ascontiguousarray(data.camera()[60:512, 0:300]), cv2.COLOR_GRAY2BGR)
    outlines = (
        # head ellipse (centre, axes) then the torso polygon, in crop pixels
        (astronaut, ((210, 100), (80, 100)), [(110, 170), (330, 170), (355, 502), (0, 502)]),
        (
            cameraman,
            ((212, 68), (58, 72)),
            [(130, 100), (250, 120), (290, 180), (200, 250), (170, 452), (0, 452)],
        ),
    )
    people = []
    for crop, (centre, axes), torso in outlines:
        mask = np.zeros(crop.shape[:2], np.uint8)
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1)
        cv2.fillPoly(mask, [np.array(torso, np.int32)], 255)
        soft = cv2.GaussianBlur(mask, (0, 0), 4).astype(np.float32) / 255.0
        people.append((crop, soft))
        people.append((np.ascontiguousarray(crop[:, ::-1]), np.ascontiguousarray(soft[:, ::-1])))
    return people


class CameraScene:
    """One camera's empty shop (computed once) and how to draw people into it."""

    def __init__(
        self,
        view: CameraView,
        *,
        mode: RenderMode = "figures",
        seed: int = 0,
        background: Image | None = None,
        layout: StoreLayout | None = None,
    ) -> None:
        if mode not in ("figures", "photos"):
            raise ValueError(f"mode must be 'figures' or 'photos', got {mode!r}")
        if view.resolution is None:
            raise ValueError(f"camera {view.camera_id!r} has no resolution in the layout")
        self.view, self.mode, self.seed = view, mode, seed
        self.width, self.height = view.resolution
        self.background = self._backdrop(background, layout)
        rng = np.random.default_rng([seed, 1])
        shape = (_NOISE_FIELDS, self.height, self.width, 3)
        self._noise_up = rng.integers(0, _NOISE_LEVEL, shape, dtype=np.uint8)
        self._noise_down = rng.integers(0, _NOISE_LEVEL, shape, dtype=np.uint8)
        self._photos = _photo_people() if mode == "photos" else []

    def _backdrop(self, background: Image | None, layout: StoreLayout | None) -> Image:
        cv2 = _cv2()
        size = (self.width, self.height)
        if background is not None:
            image = np.asarray(background, np.uint8)
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"background must be a BGR image (h, w, 3), got {image.shape}")
            return np.ascontiguousarray(
                cv2.resize(image, size) if image.shape[:2] != size[::-1] else image
            )
        width_m, height_m = (
            (layout.floor.width_m, layout.floor.height_m) if layout else (30.0, 30.0)
        )
        texture = _floor_texture(width_m, height_m, layout, self.seed)
        to_texture = np.diag([1.0 / _TEXTURE_PX_PER_M, 1.0 / _TEXTURE_PX_PER_M, 1.0])
        warp = self.view.floor_to_image @ to_texture
        floor = cv2.warpPerspective(texture, warp, size, flags=cv2.INTER_LINEAR)
        # Pixels whose ray misses the floor (beyond it, or above the horizon) show wall.
        ys, xs = np.mgrid[0 : self.height, 0 : self.width]
        spots = self.view.to_floor(np.column_stack([xs.ravel(), ys.ravel()]))
        with np.errstate(invalid="ignore"):
            on_floor = (
                (spots[:, 0] >= 0) & (spots[:, 0] <= width_m)
                & (spots[:, 1] >= 0) & (spots[:, 1] <= height_m)
            ).reshape(self.height, self.width)  # fmt: skip
        stripes = 1.0 - 0.06 * ((xs // 24) % 2)
        wall = np.clip(_WALL[None, None, :] * stripes[..., None], 0, 255).astype(np.uint8)
        return np.asarray(np.where(on_floor[..., None], floor, wall), np.uint8)

    def draw(
        self, floor_xy: npt.ArrayLike, person_ids: Sequence[str] | None = None, number: int = 0
    ) -> Image:
        """A frame with a person at each floor point the camera sees; ``number`` picks noise."""
        cv2 = _cv2()
        noise = number % _NOISE_FIELDS
        image: Image = cv2.subtract(
            cv2.add(self.background, self._noise_up[noise]), self._noise_down[noise]
        )
        points = np.asarray(floor_xy, np.float64).reshape(-1, 2)
        ids = list(person_ids) if person_ids is not None else [str(i) for i in range(len(points))]
        if len(ids) != len(points):
            raise ValueError(f"{len(ids)} person ids for {len(points)} floor points")
        if not len(points):
            return image
        seen = np.flatnonzero(self.view.sees(points))
        boxes = self.view.person_boxes(points[seen])
        for k in np.argsort(boxes[:, 3], kind="stable"):  # far (higher in the image) first
            if self.mode == "figures":
                self._figure(image, boxes[k], ids[seen[k]])
            else:
                self._photo(image, boxes[k], ids[seen[k]])
        return image

    def _figure(self, image: Image, box: npt.NDArray[np.float64], person_id: str) -> None:
        cv2 = _cv2()
        x1, y1, x2, y2 = box
        w, h, cx = x2 - x1, y2 - y1, (x1 + x2) / 2

        def fix(*values: float) -> tuple[int, ...]:
            return tuple(round(v * 16) for v in values)  # 4 bits of sub-pixel precision

        shirt, trousers, skin = _palette(person_id, self.seed)
        line = cv2.LINE_AA
        cv2.ellipse(
            image, fix(cx, y1 + 0.76 * h), fix(0.34 * w, 0.24 * h), 0, 0, 360, trousers, -1, line, 4
        )
        cv2.ellipse(
            image, fix(cx, y1 + 0.37 * h), fix(0.5 * w, 0.23 * h), 0, 0, 360, shirt, -1, line, 4
        )
        cv2.circle(image, fix(cx, y1 + 0.075 * h), round(0.075 * h * 16), skin, -1, line, 4)

    def _photo(self, image: Image, box: npt.NDArray[np.float64], person_id: str) -> None:
        cv2 = _cv2()
        x1, y1, x2, y2 = box
        w, h, cx = x2 - x1, y2 - y1, (x1 + x2) / 2
        crop, mask = self._photos[_digest(person_id, self.seed)[7] % len(self._photos)]
        scale = min(1.3 * w / crop.shape[1], 0.58 * h / crop.shape[0])
        cw, ch = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
        _, trousers, _ = _palette(person_id, self.seed)
        top = y1 + ch - 0.02 * h  # legs start under the jacket and reach the feet
        for side in (-1, 1):
            leg = np.array([[cx + side * 0.04 * w, top], [cx + side * 0.3 * w, top],
                            [cx + side * 0.28 * w, y2], [cx + side * 0.06 * w, y2]])  # fmt: skip
            cv2.fillPoly(image, [np.round(leg * 16).astype(np.int32)], trousers, cv2.LINE_AA, 4)
        left, upper = round(cx - cw / 2), round(y1)
        x0, y0 = max(left, 0), max(upper, 0)
        xe, ye = min(left + cw, self.width), min(upper + ch, self.height)
        if xe <= x0 or ye <= y0:
            return
        person = cv2.resize(crop, (cw, ch), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(mask, (cw, ch), interpolation=cv2.INTER_AREA)[..., None]
        sub = (slice(y0 - upper, ye - upper), slice(x0 - left, xe - left))
        region = image[y0:ye, x0:xe].astype(np.float32)
        blended = region * (1 - alpha[sub]) + person[sub].astype(np.float32) * alpha[sub]
        image[y0:ye, x0:xe] = np.clip(blended, 0, 255).astype(np.uint8)


def synthetic_frame(
    view: CameraView,
    floor_xy: npt.ArrayLike,
    *,
    person_ids: Sequence[str] | None = None,
    mode: RenderMode = "figures",
    seed: int = 0,
    background: Image | None = None,
) -> Image:
    """One picture of a small scene: people standing at the given floor points (metres)."""
    scene = CameraScene(view, mode=mode, seed=seed, background=background)
    return scene.draw(floor_xy, person_ids)


def _stat_ms(value: Any) -> int:
    """Parquet statistics of a timestamp column come back as datetimes (or raw ints)."""
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    return int(value)


def _batches(positions: str | Path | pa.Table, lo: int, hi: int) -> Iterator[pa.RecordBatch]:
    columns = ["ts", "track_id", "x", "y"]
    if isinstance(positions, pa.Table):
        yield from positions.select(columns).to_batches(_BATCH_ROWS)
        return
    parquet = pq.ParquetFile(positions)
    ts_index = parquet.schema_arrow.get_field_index("ts")
    for group in range(parquet.num_row_groups):
        stats = parquet.metadata.row_group(group).column(ts_index).statistics
        if stats is not None and stats.has_min_max:
            first, last = _stat_ms(stats.min), _stat_ms(stats.max)
            if last < lo or first >= hi:
                continue  # a day outside the window: skip it unread
        yield from parquet.iter_batches(_BATCH_ROWS, row_groups=[group], columns=columns)


def _moments(
    positions: str | Path | pa.Table, lo: int, hi: int
) -> Iterator[tuple[int, list[str], npt.NDArray[np.float64]]]:
    """(ms, ids, floor points) per position time, read in batches; a moment may span two."""
    pending: tuple[npt.NDArray[np.int64], list[str], npt.NDArray[np.float64]] | None = None
    last = np.iinfo(np.int64).min
    for batch in _batches(positions, lo, hi):
        ts = batch.column("ts").cast(pa.int64()).to_numpy()
        if len(ts) and (ts[0] < last or (np.diff(ts) < 0).any()):
            raise ValueError("positions must be sorted by time (as positions.parquet is)")
        if len(ts):
            last = int(ts[-1])
        keep = (ts >= lo) & (ts < hi)
        ids = [str(v) for v in np.asarray(batch.column("track_id").to_pylist(), object)[keep]]
        xy = np.column_stack([batch.column("x").to_numpy(), batch.column("y").to_numpy()])[keep]
        ts = ts[keep]
        if pending is not None:
            ts, ids, xy = (
                np.concatenate([pending[0], ts]),
                pending[1] + ids,
                np.vstack([pending[2], xy]),
            )
        if not len(ts):
            pending = None
            continue
        cuts = [0, *(np.flatnonzero(np.diff(ts)) + 1).tolist(), len(ts)]
        for a, b in pairwise(cuts[:-1]):
            yield int(ts[a]), ids[a:b], xy[a:b]
        pending = (ts[cuts[-2] :], ids[cuts[-2] :], xy[cuts[-2] :])
    if pending is not None and len(pending[0]):
        yield int(pending[0][0]), pending[1], pending[2]


def _ms(moment: datetime | None, name: str) -> int | None:
    if moment is None:
        return None
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return round(moment.timestamp() * 1000)


def render_camera(
    positions: str | Path | pa.Table,
    layout: StoreLayout | str | Path,
    camera_id: str,
    *,
    fps: float | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    mode: RenderMode = "figures",
    seed: int = 0,
    background: Image | None = None,
) -> Iterator[Frame]:
    """Frames every 1/fps (the camera's own fps by default) from ``start`` to ``end``.

    Each frame shows the latest positions at or before its time, within one frame period;
    frames with nobody in view are the empty shop, as a real camera would film. The
    positions must be at least as frequent as the frames (``--positions-fps``). Without
    ``start``/``end`` the frames span the first to the last position, nights included.
    """
    store = layout if isinstance(layout, StoreLayout) else load_layout(layout)
    camera = store.camera(camera_id)
    rate = camera.fps if fps is None else fps
    if not rate > 0:
        raise ValueError(f"fps must be positive, got {rate}")
    period = max(1, round(1000 / rate))
    lo, hi = _ms(start, "start"), _ms(end, "end")
    if lo is not None and hi is not None and hi <= lo:
        raise ValueError("end must be after start")
    scene = CameraScene(
        CameraView.from_camera(camera), mode=mode, seed=seed, background=background, layout=store
    )
    return _frames(
        scene,
        _moments(positions, -(2**62) if lo is None else lo, 2**62 if hi is None else hi),
        period,
        lo,
        hi,
    )


def _frames(
    scene: CameraScene,
    moments: Iterator[tuple[int, list[str], npt.NDArray[np.float64]]],
    period: int,
    lo: int | None,
    hi: int | None,
) -> Iterator[Frame]:
    upcoming = next(moments, None)
    if lo is None:
        if upcoming is None:
            return
        lo = -(-upcoming[0] // period) * period  # first frame on the period grid
    nobody: tuple[list[str], npt.NDArray[np.float64]] = ([], np.zeros((0, 2)))
    number, first_ms = 0, None
    while hi is not None or upcoming is not None:
        t = lo + number * period
        if hi is not None and t >= hi:
            return
        shown = nobody
        while upcoming is not None and upcoming[0] <= t:
            if first_ms is None:
                first_ms = upcoming[0]
            elif first_ms >= 0:  # the first two position times tell their rate
                if upcoming[0] - first_ms > period + 1:
                    raise ValueError(
                        f"positions are {upcoming[0] - first_ms} ms apart but frames {period}"
                        " ms: write positions at least at the frame rate (--positions-fps)"
                    )
                first_ms = -1
            if upcoming[0] > t - period:
                shown = (upcoming[1], upcoming[2])
            upcoming = next(moments, None)
        when = datetime.fromtimestamp(t / 1000, UTC)
        yield Frame(number, when, scene.draw(shown[1], shown[0], number))
        number += 1
