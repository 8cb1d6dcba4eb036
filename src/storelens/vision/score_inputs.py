"""What scoring reads: the pipeline's vision events, the simulator's truth and its geometry.

Split from :mod:`storelens.vision.evaluate` so the scoring module holds only the metrics.
Events become plain columns (`Predicted`); ``positions.parquet`` is read in batches,
only the window (plus a second either side) kept, one frame's people together
(`TruthFrames`); `Sight` says which truth rows the scored cameras see. Times are
integer milliseconds since the epoch throughout.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ValidationError

from storelens.core.camera import CameraView, FloatArray
from storelens.core.events import (
    LineCrossing,
    StoreVisitEnded,
    TrackPoint,
    ZoneCrossing,
    ZoneOccupancy,
)
from storelens.core.layout import StoreLayout, Zone, load_layout
from storelens.vision.zones import ZoneMap

__all__ = [
    "ALREADY_INSIDE_MS",
    "Predicted",
    "Sight",
    "TruthFrames",
    "ZoneTruth",
    "event_ms",
    "from_ms",
    "layout_of",
    "read_events",
    "read_positions",
    "sample_grid",
    "to_ms",
    "truth_file",
    "truth_visits",
]

ZoneTruth = Literal["polygon", "label"]
"""Who is in a zone: inside its outline, or in the simulator's zone of the moment."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ALREADY_INSIDE_MS = 10_000
_MARGIN_MS = 1_000  # positions read beyond the window, for the nearest frame at its edges
_BATCH_ROWS = 262_144
_PAYLOADS: dict[str, type[BaseModel]] = {
    "vision.track": TrackPoint,
    "vision.line_crossed": LineCrossing,
    "vision.occupancy": ZoneOccupancy,
    "vision.zone_enter": ZoneCrossing,
    "vision.zone_exit": ZoneCrossing,
    "vision.visit": StoreVisitEnded,
}


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"{moment} must carry a time zone")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def event_ms(value: object, where: str) -> int:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{where}: ts {value!r} is not an ISO timestamp") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{where}: ts must be a timestamp with a time zone, got {value!r}")
    return to_ms(value)


def _lines(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if line.strip():
                try:
                    yield f"{path.name}:{number}", json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path.name}:{number}: not JSON ({exc.msg})") from None


@dataclass
class Predicted:
    """The vision events of one store, as plain columns."""

    tracks: list[tuple[int, str, float, float]]
    crossings: list[tuple[int, str, str, str]]  # ms, line, track, direction
    occupancy: list[tuple[int, str, int, str | None]]  # ms, zone, count, camera
    sightings: dict[str, list[int]]
    store_visits: list[tuple[int, int, str | None, str | None]]  # start, end, in/out line
    zone_exits: list[tuple[int, str, float]] = field(default_factory=list)  # ms, zone, dwell s

    def window(self, start: int, end: int) -> Predicted:
        def keep(ms: int) -> bool:
            return start <= ms < end

        sightings = {k: [m for m in v if keep(m)] for k, v in self.sightings.items()}
        return Predicted(
            [t for t in self.tracks if keep(t[0])],
            [c for c in self.crossings if keep(c[0])],
            [o for o in self.occupancy if keep(o[0])],
            {k: v for k, v in sightings.items() if v},
            [v for v in self.store_visits if keep(v[0])],
            [z for z in self.zone_exits if keep(z[0] - round(z[2] * 1000))],
        )

    def by_instant(self) -> dict[int, dict[str, list[tuple[float, float]]]]:
        """Track positions per sampling instant, per track (several if cameras overlap)."""
        found: dict[int, dict[str, list[tuple[float, float]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for ms, track, x, y in self.tracks:
            found[ms][track].append((x, y))
        return found

    def window_ms(self, start: datetime | None, end: datetime | None) -> tuple[int, int]:
        """[start, end) in ms; each end defaults to the events' own first or last time."""
        stamps = [t[0] for t in self.tracks] + [c[0] for c in self.crossings]
        stamps += [o[0] for o in self.occupancy] + [m for v in self.sightings.values() for m in v]
        lo = to_ms(start) if start is not None else min(stamps)
        hi = to_ms(end) if end is not None else max(stamps) + 1
        if lo >= hi:
            raise ValueError(
                f"the window is empty: start {from_ms(lo)} is not before end {from_ms(hi)}"
            )
        return lo, hi

    def zone_visits(self) -> dict[str, list[tuple[int, int]]]:
        """Closed zone visits (``vision.zone_exit`` with a dwell) as (start, end) ms per zone."""
        found: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for ms, zone_id, dwell_s in self.zone_exits:
            found[zone_id].append((ms - round(dwell_s * 1000), ms))
        return found

    def visits(
        self, lines: Collection[str] | None, inside_at: int | None = None
    ) -> list[tuple[int, int]]:
        """The pipeline's door-to-door visits (``vision.visit``) through ``lines`` (any
        line when None), as (start, end) ms. Visits that began without an entry within
        ``ALREADY_INSIDE_MS`` of ``inside_at`` (the window's start) are people already in
        the shop when the camera started, as the truth's visits that began earlier are."""
        early = None if inside_at is None else inside_at + ALREADY_INSIDE_MS
        return [
            (start, end)
            for start, end, entered_by, left_by in self.store_visits
            if (lines is None or entered_by in lines or left_by in lines)
            and not (early is not None and entered_by is None and start < early)
        ]


def read_events(events: Iterable[Mapping[str, Any]] | Path | str, store_id: str) -> Predicted:
    if isinstance(events, str | Path):
        path = Path(events)
        if not path.is_file():
            raise FileNotFoundError(f"no events file at {path}")
        numbered: Iterable[tuple[str, Mapping[str, Any]]] = _lines(path)
    else:
        numbered = ((f"event {i}", event) for i, event in enumerate(events))
    found = Predicted([], [], [], defaultdict(list), [])
    other_stores: set[str] = set()
    for where, event in numbered:
        if not isinstance(event, Mapping) or not isinstance(event.get("type"), str):
            raise ValueError(f"{where}: not an event (a mapping with a 'type')")
        type_ = event["type"]
        if not type_.startswith("vision."):
            continue
        if event.get("store_id") != store_id:
            other_stores.add(str(event.get("store_id")))
            continue
        if (model := _PAYLOADS.get(type_)) is None:
            continue  # heatmaps: not scored here
        ms = event_ms(event.get("ts"), where)
        try:
            payload = model.model_validate(event.get("payload"))
        except ValidationError as exc:
            problem = exc.errors(include_url=False)[0]
            key = ".".join(str(part) for part in problem["loc"]) or "payload"
            raise ValueError(f"{where}: {type_} {key}: {problem['msg']}") from None
        if isinstance(payload, ZoneOccupancy):
            found.occupancy.append((ms, payload.zone_id, payload.count, payload.camera_id))
            continue
        if isinstance(payload, StoreVisitEnded):
            visit = (to_ms(payload.started_at), ms, payload.entered_by, payload.left_by)
            found.store_visits.append(visit)
            continue
        if isinstance(payload, TrackPoint):
            found.tracks.append((ms, payload.track_id, payload.x, payload.y))
        elif isinstance(payload, ZoneCrossing) and type_ == "vision.zone_exit":
            if payload.dwell_s is not None:
                found.zone_exits.append((ms, payload.zone_id, payload.dwell_s))
        elif isinstance(payload, LineCrossing):
            crossing = (ms, payload.line_id, payload.track_id, payload.direction)
            found.crossings.append(crossing)
        assert isinstance(payload, TrackPoint | LineCrossing | ZoneCrossing)
        found.sightings[payload.track_id].append(ms)
    if not (found.tracks or found.crossings or found.occupancy or found.sightings
            or found.store_visits):  # fmt: skip
        others = f"; found vision events of {sorted(other_stores)}" if other_stores else ""
        raise ValueError(f"no vision events for store {store_id!r}{others}")
    return found


@dataclass
class TruthFrames:
    """Truth positions in the window as columns, one frame's people together."""

    ms: npt.NDArray[np.int64]
    person: npt.NDArray[np.int64]
    xy: FloatArray
    zone: npt.NDArray[np.object_]
    staff: npt.NDArray[np.bool_]
    frames: npt.NDArray[np.int64]
    bounds: npt.NDArray[np.int64]  # frame i is rows bounds[i]:bounds[i + 1]
    half_frame: int
    covers: tuple[int, int]  # the whole file's first and last frame

    def at(self, ms: int) -> slice | None:
        """Rows of the frame nearest ``ms`` within half a frame; None outside the file."""
        first, last = self.covers
        if not first - self.half_frame <= ms <= last + self.half_frame:
            return None
        if len(self.frames) == 0:
            return slice(0, 0)
        i = int(np.searchsorted(self.frames, ms))
        near = min((j for j in (i - 1, i) if 0 <= j < len(self.frames)),
                   key=lambda j: abs(int(self.frames[j]) - ms))  # fmt: skip
        if abs(int(self.frames[near]) - ms) > self.half_frame:
            return slice(0, 0)  # nobody in the store around then
        return slice(int(self.bounds[near]), int(self.bounds[near + 1]))

    def count(
        self, rows: slice, seen: npt.NDArray[np.bool_], zone: Zone, by: ZoneTruth, no_staff: bool
    ) -> int:
        """People among ``rows`` (one frame) who are ``seen`` and in ``zone``: by its outline
        ("polygon") or by the simulator's own zone label ("label")."""
        present = seen.copy()  # a slice of the sight cache is a view
        if no_staff:
            present &= ~self.staff[rows]
        if by == "label":
            present &= self.zone[rows] == zone.id
        elif len(present):
            present &= ZoneMap([zone]).inside(self.xy[rows])[:, 0]
        return int(present.sum())


def read_positions(path: Path, start: int, end: int) -> TruthFrames:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    needed = ["ts", "track_id", "x", "y", "zone_id", "is_staff"]
    if missing := sorted(set(needed) - set(file.schema_arrow.names)):
        raise ValueError(f"{path} lacks columns {missing}")
    codes: dict[str, int] = {}
    parts: list[list[Any]] = [[] for _ in needed]
    first, last = None, None
    for batch in file.iter_batches(batch_size=_BATCH_ROWS, columns=needed):
        ts = batch.column(0).cast("int64").to_numpy(zero_copy_only=False)
        if len(ts) == 0:
            continue
        first = int(ts[0]) if first is None else first
        last = int(ts[-1])
        keep = (ts >= start - _MARGIN_MS) & (ts < end + _MARGIN_MS)
        if not keep.any():
            continue
        encoded = batch.column(1).dictionary_encode()
        lookup = np.array([codes.setdefault(s, len(codes)) for s in encoded.dictionary.to_pylist()])
        parts[0].append(ts[keep])
        parts[1].append(lookup[encoded.indices.to_numpy()][keep])
        parts[2].append(batch.column(2).to_numpy()[keep])
        parts[3].append(batch.column(3).to_numpy()[keep])
        parts[4].append(np.asarray(batch.column(4).to_pylist(), dtype=object)[keep])
        parts[5].append(batch.column(5).to_numpy(zero_copy_only=False)[keep])
    if first is None or last is None:
        raise ValueError(f"{path} holds no positions")
    ms, person, x, y, zone, staff = (np.concatenate(p) if p else np.empty(0) for p in parts)
    frames, starts = np.unique(ms.astype(np.int64), return_index=True)
    step = int(np.diff(frames).min()) if len(frames) > 1 else 0
    return TruthFrames(
        ms.astype(np.int64), person.astype(np.int64), np.column_stack([x, y]).astype(float),
        zone.astype(object), staff.astype(bool), frames, np.r_[starts, len(ms)].astype(np.int64),
        step // 2, (first, last),
    )  # fmt: skip


# ---- scoring ----------------------------------------------------------------------------


class Sight:
    """Which truth rows the scored cameras see: any of them, or one named camera."""

    def __init__(self, layout: StoreLayout, camera_ids: Collection[str] | None) -> None:
        known = [camera.id for camera in layout.cameras]
        chosen = list(known if camera_ids is None else camera_ids)
        if unknown := [c for c in chosen if c not in known]:
            raise ValueError(f"no cameras {unknown} in layout {layout.store_id!r}; has {known}")
        if not chosen:
            raise ValueError("no cameras to score; the layout has none or camera_ids is empty")
        self.views = {c.id: CameraView.from_camera(c) for c in layout.cameras}
        self.chosen = tuple(chosen)
        self._seen: dict[str | None, npt.NDArray[np.bool_]] = {}

    def rows(self, truth: TruthFrames, camera_id: str | None = None) -> npt.NDArray[np.bool_]:
        """One flag per truth row, worked out once for all instants."""
        if camera_id not in self._seen:
            if camera_id is not None and camera_id not in self.views:
                raise ValueError(f"an occupancy sample names unknown camera {camera_id!r}")
            seen = np.zeros(len(truth.xy), dtype=bool)
            for camera in self.chosen if camera_id is None else (camera_id,):
                if len(truth.xy):
                    seen |= self.views[camera].sees(truth.xy)
            self._seen[camera_id] = seen
        return self._seen[camera_id]


def truth_file(truth: Path) -> tuple[dict[str, Any], Path]:
    """``truth`` is the run's folder or its truth.json; positions.parquet sits beside it."""
    path = truth / "truth.json" if truth.is_dir() else truth
    if not path.is_file():
        raise FileNotFoundError(f"no truth file at {path}")
    positions = path.parent / "positions.parquet"
    if not positions.is_file():
        raise FileNotFoundError(
            f"no positions.parquet beside {path}; run the simulation with --positions-fps"
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON ({exc.msg})") from None
    if not isinstance(record, dict) or not {"store_id", "visits"} <= record.keys():
        raise ValueError(f"{path} is not a simulator truth file (no store_id and visits)")
    return record, positions


def layout_of(record: Mapping[str, Any], layout: StoreLayout | Path | str | None) -> StoreLayout:
    if isinstance(layout, StoreLayout):
        found = layout
    elif layout is not None:
        found = load_layout(layout)
    else:  # the run's layout by name, among the packaged samples
        name = str(record.get("layout", ""))
        packaged = Path(str(files("storelens.samples").joinpath("layouts", name)))
        if not name or not packaged.is_file():
            raise ValueError(f"truth names layout {name!r}, not a packaged one; pass layout=")
        found = load_layout(packaged)
    if found.store_id != record["store_id"]:
        raise ValueError(f"layout is for {found.store_id!r}, truth for {record['store_id']!r}")
    return found


def sample_grid(instants: list[int], start: int, end: int) -> list[int]:
    """Every tick of the pipeline's sampling clock in the window, not only those with tracks:
    an instant with nobody reported is where a lost person counts as missed."""
    gaps = np.diff(instants)
    if len(gaps) == 0 or np.any(gaps % gaps.min()):
        return instants  # no regular clock to extend
    step = int(gaps.min())
    first = instants[0] - (instants[0] - start) // step * step
    return list(range(first, end, step))


def truth_visits(record: Mapping[str, Any], lo: int, hi: int) -> tuple[list[tuple[int, int]], int]:
    """True visits beginning in [lo, hi) as (enter, exit) ms, and how many exits fall in it.

    A visit runs from its door crossing in to its door crossing out (``door_in``,
    ``door_out``), what the pipeline measures; where the truth has no door times, from
    appearing to vanishing.
    """

    def moment(visit: Mapping[str, Any], door: str, fallback: str) -> int:
        value = visit.get(door)
        return event_ms(value if value is not None else visit[fallback], "truth")

    visits = [
        (moment(v, "door_in", "enter"), moment(v, "door_out", "exit")) for v in record["visits"]
    ]
    exits = sum(lo <= exit_ < hi for _, exit_ in visits)
    return [(enter, exit_) for enter, exit_ in visits if lo <= enter < hi], exits
