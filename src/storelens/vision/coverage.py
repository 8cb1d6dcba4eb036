"""Coverage beside error: how many visits the pipeline found, not only how well it timed them.

A median dwell error over the visits that happened to match hides fragmentation: a
seated hour broken into twelve five-minute visits matches one of them, badly, and the
other eleven vanish from the median. So every visit figure here comes with its counts
(true, predicted, matched) and with the mean dwell of all true and all predicted visits,
which fragmentation drags down whatever matched.

* **store visits** (`dwell_score`): door-to-door visits paired one to one (Hungarian on
  |Δenter| + |Δexit|, capped); median and p90 relative dwell error over the pairs;
* **zone visits** (`zone_scores`): per zone, true visits are runs of a person's frames
  inside the zone's outline (gaps under ``merge_gap_s`` bridged, as the pipeline does),
  among the frames the scored cameras see; predicted ones are ``vision.zone_exit`` events
  (exit time and dwell). Only visits of at least ``min_dwell_s`` count, on both sides,
  since a walk-through is not what a manager asks about;
* **heatmap** (`heatmap_pearson`): Pearson r between the pipeline's sampled track
  positions and the true person-seconds, on a grid of ``cell_m`` cells.

Times are integer milliseconds since the epoch; pure numpy/scipy, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from storelens.core.camera import FloatArray
from storelens.core.layout import StoreLayout
from storelens.vision.zones import ZoneMap

__all__ = [
    "DwellScore",
    "ZoneVisitScore",
    "assign",
    "dwell_score",
    "heatmap_pearson",
    "truth_zone_visits",
    "zone_scores",
]

_CHUNK_ROWS = 50_000  # ZoneMap.inside builds (rows x edges) arrays: bound their size


@dataclass(frozen=True, slots=True)
class DwellScore:
    """Door-to-door store visits: counts, then dwell error over the matched ones."""

    truth_visits: int
    predicted_visits: int
    matched: int
    open_visits: int
    """True visits still under way at the window's end: paired on entry, no dwell error."""
    median_abs_rel_error: float | None
    median_abs_error_s: float | None
    p90_abs_rel_error: float | None = None
    mean_true_s: float | None = None
    mean_predicted_s: float | None = None

    @property
    def unmatched_truth(self) -> int:
        return self.truth_visits - self.matched

    @property
    def unmatched_predicted(self) -> int:
        return self.predicted_visits - self.matched


@dataclass(frozen=True, slots=True)
class ZoneVisitScore:
    """One zone's visits of at least ``min_dwell_s``: counts, dwell error and means."""

    true: int
    predicted: int
    matched: int
    median_abs_rel_error: float | None
    p90_abs_rel_error: float | None
    mean_true_s: float | None
    mean_predicted_s: float | None

    @property
    def count_error(self) -> float | None:
        """(predicted - true) / true; None when nobody visited."""
        return None if self.true == 0 else (self.predicted - self.true) / self.true

    @property
    def mean_dwell_error(self) -> float | None:
        """(mean predicted - mean true) / mean true."""
        if self.mean_true_s is None or self.mean_predicted_s is None or self.mean_true_s <= 0:
            return None
        return (self.mean_predicted_s - self.mean_true_s) / self.mean_true_s


def assign(cost: FloatArray, limit: float) -> list[tuple[int, int]]:
    """One-to-one pairs of least total cost, none above ``limit``."""
    from scipy.optimize import linear_sum_assignment

    if cost.size == 0:
        return []
    rows, cols = linear_sum_assignment(np.where(cost <= limit, cost, limit * 4 + 1e6))
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= limit]


def _mean_s(spans: Sequence[tuple[int, int]]) -> float | None:
    return float(np.mean([(b - a) / 1000 for a, b in spans])) if spans else None


def _pair_errors(
    truth: Sequence[tuple[int, int]],
    predicted: Sequence[tuple[int, int]],
    cap_s: float,
    still_open: Sequence[bool] | None = None,
) -> tuple[list[tuple[int, int]], list[float], list[float]]:
    """Pairs, and the relative and absolute dwell errors of the closed ones."""
    open_ = list(still_open) if still_open is not None else [False] * len(truth)
    cost = np.array(
        [
            [(abs(pe - te) + (0 if still else abs(px - tx))) / 1000 for pe, px in predicted]
            for (te, tx), still in zip(truth, open_, strict=True)
        ]
    ).reshape(len(truth), len(predicted))
    pairs = assign(cost, cap_s)
    relative, absolute = [], []
    for t, p in pairs:
        if open_[t]:
            continue
        true_s = (truth[t][1] - truth[t][0]) / 1000
        error = abs((predicted[p][1] - predicted[p][0]) / 1000 - true_s)
        absolute.append(error)
        if true_s > 0:
            relative.append(error / true_s)
    return pairs, relative, absolute


def _quantile(values: Sequence[float], q: float) -> float | None:
    return float(np.quantile(values, q)) if values else None


def dwell_score(
    truth: Sequence[tuple[int, int]], predicted: Sequence[tuple[int, int]], end: int, cap_s: float
) -> DwellScore:
    """Store visits; a true visit still under way at ``end`` is paired on its entry alone."""
    open_ = [exit_ >= end for _, exit_ in truth]
    pairs, relative, absolute = _pair_errors(truth, predicted, cap_s, open_)
    closed = [span for span, still in zip(truth, open_, strict=True) if not still]
    return DwellScore(
        truth_visits=len(truth),
        predicted_visits=len(predicted),
        matched=len(pairs),
        open_visits=sum(open_),
        median_abs_rel_error=_quantile(relative, 0.5),
        median_abs_error_s=_quantile(absolute, 0.5),
        p90_abs_rel_error=_quantile(relative, 0.9),
        mean_true_s=_mean_s(closed),
        mean_predicted_s=_mean_s(predicted),
    )


def truth_zone_visits(
    ms: npt.NDArray[np.int64],
    person: npt.NDArray[np.int64],
    xy: FloatArray,
    layout: StoreLayout,
    zone_ids: Sequence[str],
    merge_gap_s: float,
) -> dict[str, list[tuple[int, int]]]:
    """Per zone, each person's runs of frames inside its outline as (first, last) ms;
    absences shorter than ``merge_gap_s`` stay inside one visit."""
    zones = [layout.zone(z) for z in zone_ids]
    found: dict[str, list[tuple[int, int]]] = {z: [] for z in zone_ids}
    if not len(ms) or not zones:
        return found
    zone_map = ZoneMap(zones)
    inside = np.vstack(
        [zone_map.inside(xy[i : i + _CHUNK_ROWS]) for i in range(0, len(xy), _CHUNK_ROWS)]
    )
    gap = round(merge_gap_s * 1000)
    for k, zone_id in enumerate(zone_ids):
        rows = np.flatnonzero(inside[:, k])
        if not len(rows):
            continue
        order = np.lexsort((ms[rows], person[rows]))
        who, when = person[rows][order], ms[rows][order]
        breaks = np.flatnonzero((np.diff(who) != 0) | (np.diff(when) >= gap)) + 1
        starts = np.r_[0, breaks]
        ends = np.r_[breaks - 1, len(when) - 1]
        found[zone_id] = [(int(when[a]), int(when[b])) for a, b in zip(starts, ends, strict=True)]
    return found


def zone_scores(
    truth: Mapping[str, Sequence[tuple[int, int]]],
    predicted: Mapping[str, Sequence[tuple[int, int]]],
    *,
    min_dwell_s: float,
    cap_s: float,
) -> dict[str, ZoneVisitScore]:
    """Per zone of ``truth``: visits of at least ``min_dwell_s``, paired and compared."""
    shortest = round(min_dwell_s * 1000)
    scores = {}
    for zone_id in sorted(truth):
        true = [s for s in truth[zone_id] if s[1] - s[0] >= shortest]
        guess = [s for s in predicted.get(zone_id, ()) if s[1] - s[0] >= shortest]
        pairs, relative, _ = _pair_errors(true, guess, cap_s)
        scores[zone_id] = ZoneVisitScore(
            true=len(true),
            predicted=len(guess),
            matched=len(pairs),
            median_abs_rel_error=_quantile(relative, 0.5),
            p90_abs_rel_error=_quantile(relative, 0.9),
            mean_true_s=_mean_s(true),
            mean_predicted_s=_mean_s(guess),
        )
    return scores


def heatmap_pearson(
    true_xy: FloatArray,
    predicted_xy: FloatArray,
    width_m: float,
    height_m: float,
    cell_m: float,
) -> float | None:
    """Pearson r of two floor histograms (``cell_m`` cells); each point is one equal slice
    of time on its side, so the histograms are person-seconds up to a scale, which r
    ignores. None when either side is empty or flat."""
    if cell_m <= 0:
        raise ValueError(f"cell_m must be positive, got {cell_m!r}")
    bins = (max(1, int(np.ceil(width_m / cell_m))), max(1, int(np.ceil(height_m / cell_m))))
    extent = [[0.0, bins[0] * cell_m], [0.0, bins[1] * cell_m]]
    if not len(true_xy) or not len(predicted_xy):
        return None
    a, _, _ = np.histogram2d(true_xy[:, 0], true_xy[:, 1], bins=bins, range=extent)
    b, _, _ = np.histogram2d(predicted_xy[:, 0], predicted_xy[:, 1], bins=bins, range=extent)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
