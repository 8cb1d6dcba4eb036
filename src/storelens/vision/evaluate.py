"""How good is the vision pipeline? Its events scored against the simulator's ground truth.

Four questions, each on the floor plan and inside one time window:

* tracking: CLEAR-MOT (MOTA), IDF1 and HOTA, computed by TrackEval on floor distance
  (similarity ``1 - d / match_distance_m``) at every instant a ``vision.track`` sample
  was taken, against the truth positions of the nearest frame (within half a frame) of
  the people the cameras can see;
* footfall: door entries and exits (``vision.line_crossed``) against truth visits, which
  are customers only (staff never appear in ``visits``);
* dwell: one predicted visit per track that crossed a line, from its "in" crossing to
  its "out" crossing; a missing crossing falls back to the track's first or last
  sighting, so a track split in two shows up as two half visits rather than vanishing.
  Predicted and true visits that begin in the window are paired one to one (Hungarian
  on |Δenter| + |Δexit|, pairs above ``dwell_match_cap_s`` refused); a true visit still
  under way at the window's end is paired on |Δenter| alone and has no dwell error;
* occupancy: each ``vision.occupancy`` sample against the people in that zone at that
  instant, among those its camera (or, without one, any scored camera) sees.

The window defaults to the span of the store's vision events, so a pipeline run over one
hour of a simulated day is scored on that hour. Staff stay in by default, since cameras
see staff too; ``exclude_staff`` drops them from truth and ignores predictions on them.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ValidationError

from storelens.core.events import LineCrossing, TrackPoint, ZoneCrossing, ZoneOccupancy
from storelens.core.layout import StoreLayout, load_layout
from storelens.vision.geometry import CameraView, FloatArray

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "CountScore",
    "DwellScore",
    "OccupancyScore",
    "TrackingScore",
    "VisionScore",
    "evaluate",
    "print_score",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MARGIN_MS = 1_000  # positions read beyond the window, for the nearest frame at its edges
_BATCH_ROWS = 262_144
ZoneTruth = Literal["polygon", "label"]
_PAYLOADS: dict[str, type[BaseModel]] = {
    "vision.track": TrackPoint,
    "vision.line_crossed": LineCrossing,
    "vision.occupancy": ZoneOccupancy,
    "vision.zone_enter": ZoneCrossing,
    "vision.zone_exit": ZoneCrossing,
}


@dataclass(frozen=True, slots=True)
class TrackingScore:
    mota: float
    idf1: float
    hota: float
    instants: int
    truth_points: int
    predicted_points: int
    misses: int
    false_positives: int
    id_switches: int


@dataclass(frozen=True, slots=True)
class CountScore:
    true: int
    predicted: int

    @property
    def accuracy(self) -> float | None:
        """1 - |predicted - true| / true, floored at 0; None when nobody came to count."""
        if self.true == 0:
            return None
        return max(0.0, 1.0 - abs(self.predicted - self.true) / self.true)


@dataclass(frozen=True, slots=True)
class DwellScore:
    truth_visits: int
    predicted_visits: int
    matched: int
    open_visits: int
    """True visits still under way at the window's end: paired on entry, no dwell error."""
    median_abs_rel_error: float | None
    median_abs_error_s: float | None

    @property
    def unmatched_truth(self) -> int:
        return self.truth_visits - self.matched

    @property
    def unmatched_predicted(self) -> int:
        return self.predicted_visits - self.matched


@dataclass(frozen=True, slots=True)
class OccupancyScore:
    """Absolute errors in people; ``bias`` is the mean of predicted - true."""

    samples: int
    mean_abs_error: float
    p95_abs_error: float
    max_abs_error: int
    bias: float

    @classmethod
    def of(cls, predicted: Sequence[int], true: Sequence[int]) -> OccupancyScore:
        signed = np.asarray(predicted, dtype=np.int64) - np.asarray(true, dtype=np.int64)
        error = np.abs(signed)
        return cls(
            samples=len(error),
            mean_abs_error=float(error.mean()),
            p95_abs_error=float(np.percentile(error, 95)),
            max_abs_error=int(error.max()),
            bias=float(signed.mean()),
        )


@dataclass(frozen=True)
class VisionScore:
    store_id: str
    start: datetime
    end: datetime
    camera_ids: tuple[str, ...]
    tracking: TrackingScore | None
    entries: CountScore
    exits: CountScore
    dwell: DwellScore
    occupancy: Mapping[str, OccupancyScore]
    occupancy_overall: OccupancyScore | None

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record.update(start=self.start.isoformat(), end=self.end.isoformat())
        record["camera_ids"] = list(self.camera_ids)
        record["entries"]["accuracy"] = self.entries.accuracy
        record["exits"]["accuracy"] = self.exits.accuracy
        record["dwell"]["unmatched_truth"] = self.dwell.unmatched_truth
        record["dwell"]["unmatched_predicted"] = self.dwell.unmatched_predicted
        return record

    def table(self) -> list[tuple[str, str]]:
        """(metric, value) rows for a terminal table; "—" where there was nothing to score."""

        def num(value: float | None, digits: int = 3) -> str:
            return "—" if value is None else f"{value:.{digits}f}"

        def pct(value: float | None) -> str:
            return "—" if value is None else f"{value:.1%}"

        rows = [("window", f"{self.start:%Y-%m-%d %H:%M:%S} – {self.end:%H:%M:%S} UTC")]
        if (tracking := self.tracking) is not None:
            rows += [
                ("MOTA", num(tracking.mota)),
                ("IDF1", num(tracking.idf1)),
                ("HOTA", num(tracking.hota)),
                ("track points (truth / predicted)", f"{tracking.truth_points} / "
                 f"{tracking.predicted_points}"),
                ("misses / false positives / id switches", f"{tracking.misses} / "
                 f"{tracking.false_positives} / {tracking.id_switches}"),
            ]  # fmt: skip
        for name, score in (("entries", self.entries), ("exits", self.exits)):
            rows.append((f"{name} (true / predicted)", f"{score.true} / {score.predicted}"))
            rows.append((f"{name} accuracy", pct(score.accuracy)))
        dwell = self.dwell
        rows += [
            ("dwell median relative error", pct(dwell.median_abs_rel_error)),
            ("dwell median error (s)", num(dwell.median_abs_error_s, 1)),
            ("visits matched / unmatched truth / unmatched predicted",
             f"{dwell.matched} / {dwell.unmatched_truth} / {dwell.unmatched_predicted}"),
            ("visits still under way at the end", str(dwell.open_visits)),
        ]  # fmt: skip
        for zone, occ in [*self.occupancy.items(), ("all zones", self.occupancy_overall)]:
            if occ is not None:
                text = f"p95 {occ.p95_abs_error:g}, max {occ.max_abs_error} ({occ.samples} samples)"
                rows.append((f"occupancy error: {zone}", text))
        return rows


def print_score(score: VisionScore, console: Console | None = None) -> None:
    """The score as a Rich table (what ``storelens vision eval`` prints)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Vision score, {score.store_id}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for metric, value in score.table():
        table.add_row(metric, value)
    (console or Console()).print(table)


# ---- reading ----------------------------------------------------------------------------


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"{moment} must carry a time zone")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _utc(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _event_ms(value: object, where: str) -> int:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{where}: ts {value!r} is not an ISO timestamp") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{where}: ts must be a timestamp with a time zone, got {value!r}")
    return _ms(value)


def _lines(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if line.strip():
                try:
                    yield f"{path.name}:{number}", json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path.name}:{number}: not JSON ({exc.msg})") from None


@dataclass
class _Predicted:
    """The vision events of one store, as plain columns."""

    tracks: list[tuple[int, str, float, float]]
    crossings: list[tuple[int, str, str, str]]  # ms, line, track, direction
    occupancy: list[tuple[int, str, int, str | None]]  # ms, zone, count, camera
    sightings: dict[str, list[int]]

    def window(self, start: int, end: int) -> _Predicted:
        def keep(ms: int) -> bool:
            return start <= ms < end

        sightings = {k: [m for m in v if keep(m)] for k, v in self.sightings.items()}
        return _Predicted(
            [t for t in self.tracks if keep(t[0])],
            [c for c in self.crossings if keep(c[0])],
            [o for o in self.occupancy if keep(o[0])],
            {k: v for k, v in sightings.items() if v},
        )


def _read_events(events: Iterable[Mapping[str, Any]] | Path | str, store_id: str) -> _Predicted:
    if isinstance(events, str | Path):
        path = Path(events)
        if not path.is_file():
            raise FileNotFoundError(f"no events file at {path}")
        numbered: Iterable[tuple[str, Mapping[str, Any]]] = _lines(path)
    else:
        numbered = ((f"event {i}", event) for i, event in enumerate(events))
    found = _Predicted([], [], [], defaultdict(list))
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
        ms = _event_ms(event.get("ts"), where)
        try:
            payload = model.model_validate(event.get("payload"))
        except ValidationError as exc:
            problem = exc.errors(include_url=False)[0]
            key = ".".join(str(part) for part in problem["loc"]) or "payload"
            raise ValueError(f"{where}: {type_} {key}: {problem['msg']}") from None
        if isinstance(payload, ZoneOccupancy):
            found.occupancy.append((ms, payload.zone_id, payload.count, payload.camera_id))
            continue
        if isinstance(payload, TrackPoint):
            found.tracks.append((ms, payload.track_id, payload.x, payload.y))
        elif isinstance(payload, LineCrossing):
            crossing = (ms, payload.line_id, payload.track_id, payload.direction)
            found.crossings.append(crossing)
        assert isinstance(payload, TrackPoint | LineCrossing | ZoneCrossing)
        found.sightings[payload.track_id].append(ms)
    if not (found.tracks or found.crossings or found.occupancy or found.sightings):
        others = f"; found vision events of {sorted(other_stores)}" if other_stores else ""
        raise ValueError(f"no vision events for store {store_id!r}{others}")
    return found


@dataclass
class _TruthFrames:
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


def _read_positions(path: Path, start: int, end: int) -> _TruthFrames:
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
    return _TruthFrames(
        ms.astype(np.int64), person.astype(np.int64), np.column_stack([x, y]).astype(float),
        zone.astype(object), staff.astype(bool), frames, np.r_[starts, len(ms)].astype(np.int64),
        step // 2, (first, last),
    )  # fmt: skip


# ---- scoring ----------------------------------------------------------------------------


class _Sight:
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

    def rows(self, truth: _TruthFrames, camera_id: str | None = None) -> npt.NDArray[np.bool_]:
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


def _assign(cost: FloatArray, limit: float) -> list[tuple[int, int]]:
    """One-to-one pairs of least total cost, none above ``limit``."""
    from scipy.optimize import linear_sum_assignment

    if cost.size == 0:
        return []
    rows, cols = linear_sum_assignment(np.where(cost <= limit, cost, limit * 4 + 1e6))
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= limit]


def _distances(a: FloatArray, b: FloatArray) -> FloatArray:
    return np.asarray(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2), dtype=np.float64)


def _sample_grid(instants: list[int], start: int, end: int) -> list[int]:
    """Every tick of the pipeline's sampling clock in the window, not only those with tracks:
    an instant with nobody reported is where a lost person counts as missed."""
    gaps = np.diff(instants)
    if len(gaps) == 0 or np.any(gaps % gaps.min()):
        return instants  # no regular clock to extend
    step = int(gaps.min())
    first = instants[0] - (instants[0] - start) // step * step
    return list(range(first, end, step))


def _tracking(
    predicted: _Predicted,
    truth: _TruthFrames,
    sight: _Sight,
    window: tuple[int, int],
    reach: float,
    exclude_staff: bool,
) -> TrackingScore | None:
    by_instant: dict[int, dict[str, list[tuple[float, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for ms, track, x, y in predicted.tracks:
        by_instant[ms][track].append((x, y))
    truth_ids: dict[int, int] = {}
    track_ids: dict[str, int] = {}
    gt, tr, similarity = [], [], []
    if not by_instant:
        return None
    for ms in _sample_grid(sorted(by_instant), *window):
        rows = truth.at(ms)
        if rows is None:
            continue  # outside what positions.parquet covers
        xy, person, staff = truth.xy[rows], truth.person[rows], truth.staff[rows]
        seen = sight.rows(truth)[rows]
        tracks = by_instant.get(ms, {})
        names = sorted(tracks)  # one track seen by two cameras at once: its mean position
        guess = np.array([np.mean(tracks[n], axis=0) for n in names]).reshape(-1, 2)
        if exclude_staff and (seen & staff).any():  # predictions on staff are no one's fault
            on_staff = {c for _, c in _assign(_distances(xy[seen & staff], guess), reach)}
            names = [n for i, n in enumerate(names) if i not in on_staff]
            guess = np.delete(guess, sorted(on_staff), axis=0).reshape(-1, 2)
        keep = seen & ~staff if exclude_staff else seen
        gt.append(np.array([truth_ids.setdefault(int(p), len(truth_ids)) for p in person[keep]]))
        tr.append(np.array([track_ids.setdefault(n, len(track_ids)) for n in names]))
        similarity.append(np.clip(1.0 - _distances(xy[keep], guess) / reach, 0.0, 1.0))
    if not gt:
        return None
    return _trackeval(gt, tr, similarity, len(truth_ids), len(track_ids))


def _trackeval(
    gt: list[Any], tr: list[Any], similarity: list[FloatArray], n_gt: int, n_tr: int
) -> TrackingScore:
    from trackeval.metrics import CLEAR, HOTA, Identity

    n_gt_dets, n_tr_dets = sum(len(g) for g in gt), sum(len(t) for t in tr)
    data = {
        "num_timesteps": len(gt),
        "num_gt_ids": n_gt,
        "num_tracker_ids": n_tr,
        "num_gt_dets": n_gt_dets,
        "num_tracker_dets": n_tr_dets,
        "gt_ids": [g.astype(int) for g in gt],
        "tracker_ids": [t.astype(int) for t in tr],
        "similarity_scores": similarity,
    }
    # Any similarity above zero is a floor distance under match_distance_m: a match.
    config = {"THRESHOLD": 1e-9, "PRINT_CONFIG": False}
    clear = CLEAR(config).eval_sequence(data)
    identity = Identity(config).eval_sequence(data)
    hota = HOTA().eval_sequence(data)
    return TrackingScore(
        mota=float(clear["MOTA"]),
        idf1=float(identity["IDF1"]),
        hota=float(np.mean(hota["HOTA"])),
        instants=len(gt),
        truth_points=n_gt_dets,
        predicted_points=n_tr_dets,
        misses=int(clear["CLR_FN"]),
        false_positives=int(clear["CLR_FP"]),
        id_switches=int(clear["IDSW"]),
    )


def _predicted_visits(
    predicted: _Predicted, lines: Collection[str] | None
) -> list[tuple[int, int]]:
    crossings: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"in": [], "out": []})
    for ms, line, track, direction in predicted.crossings:
        if lines is None or line in lines:
            crossings[track][direction].append(ms)
    visits = []
    for track, seen in crossings.items():
        sightings = predicted.sightings[track]
        enter = min(seen["in"]) if seen["in"] else min(sightings)
        outs = [ms for ms in seen["out"] if ms >= enter]
        visits.append((enter, max(outs) if outs else max(sightings)))
    return visits


def _dwell(
    truth: list[tuple[int, int]], predicted: list[tuple[int, int]], end: int, cap_s: float
) -> DwellScore:
    """A visit still under way at ``end`` can only be paired on its entry time."""
    open_ = [exit_ >= end for _, exit_ in truth]
    cost = np.array(
        [
            [(abs(pe - te) + (0 if still else abs(px - tx))) / 1000 for pe, px in predicted]
            for (te, tx), still in zip(truth, open_, strict=True)
        ]
    ).reshape(len(truth), len(predicted))
    pairs = _assign(cost, cap_s)
    relative, absolute = [], []
    for t, p in pairs:
        if open_[t]:
            continue
        true_s = (truth[t][1] - truth[t][0]) / 1000
        error = abs((predicted[p][1] - predicted[p][0]) / 1000 - true_s)
        absolute.append(error)
        if true_s > 0:
            relative.append(error / true_s)
    return DwellScore(
        truth_visits=len(truth),
        predicted_visits=len(predicted),
        matched=len(pairs),
        open_visits=sum(open_),
        median_abs_rel_error=float(np.median(relative)) if relative else None,
        median_abs_error_s=float(np.median(absolute)) if absolute else None,
    )


def _inside(polygon: Sequence[tuple[float, float]], xy: FloatArray) -> npt.NDArray[np.bool_]:
    """Even-odd test for many points at once; points on the outline count as inside, as in
    `Zone.contains`, so tracks along a wall stay in."""
    poly = np.asarray(polygon, dtype=np.float64)
    a, b = poly, np.roll(poly, -1, axis=0)
    x, y = xy[:, :1], xy[:, 1:]
    (x1, y1), (x2, y2) = a.T[:, None, :], b.T[:, None, :]
    spans = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = spans & (x < x1 + (y - y1) * (x2 - x1) / (y2 - y1))
    cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
    on_edge = (np.abs(cross) <= 1e-9) & (x >= np.minimum(x1, x2) - 1e-9) & (
        x <= np.maximum(x1, x2) + 1e-9) & (y >= np.minimum(y1, y2) - 1e-9) & (
        y <= np.maximum(y1, y2) + 1e-9)  # fmt: skip
    return np.asarray((crossing.sum(axis=1) % 2 == 1) | on_edge.any(axis=1))


def _occupancy(
    predicted: _Predicted,
    truth: _TruthFrames,
    sight: _Sight,
    layout: StoreLayout,
    zone_truth: ZoneTruth,
    exclude_staff: bool,
) -> tuple[dict[str, OccupancyScore], OccupancyScore | None]:
    zones = {zone.id: zone for zone in layout.zones}
    pairs: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for ms, zone_id, count, camera_id in sorted(predicted.occupancy, key=lambda o: o[0]):
        if zone_id not in zones:
            raise ValueError(f"an occupancy sample names unknown zone {zone_id!r}")
        rows = truth.at(ms)
        if rows is None:
            continue
        xy = truth.xy[rows]
        present = sight.rows(truth, camera_id)[rows].copy()  # a slice is a view of the cache
        if exclude_staff:
            present &= ~truth.staff[rows]
        if zone_truth == "label":
            present &= truth.zone[rows] == zone_id
        elif len(xy):
            present &= _inside(zones[zone_id].polygon, xy)
        pairs[zone_id][0].append(count)
        pairs[zone_id][1].append(int(present.sum()))
    per_zone = {zone: OccupancyScore.of(*pairs[zone]) for zone in sorted(pairs)}
    if not pairs:
        return per_zone, None
    predicted_all = [count for zone in pairs for count in pairs[zone][0]]
    return per_zone, OccupancyScore.of(predicted_all, [n for zone in pairs for n in pairs[zone][1]])


def _truth_file(truth: Path) -> tuple[dict[str, Any], Path]:
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


def _layout_of(record: Mapping[str, Any], layout: StoreLayout | Path | str | None) -> StoreLayout:
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


def evaluate(
    truth_dir: Path | str,
    events: Iterable[Mapping[str, Any]] | Path | str,
    *,
    camera_ids: Collection[str] | None = None,
    match_distance_m: float = 1.0,
    start: datetime | None = None,
    end: datetime | None = None,
    layout: StoreLayout | Path | str | None = None,
    exclude_staff: bool = False,
    line_ids: Collection[str] | None = None,
    zone_truth: ZoneTruth = "polygon",
    dwell_match_cap_s: float = 120.0,
) -> VisionScore:
    """Score the pipeline's events (an events.jsonl path or parsed envelopes) over [start, end).

    ``layout`` defaults to the packaged layout the truth names. ``zone_truth`` says who is
    in a zone: "polygon" (the layout's outline, what a perfect tracker measures) or "label"
    (the simulator's own zone of the moment, which switches mid-walk).
    """
    if not (math.isfinite(match_distance_m) and match_distance_m > 0):
        raise ValueError(f"match_distance_m must be positive, got {match_distance_m!r}")
    if not (math.isfinite(dwell_match_cap_s) and dwell_match_cap_s > 0):
        raise ValueError(f"dwell_match_cap_s must be positive, got {dwell_match_cap_s!r}")
    if zone_truth not in ("polygon", "label"):
        raise ValueError(f"zone_truth must be 'polygon' or 'label', got {zone_truth!r}")
    record, positions_path = _truth_file(Path(truth_dir))
    store = _layout_of(record, layout)
    sight = _Sight(store, camera_ids)
    predicted = _read_events(events, store.store_id)
    stamps = [t[0] for t in predicted.tracks] + [c[0] for c in predicted.crossings]
    stamps += [o[0] for o in predicted.occupancy] + [
        m for v in predicted.sightings.values() for m in v
    ]
    lo = _ms(start) if start is not None else min(stamps)
    hi = _ms(end) if end is not None else max(stamps) + 1
    if lo >= hi:
        raise ValueError(f"the window is empty: start {_utc(lo)} is not before end {_utc(hi)}")
    predicted = predicted.window(lo, hi)
    truth = _read_positions(positions_path, lo, hi)
    visits = [
        (_event_ms(v["enter"], "truth"), _event_ms(v["exit"], "truth")) for v in record["visits"]
    ]
    visits = [(enter, exit_) for enter, exit_ in visits if lo <= enter < hi]
    exits = sum(lo <= _event_ms(v["exit"], "truth") < hi for v in record["visits"])
    lines = None if line_ids is None else set(line_ids)
    counted = [c for c in predicted.crossings if lines is None or c[1] in lines]
    per_zone, overall = _occupancy(predicted, truth, sight, store, zone_truth, exclude_staff)
    return VisionScore(
        store_id=store.store_id,
        start=_utc(lo),
        end=_utc(hi),
        camera_ids=sight.chosen,
        tracking=_tracking(predicted, truth, sight, (lo, hi), match_distance_m, exclude_staff),
        entries=CountScore(len(visits), sum(c[3] == "in" for c in counted)),
        exits=CountScore(exits, sum(c[3] == "out" for c in counted)),
        dwell=_dwell(visits, _predicted_visits(predicted, lines), hi, dwell_match_cap_s),
        occupancy=per_zone,
        occupancy_overall=overall,
    )
