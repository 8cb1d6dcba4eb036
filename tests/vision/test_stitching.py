"""TrackStitcher: identity switches repaired on the floor plan, pure numpy, no mocks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from storelens.vision.stitching import StitchConfig, TrackStitcher

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FPS = 5.0


def at(frame: int) -> datetime:
    return T0 + timedelta(seconds=frame / FPS)


Frame = tuple[Sequence[str], Sequence[tuple[float, float]]]


def feed(stitcher: TrackStitcher, frames: Sequence[Frame]) -> list[dict[str, str]]:
    """Run frames through; returns, per frame, track id -> person id."""
    out = []
    for i, (ids, xy) in enumerate(frames):
        people = stitcher.update(at(i), list(ids), np.asarray(xy, dtype=float).reshape(-1, 2))
        assert len(people) == len(ids)
        assert len(set(people)) == len(people), f"frame {i}: one person id twice"
        out.append(dict(zip(ids, people, strict=True)))
    return out


def walk(start: float, speed: float, frames: range, y: float = 4.0) -> list[tuple[float, float]]:
    return [(start + speed * i / FPS, y) for i in frames]


def test_an_id_switch_mid_walk_stays_one_person() -> None:
    path = walk(1.0, 1.2, range(20))
    frames: list[Frame] = [(["cam:a"], [p]) for p in path[:10]]
    frames += [(["cam:b"], [p]) for p in path[10:]]  # a vanishes, b appears in the same spot
    result = feed(TrackStitcher(), frames)
    assert {p for f in result for p in f.values()} == {"cam:a"}


def test_an_occlusion_then_a_new_track_ahead_stays_one_person() -> None:
    path = walk(1.0, 1.5, range(25))
    frames: list[Frame] = [(["cam:a"], [p]) for p in path[:8]]
    frames += [([], [])] * 7  # 1.4 s behind a shelf, still walking
    frames += [(["cam:b"], [p]) for p in path[15:]]
    stitcher = TrackStitcher()
    result = feed(stitcher, frames)
    assert {p for f in result for p in f.values()} == {"cam:a"}
    assert stitcher.stitches == 1


def test_two_shoppers_crossing_keep_their_headings() -> None:
    # East-walker and west-walker lose their tracks as they pass each other and come
    # back on new tracks after one second. Nearest last position would swap them.
    east = walk(2.0, 1.0, range(30), y=4.0)
    west = walk(8.0, -1.0, range(30), y=4.3)
    frames: list[Frame] = [(["cam:e", "cam:w"], [east[i], west[i]]) for i in range(14)]
    frames += [([], [])] * 5
    frames += [(["cam:n1", "cam:n2"], [west[i], east[i]]) for i in range(19, 30)]
    result = feed(TrackStitcher(), frames)
    assert result[-1] == {"cam:n1": "cam:w", "cam:n2": "cam:e"}
    assert {p for f in result for p in f.values()} == {"cam:e", "cam:w"}


def test_competing_births_are_resolved_jointly_not_first_come() -> None:
    # Two people stand still 1 m apart and both tracks drop. New tracks appear at 0.55 m
    # and 1.6 m. Greedy nearest-first gives the 0.55 m birth to the person at 1 m and then
    # cannot place the other birth; the joint assignment stitches both.
    still = [(["cam:p", "cam:q"], [(5.0, 4.0), (6.0, 4.0)])] * 6
    frames: list[Frame] = [*still, (["cam:x", "cam:y"], [(5.55, 4.0), (6.6, 4.0)])]
    result = feed(TrackStitcher(StitchConfig(slack_m=0.5)), frames)
    assert result[-1] == {"cam:x": "cam:p", "cam:y": "cam:q"}


def test_a_newcomer_far_away_is_a_new_person() -> None:
    path = walk(1.0, 1.0, range(10))
    frames: list[Frame] = [(["cam:a"], [p]) for p in path]
    frames += [(["cam:b"], [(12.0, 8.0)])]  # a vanished; b enters at the far wall
    result = feed(TrackStitcher(), frames)
    assert result[-1] == {"cam:b": "cam:b"}


def test_a_gap_longer_than_allowed_is_not_stitched() -> None:
    frames: list[Frame] = [(["cam:a"], [(5.0, 4.0)])] * 5
    frames += [([], [])] * 16  # 3.4 s gone
    frames += [(["cam:b"], [(5.0, 4.0)])]
    assert feed(TrackStitcher(), frames)[-1] == {"cam:b": "cam:b"}
    within = [*frames[:5], *[([], [])] * 10, (["cam:b"], [(5.0, 4.0)])]
    assert feed(TrackStitcher(), within)[-1] == {"cam:b": "cam:a"}


def test_a_live_track_is_never_stitched_onto() -> None:
    frames: list[Frame] = [(["cam:a"], [(5.0, 4.0)])] * 5
    frames += [(["cam:a", "cam:b"], [(5.0, 4.0), (5.1, 4.0)])]
    assert feed(TrackStitcher(), frames)[-1] == {"cam:a": "cam:a", "cam:b": "cam:b"}


def test_a_track_that_comes_back_keeps_its_person() -> None:
    frames: list[Frame] = [(["cam:a"], [(5.0, 4.0)])] * 4
    frames += [([], [])] * 3
    frames += [(["cam:a"], [(5.2, 4.0)])]
    assert feed(TrackStitcher(), frames)[-1] == {"cam:a": "cam:a"}


def test_a_stitched_away_track_that_comes_back_gets_its_own_person() -> None:
    frames: list[Frame] = [(["cam:a"], [(5.0, 4.0)])] * 4
    frames += [(["cam:b"], [(5.0, 4.0)])]  # b continues a's person
    frames += [(["cam:a", "cam:b"], [(3.0, 4.0), (5.0, 4.0)])]  # a revives elsewhere
    result = feed(TrackStitcher(), frames)
    assert result[-2] == {"cam:b": "cam:a"}
    assert result[-1]["cam:b"] == "cam:a"
    assert result[-1]["cam:a"] not in {"cam:a", "cam:b"}


def test_disabled_stitching_passes_track_ids_through() -> None:
    frames: list[Frame] = [(["cam:a"], [(5.0, 4.0)])] * 4
    frames += [(["cam:b"], [(5.0, 4.0)])]
    result = feed(TrackStitcher(StitchConfig(enabled=False)), frames)
    assert result[-1] == {"cam:b": "cam:b"}


def test_random_switches_never_give_one_person_id_twice_in_a_frame() -> None:
    rng = np.random.default_rng(11)
    stitcher = TrackStitcher()
    people = 8
    pos = rng.uniform([1, 1], [13, 8], size=(people, 2))
    track = [f"cam:t{p}" for p in range(people)]
    next_id = people
    for i in range(150):
        pos += rng.normal(0, 0.15, size=pos.shape)
        for p in range(people):
            if rng.random() < 0.05:
                track[p] = f"cam:t{next_id}"
                next_id += 1
        visible = rng.random(people) > 0.1
        ids = [track[p] for p in range(people) if visible[p]]
        out = stitcher.update(at(i), ids, pos[visible])
        assert len(set(out)) == len(out)
    assert stitcher.stitches > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_gap_s": -1.0},
        {"max_speed_mps": float("nan")},
        {"slack_m": float("inf")},
        {"velocity_window_s": -0.5},
        {"max_gap_s": "3"},
        {"colour_gate": -0.1},
        {"colour_weight_m": float("nan")},
    ],
)
def test_config_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        StitchConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_frames_are_refused_and_leave_no_trace() -> None:
    stitcher = TrackStitcher()
    stitcher.update(at(0), ["cam:a"], np.array([[5.0, 4.0]]))
    bad: list[tuple[type[Exception], object, object]] = [
        (ValueError, ["cam:a", "cam:b"], [[1.0, 1.0]]),
        (ValueError, ["cam:a"], [1.0, 1.0]),
        (ValueError, ["cam:a"], [[1.0, 1.0, 1.0]]),
        (ValueError, ["cam:a"], [[np.nan, 1.0]]),
        (ValueError, ["cam:a", "cam:a"], [[1.0, 1.0], [2.0, 2.0]]),
        (ValueError, [""], [[1.0, 1.0]]),
        (ValueError, [7], [[1.0, 1.0]]),
        (TypeError, "cam:a", [[1.0, 1.0]]),
    ]
    for error, ids, xy in bad:
        with pytest.raises(error):
            stitcher.update(at(1), ids, xy)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        stitcher.update(datetime(2026, 3, 2, 9, 0), ["cam:a"], [[5.0, 4.0]])
    with pytest.raises(ValueError, match="increase"):
        stitcher.update(at(0), ["cam:a"], [[5.0, 4.0]])
    # None of the refusals moved the clock or the tracks.
    assert stitcher.update(at(1), ["cam:a"], [[5.1, 4.0]]) == ["cam:a"]
    assert stitcher.update(at(2), [], np.empty((0, 2))) == []


def test_reset_forgets_the_day() -> None:
    stitcher = TrackStitcher()
    stitcher.update(at(0), ["cam:a"], [[5.0, 4.0]])
    stitcher.update(at(1), ["cam:a"], [[5.0, 4.0]])
    stitcher.reset()
    assert stitcher.update(at(2), ["cam:b"], [[5.0, 4.0]]) == ["cam:b"]
    assert stitcher.stitches == 0


def _hist(*weights: float) -> np.ndarray:
    h = np.asarray(weights, dtype=np.float64)
    return h / h.sum()


RED, BLUE, REDDISH = _hist(9, 1, 0), _hist(0, 1, 9), _hist(8, 2, 0)


def test_a_newborn_of_another_colour_is_not_the_lost_person() -> None:
    """Two people lost side by side, two newborns where they were: distance alone would
    pair them crosswise (each newborn is nearer the other's prediction); colours decide."""
    stitcher = TrackStitcher()
    for i in range(5):
        stitcher.update(at(i), ["cam:r", "cam:b"], np.array([[4.0, 4.0], [4.6, 4.0]]), [RED, BLUE])
    stitcher.update(at(5), [], np.zeros((0, 2)), [])
    born = stitcher.update(
        at(6), ["cam:x", "cam:y"], np.array([[4.55, 4.0], [4.05, 4.0]]), [RED, BLUE]
    )
    assert born == ["cam:r", "cam:b"]
    # Without colours the same frames pair by distance: crosswise.
    plain = TrackStitcher()
    for i in range(5):
        plain.update(at(i), ["cam:r", "cam:b"], np.array([[4.0, 4.0], [4.6, 4.0]]))
    plain.update(at(5), [], np.zeros((0, 2)))
    assert plain.update(at(6), ["cam:x", "cam:y"], np.array([[4.55, 4.0], [4.05, 4.0]])) == [
        "cam:b",
        "cam:r",
    ]


def test_a_lone_newborn_past_the_colour_gate_gets_its_own_id() -> None:
    stitcher = TrackStitcher()
    for i in range(5):
        stitcher.update(at(i), ["cam:r"], np.array([[4.0, 4.0]]), [RED])
    assert stitcher.update(at(5), ["cam:b"], np.array([[4.1, 4.0]]), [BLUE]) == ["cam:b"]
    # A close colour (the same shirt in other light) is stitched; no colour falls back
    # to distance alone.
    stitcher = TrackStitcher()
    for i in range(5):
        stitcher.update(at(i), ["cam:r", "cam:q"], np.array([[4.0, 4.0], [8.0, 4.0]]), [RED, RED])
    out = stitcher.update(
        at(5), ["cam:s", "cam:t"], np.array([[4.1, 4.0], [8.1, 4.0]]), [REDDISH, None]
    )
    assert out == ["cam:r", "cam:q"]
    with pytest.raises(ValueError, match="colours"):
        stitcher.update(at(6), ["cam:s"], np.array([[4.1, 4.0]]), [])
