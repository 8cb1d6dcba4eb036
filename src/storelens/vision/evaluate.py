"""How good is the vision pipeline? Its events scored against the simulator's ground truth.

Four questions, each on the floor plan and inside one time window:

* tracking: CLEAR-MOT (MOTA), IDF1 and HOTA, computed by TrackEval on floor distance
  (similarity ``1 - d / match_distance_m``) at every instant a ``vision.track`` sample
  was taken, against the truth positions of the nearest frame (within half a frame) of
  the people the cameras can see;
* footfall: door entries and exits (``vision.line_crossed``) against truth visits, which
  are customers only (staff never appear in ``visits``);
* dwell: the pipeline's door-to-door visits (``vision.visit``, chained across track
  breaks by `storelens.vision.visits`) that crossed a scored line. Predicted and true
  visits that begin in the window are paired one to one (Hungarian on |Δenter| +
  |Δexit|, pairs above ``dwell_match_cap_s`` refused); a true visit still under way at
  the window's end is paired on |Δenter| alone and has no dwell error;
* occupancy: each ``vision.occupancy`` sample against the people in that zone at that
  instant, among those its camera (or, without one, any scored camera) sees.

The window defaults to the span of the store's vision events, so a pipeline run over one
hour of a simulated day is scored on that hour. Staff stay in by default, since cameras
see staff too; ``exclude_staff`` drops them from truth and ignores predictions on them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from storelens.core.camera import FloatArray
from storelens.core.layout import StoreLayout
from storelens.vision.coverage import (
    DwellScore,
    ZoneVisitScore,
    assign,
    dwell_score,
    heatmap_pearson,
    truth_zone_visits,
    zone_scores,
)
from storelens.vision.score_inputs import (
    Predicted,
    Sight,
    TruthFrames,
    ZoneTruth,
    from_ms,
    layout_of,
    read_events,
    read_positions,
    sample_grid,
    truth_file,
    truth_visits,
)

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "CountScore",
    "DwellScore",
    "OccupancyScore",
    "TrackingScore",
    "VisionScore",
    "ZoneVisitScore",
    "evaluate",
    "print_score",
]


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
    zones: Mapping[str, ZoneVisitScore] = field(default_factory=dict)
    heatmap_r: float | None = None

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record.update(start=self.start.isoformat(), end=self.end.isoformat())
        record["camera_ids"] = list(self.camera_ids)
        record["entries"]["accuracy"] = self.entries.accuracy
        record["exits"]["accuracy"] = self.exits.accuracy
        record["dwell"]["unmatched_truth"] = self.dwell.unmatched_truth
        record["dwell"]["unmatched_predicted"] = self.dwell.unmatched_predicted
        for zone, visits in self.zones.items():
            record["zones"][zone]["count_error"] = visits.count_error
            record["zones"][zone]["mean_dwell_error"] = visits.mean_dwell_error
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
            ("store visits (true / predicted / matched)",
             f"{dwell.truth_visits} / {dwell.predicted_visits} / {dwell.matched}"),
            ("dwell median relative error", pct(dwell.median_abs_rel_error)),
            ("dwell p90 relative error", pct(dwell.p90_abs_rel_error)),
            ("mean dwell (true / predicted, s)",
             f"{num(dwell.mean_true_s, 1)} / {num(dwell.mean_predicted_s, 1)}"),
            ("dwell median error (s)", num(dwell.median_abs_error_s, 1)),
            ("visits matched / unmatched truth / unmatched predicted",
             f"{dwell.matched} / {dwell.unmatched_truth} / {dwell.unmatched_predicted}"),
            ("visits still under way at the end", str(dwell.open_visits)),
        ]  # fmt: skip
        for zone, visits in self.zones.items():
            rows.append(
                (
                    f"zone {zone}: visits (true / predicted / matched)",
                    f"{visits.true} / {visits.predicted} / {visits.matched}",
                )
            )
            rows.append(
                (
                    f"zone {zone}: dwell error median / p90; mean dwell true / predicted (s)",
                    f"{pct(visits.median_abs_rel_error)} / {pct(visits.p90_abs_rel_error)}; "
                    f"{num(visits.mean_true_s, 1)} / {num(visits.mean_predicted_s, 1)}",
                )
            )
        rows.append(("heatmap Pearson r", num(self.heatmap_r)))
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


def _distances(a: FloatArray, b: FloatArray) -> FloatArray:
    return np.asarray(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2), dtype=np.float64)


def _tracking(
    predicted: Predicted,
    truth: TruthFrames,
    sight: Sight,
    window: tuple[int, int],
    reach: float,
    exclude_staff: bool,
) -> TrackingScore | None:
    by_instant = predicted.by_instant()
    truth_ids: dict[int, int] = {}
    track_ids: dict[str, int] = {}
    gt, tr, similarity = [], [], []
    if not by_instant:
        return None
    for ms in sample_grid(sorted(by_instant), *window):
        rows = truth.at(ms)
        if rows is None:
            continue  # outside what positions.parquet covers
        xy, person, staff = truth.xy[rows], truth.person[rows], truth.staff[rows]
        seen = sight.rows(truth)[rows]
        tracks = by_instant.get(ms, {})
        names = sorted(tracks)  # one track seen by two cameras at once: its mean position
        guess = np.array([np.mean(tracks[n], axis=0) for n in names]).reshape(-1, 2)
        if exclude_staff and (seen & staff).any():  # predictions on staff are no one's fault
            on_staff = {c for _, c in assign(_distances(xy[seen & staff], guess), reach)}
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


def _occupancy(
    predicted: Predicted,
    truth: TruthFrames,
    sight: Sight,
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
        pairs[zone_id][0].append(count)
        seen = sight.rows(truth, camera_id)[rows]
        pairs[zone_id][1].append(truth.count(rows, seen, zones[zone_id], zone_truth, exclude_staff))
    per_zone = {zone: OccupancyScore.of(*pairs[zone]) for zone in sorted(pairs)}
    if not pairs:
        return per_zone, None
    predicted_all = [count for zone in pairs for count in pairs[zone][0]]
    return per_zone, OccupancyScore.of(predicted_all, [n for zone in pairs for n in pairs[zone][1]])


def _zone_visits(
    predicted: Predicted,
    truth: TruthFrames,
    sight: Sight,
    layout: StoreLayout,
    exclude_staff: bool,
    min_dwell_s: float,
    merge_gap_s: float,
    cap_s: float,
) -> dict[str, ZoneVisitScore]:
    """Visits to the zones the scored cameras cover, among the people they see."""
    covered = sorted({z for c in sight.chosen for z in layout.camera(c).covers})
    keep = sight.rows(truth) & ~truth.staff if exclude_staff else sight.rows(truth)
    true = truth_zone_visits(
        truth.ms[keep], truth.person[keep], truth.xy[keep], layout, covered, merge_gap_s
    )
    return zone_scores(true, predicted.zone_visits(), min_dwell_s=min_dwell_s, cap_s=cap_s)


def _heatmap(
    predicted: Predicted,
    truth: TruthFrames,
    sight: Sight,
    layout: StoreLayout,
    exclude_staff: bool,
    cell_m: float,
) -> float | None:
    keep = sight.rows(truth) & ~truth.staff if exclude_staff else sight.rows(truth)
    guess = np.array([(x, y) for _, _, x, y in predicted.tracks], dtype=float).reshape(-1, 2)
    floor = layout.floor
    return heatmap_pearson(truth.xy[keep], guess, floor.width_m, floor.height_m, cell_m)


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
    zone_min_dwell_s: float = 5.0,
    zone_merge_gap_s: float = 5.0,
    heatmap_cell_m: float = 0.5,
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
    record, positions_path = truth_file(Path(truth_dir))
    store = layout_of(record, layout)
    sight = Sight(store, camera_ids)
    predicted = read_events(events, store.store_id)
    lo, hi = predicted.window_ms(start, end)
    predicted = predicted.window(lo, hi)
    truth = read_positions(positions_path, lo, hi)
    visits, exits = truth_visits(record, lo, hi)
    lines = None if line_ids is None else set(line_ids)
    counted = [c for c in predicted.crossings if lines is None or c[1] in lines]
    per_zone, overall = _occupancy(predicted, truth, sight, store, zone_truth, exclude_staff)
    return VisionScore(
        store_id=store.store_id,
        start=from_ms(lo),
        end=from_ms(hi),
        camera_ids=sight.chosen,
        tracking=_tracking(predicted, truth, sight, (lo, hi), match_distance_m, exclude_staff),
        entries=CountScore(len(visits), sum(c[3] == "in" for c in counted)),
        exits=CountScore(exits, sum(c[3] == "out" for c in counted)),
        dwell=dwell_score(visits, predicted.visits(lines, lo), hi, dwell_match_cap_s),
        occupancy=per_zone,
        occupancy_overall=overall,
        zones=_zone_visits(predicted, truth, sight, store, exclude_staff, zone_min_dwell_s,
                           zone_merge_gap_s, dwell_match_cap_s),
        heatmap_r=_heatmap(predicted, truth, sight, store, exclude_staff, heatmap_cell_m),
    )  # fmt: skip
