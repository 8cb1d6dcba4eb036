"""Store layouts: the floor plan that every vision and in-store metric is measured against.

A layout is one TOML file per store. Coordinates are metres on the floor plan with the
origin in its top-left corner and y growing downward, as in the floor-plan image, so the
picture overlays without flipping. Everything is checked on load (ids, references,
geometry, calibrations) so that homography, dwell, heatmap and queue code can trust it;
each problem is a :class:`LayoutError` naming the key as written in the file, e.g.
``zones[2].polygon``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from itertools import combinations
from math import ceil, hypot, isfinite
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from storelens.core.errors import LayoutError

__all__ = [
    "Calibration",
    "Camera",
    "CountLine",
    "Floor",
    "Point",
    "StoreKind",
    "StoreLayout",
    "Zone",
    "ZoneKind",
    "floor_grid",
    "load_layout",
    "parse_layout",
]

ZoneKind = Literal[
    "entrance", "queue", "counter", "pickup", "seating", "aisle", "fixture", "staff_only",
    "checkout", "fitting_room",
]  # fmt: skip
StoreKind = Literal["cafe", "apparel", "grocery", "other"]
_Coordinate = Annotated[float, Field(allow_inf_nan=False)]
Point = tuple[_Coordinate, _Coordinate]
"""(x, y): metres on the floor plan, or pixels for calibration image points."""

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_EPS = 1e-9
_MAX_CALIBRATION_POINTS = 32  # keeps the search for 4 usable points instant


def floor_grid(width_m: float, height_m: float, cell_m: float) -> tuple[int, int]:
    """(rows, cols) of ``cell_m`` cells covering a floor, the shape every heat grid of
    the store has (cameras draw it, ingest checks it against the store's layout)."""
    for name, value in (("width_m", width_m), ("height_m", height_m), ("cell_m", cell_m)):
        if not (isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number of metres, got {value!r}")
    # A floor of 14 m in 0.25 m cells is 56 columns, not 57 from rounding noise.
    return ceil(height_m / cell_m - 1e-9), ceil(width_m / cell_m - 1e-9)


def _check_slug(value: str) -> str:
    if not value or len(value) > 64 or not _SLUG.match(value):
        raise ValueError(
            f"id {value!r} must be a lowercase slug of 1 to 64 characters: a-z, 0-9, '-' "
            "and '_', starting with a letter or digit (e.g. 'cafe-01')"
        )
    return value


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from None
    return name


Slug = Annotated[str, AfterValidator(_check_slug)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class _KeyedError(ValueError):
    """Cross-checks run on a parent model, but the user must be pointed at the child key."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(f"{_toml_key(loc)}: {message}")
        self.loc, self.message = loc, message


def _fmt(point: Point) -> str:
    return f"({point[0]:g}, {point[1]:g})"


def _cross(o: Point, a: Point, b: Point) -> float:
    """Twice the signed area of o-a-b; its sign tells on which side of o->a the point b is."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _signed_area(polygon: Sequence[Point]) -> float:
    n = len(polygon)
    return sum(_cross((0.0, 0.0), polygon[i], polygon[(i + 1) % n]) for i in range(n)) / 2


def _collinear(a: Point, b: Point, c: Point) -> bool:
    """Relative test, so that pixel and metre coordinates get the same tolerance."""
    scale = max(hypot(b[0] - a[0], b[1] - a[1]), hypot(c[0] - a[0], c[1] - a[1]))
    return abs(_cross(a, b, c)) <= _EPS * scale * scale


def _on_segment(p: Point, a: Point, b: Point) -> bool:
    return (
        abs(_cross(a, b, p)) <= _EPS
        and min(a[0], b[0]) - _EPS <= p[0] <= max(a[0], b[0]) + _EPS
        and min(a[1], b[1]) - _EPS <= p[1] <= max(a[1], b[1]) + _EPS
    )


def _segments_meet(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Crossing or touching: a zone outline that touches itself pinches into two zones."""
    if _cross(q1, q2, p1) * _cross(q1, q2, p2) < 0 and _cross(p1, p2, q1) * _cross(p1, p2, q2) < 0:
        return True
    ends = ((p1, q1, q2), (p2, q1, q2), (q1, p1, p2), (q2, p1, p2))
    return any(_on_segment(*end) for end in ends)


def _polygon_problem(polygon: Sequence[Point]) -> str | None:
    n = len(polygon)
    if n < 3:
        return f"a zone polygon needs at least 3 points, got {n}"
    for i in range(n):
        if polygon[i] == polygon[(i + 1) % n]:
            return f"points {i} and {(i + 1) % n} are both {_fmt(polygon[i])}"
    for i, j in combinations(range(n), 2):
        if j == i + 1 or (i == 0 and j == n - 1):
            continue  # neighbours share a point; a fold-back also touches a non-neighbour
        if _segments_meet(polygon[i], polygon[(i + 1) % n], polygon[j], polygon[(j + 1) % n]):
            return (
                f"the polygon crosses itself (edge {i}->{(i + 1) % n} meets edge "
                f"{j}->{(j + 1) % n}); list the points in order around the zone"
            )
    if abs(_signed_area(polygon)) <= _EPS:
        return "the polygon has zero area; its points lie on one line"
    return None


def _calibration_problem(points: Sequence[Point]) -> str | None:
    """A homography needs 4 points with no 3 on one line; name the first offending triple."""
    if len(points) < 4:
        return f"a calibration needs at least 4 points for a homography, got {len(points)}"
    first_bad: tuple[int, ...] = ()
    for quad in combinations(range(len(points)), 4):
        bad = next((t for t in combinations(quad, 3) if _collinear(*(points[k] for k in t))), ())
        if not bad:
            return None
        first_bad = first_bad or bad
    return (
        "points {}, {} and {} lie on one line; a homography needs 4 points with no 3 on "
        "one line, spread over the area the camera sees".format(*first_bad)
    )


class _LayoutModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Floor(_LayoutModel):
    width_m: float = Field(gt=0, allow_inf_nan=False)
    height_m: float = Field(gt=0, allow_inf_nan=False)
    image: str | None = Field(default=None, min_length=1)
    """Floor-plan picture, relative to the layout file, stretched to width x height."""

    def contains(self, point: Point) -> bool:
        x, y = point
        return -_EPS <= x <= self.width_m + _EPS and -_EPS <= y <= self.height_m + _EPS

    def grid(self, cell_m: float) -> tuple[int, int]:
        """(rows, cols) of a heat grid of this floor in ``cell_m`` cells."""
        return floor_grid(self.width_m, self.height_m, cell_m)


class Zone(_LayoutModel):
    id: Slug
    name: Name
    kind: ZoneKind
    polygon: list[Point]

    @field_validator("polygon")
    @classmethod
    def _simple_polygon(cls, polygon: list[Point]) -> list[Point]:
        if len(polygon) > 3 and polygon[0] == polygon[-1]:
            polygon = polygon[:-1]  # a closed ring is a common way to write a polygon
        if problem := _polygon_problem(polygon):
            raise ValueError(problem)
        return polygon

    @property
    def area_m2(self) -> float:
        return abs(_signed_area(self.polygon))

    def contains(self, point: Point) -> bool:
        """Even-odd test; the outline counts as inside so that tracks along a wall stay in."""
        n = len(self.polygon)
        edges = [(self.polygon[i], self.polygon[(i + 1) % n]) for i in range(n)]
        if any(_on_segment(point, a, b) for a, b in edges):
            return True
        x, y = point
        inside = False
        for (x1, y1), (x2, y2) in edges:
            if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
        return inside


class CountLine(_LayoutModel):
    """A line people cross at an entrance.

    Walking from ``a`` to ``b``, the left-hand side (as seen on the floor plan, y down)
    is "in" and the right-hand side "out"; swap ``a`` and ``b`` to flip a line.
    """

    id: Slug
    name: Name
    a: Point
    b: Point
    zone_id: Slug | None = None

    @field_validator("b")
    @classmethod
    def _distinct_ends(cls, b: Point, info: ValidationInfo) -> Point:
        if info.data.get("a") == b:
            raise ValueError(f"b is the same point as a {_fmt(b)}; a line needs two ends")
        return b

    def side(self, point: Point) -> Literal["in", "out", "on"]:
        cross = _cross(self.a, self.b, point)
        # y grows downward, so the walker's left has a negative cross product.
        return "in" if cross < -_EPS else "out" if cross > _EPS else "on"


class Calibration(_LayoutModel):
    """Pixel positions of marks on the floor, paired with where those marks are in metres."""

    image_points: list[Point] = Field(max_length=_MAX_CALIBRATION_POINTS)
    floor_points: list[Point] = Field(max_length=_MAX_CALIBRATION_POINTS)

    @field_validator("image_points")
    @classmethod
    def _usable_image_points(cls, points: list[Point]) -> list[Point]:
        for i, point in enumerate(points):
            if min(point) < 0:
                raise ValueError(f"point {i} {_fmt(point)} is negative; pixels start at (0, 0)")
        if problem := _calibration_problem(points):
            raise ValueError(problem)
        return points

    @field_validator("floor_points")
    @classmethod
    def _usable_floor_points(cls, points: list[Point], info: ValidationInfo) -> list[Point]:
        image_points = info.data.get("image_points")
        if image_points is not None and len(image_points) != len(points):
            raise ValueError(
                f"{len(points)} floor points for {len(image_points)} image points; "
                "each image point needs the floor point it shows"
            )
        if problem := _calibration_problem(points):
            raise ValueError(problem)
        return points


class Camera(_LayoutModel):
    id: Slug
    name: Name | None = None
    source: str = Field(min_length=1)
    """A video file path, an ``rtsp://`` or ``http(s)://`` URL, or a webcam index such as "0"."""
    fps: float = Field(default=5.0, gt=0, le=60)
    resolution: tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]] | None = None
    calibration: Calibration
    covers: list[Slug] = Field(default_factory=list)

    @field_validator("source")
    @classmethod
    def _known_scheme(cls, source: str) -> str:
        scheme, sep, _ = source.partition("://")
        if sep and scheme.lower() not in {"rtsp", "rtsps", "http", "https"}:
            raise ValueError(f"unsupported scheme {scheme!r}; use rtsp://, http(s):// or a file")
        return source

    @model_validator(mode="after")
    def _image_points_in_frame(self) -> Camera:
        width, height = self.resolution or (float("inf"), float("inf"))
        for i, (x, y) in enumerate(self.calibration.image_points):
            if x > width or y > height:
                message = f"point {i} {_fmt((x, y))} lies outside the {width}x{height} image"
                raise _KeyedError(("calibration", "image_points"), message)
        return self


class StoreLayout(_LayoutModel):
    store_id: Slug
    name: Name
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "UTC"
    kind: StoreKind = "other"
    floor: Floor
    zones: list[Zone] = Field(min_length=1)
    lines: list[CountLine] = Field(default_factory=list)
    cameras: list[Camera] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> StoreLayout:
        groups: dict[str, Sequence[Zone | CountLine | Camera]] = {
            "zones": self.zones, "lines": self.lines, "cameras": self.cameras,
        }  # fmt: skip
        for key, items in groups.items():
            seen: dict[str, int] = {}
            for i, item in enumerate(items):
                if item.id in seen:
                    message = f"duplicate id {item.id!r}, already used by {key}[{seen[item.id]}]"
                    raise _KeyedError((key, i, "id"), message)
                seen[item.id] = i
        for i, zone in enumerate(self.zones):
            self._on_floor(("zones", i, "polygon"), zone.polygon)
        zone_ids = {zone.id for zone in self.zones}
        for i, line in enumerate(self.lines):
            self._on_floor(("lines", i, "a"), [line.a])
            self._on_floor(("lines", i, "b"), [line.b])
            if line.zone_id is not None and line.zone_id not in zone_ids:
                raise _KeyedError(("lines", i, "zone_id"), f"no zone has id {line.zone_id!r}")
        for i, camera in enumerate(self.cameras):
            for zone_id in camera.covers:
                if zone_id not in zone_ids:
                    raise _KeyedError(("cameras", i, "covers"), f"no zone has id {zone_id!r}")
            floor_points = camera.calibration.floor_points
            self._on_floor(("cameras", i, "calibration", "floor_points"), floor_points)
        return self

    def _on_floor(self, loc: tuple[str | int, ...], points: Sequence[Point]) -> None:
        for i, point in enumerate(points):
            if not self.floor.contains(point):
                label = f"point {i} " if len(points) > 1 else ""
                size = f"{self.floor.width_m:g} x {self.floor.height_m:g} m"
                raise _KeyedError(loc, f"{label}{_fmt(point)} lies outside the {size} floor")

    def zone(self, zone_id: str) -> Zone:
        if found := next((zone for zone in self.zones if zone.id == zone_id), None):
            return found
        raise KeyError(f"no zone {zone_id!r} in layout {self.store_id!r}")

    def zones_of_kind(self, kind: ZoneKind) -> list[Zone]:
        return [zone for zone in self.zones if zone.kind == kind]

    def camera(self, camera_id: str) -> Camera:
        if found := next((camera for camera in self.cameras if camera.id == camera_id), None):
            return found
        raise KeyError(f"no camera {camera_id!r} in layout {self.store_id!r}")


# The file nests the store's own fields under [store]; the model keeps them flat.
_STORE_FIELDS = {"id": "store_id", "name": "name", "timezone": "timezone", "kind": "kind"}
_FILE_KEYS = {field: f"store.{key}" for key, field in _STORE_FIELDS.items()}
_TABLES = ("store", "floor", "zones", "lines", "cameras")


def _toml_key(loc: Sequence[str | int]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += f".{part}" if key else _FILE_KEYS.get(part, part)
    return key or "(layout)"


def _layout_error(exc: ValidationError, path: str) -> LayoutError:
    error = exc.errors(include_url=False)[0]
    loc: tuple[str | int, ...] = tuple(error["loc"])
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, _KeyedError):
        loc, message = loc + cause.loc, cause.message
    elif isinstance(cause, ValueError):
        message = str(cause)
    elif error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "missing required key" if isinstance(loc[-1], str) else "missing value"
    else:
        message = error["msg"].replace("Input should be", "must be", 1)
        if not isinstance(error["input"], dict | list):
            message += f" (got {error['input']!r})"
    return LayoutError(path, _toml_key(loc), message)


def parse_layout(data: Mapping[str, Any], path: str = "<memory>") -> StoreLayout:
    """Check already-parsed TOML; ``path`` only labels the errors."""
    for key in data:
        if key not in _TABLES:
            raise LayoutError(path, key, f"unknown key; a layout has {', '.join(_TABLES)}")
    store = data.get("store", {})
    if not isinstance(store, Mapping):
        raise LayoutError(path, "store", "must be a table: [store] with id, name, timezone, kind")
    flat: dict[str, Any] = {}
    for key, value in store.items():
        if key not in _STORE_FIELDS:
            raise LayoutError(path, f"store.{key}", "unknown key")
        flat[_STORE_FIELDS[key]] = value
    flat.update((key, value) for key, value in data.items() if key != "store")
    try:
        return StoreLayout.model_validate(flat)
    except ValidationError as exc:
        raise _layout_error(exc, path) from exc


def load_layout(path: str | Path) -> StoreLayout:
    """Read and check a layout file; any problem is a LayoutError naming the file and key."""
    where = str(path)
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise LayoutError(where, "(file)", "no such file") from None
    except OSError as exc:
        raise LayoutError(where, "(file)", exc.strerror or str(exc)) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:  # the latter: not UTF-8
        raise LayoutError(where, "(syntax)", str(exc)) from exc
    return parse_layout(data, where)
