"""CameraFusion: people seen by two cameras counted once, pure numpy, no mocks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from storelens.vision.fusion import CameraFusion, FloorPeople, FusionConfig

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

View = tuple[Sequence[str], Sequence[tuple[float, float]]]


def at(tick: int) -> datetime:
    return T0 + timedelta(seconds=tick / 5)


def run(fusion: CameraFusion, ticks: Sequence[Mapping[str, View]]) -> list[FloorPeople]:
    out = []
    for i, cameras in enumerate(ticks):
        people = fusion.update(at(i), cameras)
        assert people.xy.shape == (len(people), 2)
        assert len(set(people.person_ids)) == len(people)
        out.append(people)
    return out


def test_one_person_seen_by_two_cameras_is_one_person() -> None:
    rng = np.random.default_rng(1)
    ticks: list[Mapping[str, View]] = []
    for i in range(40):
        true = np.array([3.0 + 0.05 * i, 3.0])
        a = true + rng.normal(0, 0.15, 2)
        b = true + np.array([0.3, -0.1]) + rng.normal(0, 0.15, 2)  # calibration offset
        ticks.append({"cam-a": (["cam-a:p"], [tuple(a)]), "cam-b": (["cam-b:q"], [tuple(b)])})
    fusion = CameraFusion()
    result = run(fusion, ticks)
    assert all(len(p) == 1 for p in result)
    assert {p.person_ids[0] for p in result} == {"cam-a:p"}
    assert fusion.group_of("cam-b:q") == "cam-a:p"
    assert result[-1].sightings == (("cam-a:p", "cam-b:q"),)
    true_last = np.array([3.0 + 0.05 * 39, 3.0])
    assert np.linalg.norm(result[-1].xy[0] - true_last) < 0.6


def test_two_people_side_by_side_stay_two() -> None:
    rng = np.random.default_rng(2)
    ticks: list[Mapping[str, View]] = []
    for i in range(30):
        left = np.array([2.0 + 0.1 * i, 4.0])
        right = left + np.array([0.0, 1.5])
        noisy = [tuple(p + rng.normal(0, 0.1, 2)) for p in (left, right, left, right)]
        ticks.append(
            {
                "cam-a": (["cam-a:l", "cam-a:r"], noisy[:2]),
                "cam-b": (["cam-b:r", "cam-b:l"], [noisy[3], noisy[2]]),
            }
        )
    fusion = CameraFusion()
    result = run(fusion, ticks)
    assert all(len(p) == 2 for p in result)
    assert set(result[-1].person_ids) == {"cam-a:l", "cam-a:r"}
    assert fusion.group_of("cam-b:l") == "cam-a:l"
    assert fusion.group_of("cam-b:r") == "cam-a:r"


def walk_through(a_until: float, b_from: float) -> list[Mapping[str, View]]:
    """A shopper walks x = 0..10 m; camera a sees x < a_until, camera b sees x > b_from."""
    ticks: list[Mapping[str, View]] = []
    for i in range(51):
        x = 0.2 * i
        views: dict[str, View] = {}
        if x < a_until:
            views["cam-a"] = (["cam-a:p"], [(x, 4.0)])
        if x > b_from:
            views["cam-b"] = (["cam-b:p"], [(x + 0.2, 4.1)])
        ticks.append(views)
    return ticks


def test_a_handover_through_the_overlap_keeps_one_id() -> None:
    result = run(CameraFusion(), walk_through(a_until=6.0, b_from=4.0))
    assert all(len(p) == 1 for p in result)
    assert {p.person_ids[0] for p in result} == {"cam-a:p"}
    assert result[-1].sightings == (("cam-b:p",),)


def test_without_an_overlap_cameras_cannot_link() -> None:
    result = run(CameraFusion(), walk_through(a_until=4.0, b_from=6.0))
    assert {pid for p in result for pid in p.person_ids} == {"cam-a:p", "cam-b:p"}


def test_a_pending_pair_is_already_counted_once() -> None:
    fusion = CameraFusion(FusionConfig(min_frames=5))
    ticks: list[Mapping[str, View]] = [{"cam-a": (["cam-a:p"], [(5.0, 4.0)])}] * 3
    ticks += [{"cam-a": (["cam-a:p"], [(5.0, 4.0)]), "cam-b": (["cam-b:p"], [(5.4, 4.0)])}] * 6
    result = run(fusion, ticks)
    assert [len(p) for p in result] == [1] * 9
    assert {p.person_ids[0] for p in result} == {"cam-a:p"}
    # The pair was reported as one before the link landed, and fused in position.
    assert result[3].sightings == (("cam-a:p", "cam-b:p"),)
    assert result[3].xy[0] == pytest.approx([5.2, 4.0])
    assert fusion.group_of("cam-b:p") == "cam-a:p"


def test_two_people_one_camera_sees_apart_are_never_merged() -> None:
    # Camera a sees two shoppers 0.5 m apart; camera b sees one between them.
    ticks: list[Mapping[str, View]] = [
        {
            "cam-a": (["cam-a:1", "cam-a:2"], [(5.0, 4.0), (5.5, 4.0)]),
            "cam-b": (["cam-b:1"], [(5.25, 4.0)]),
        }
    ] * 10
    fusion = CameraFusion()
    result = run(fusion, ticks)
    assert all(len(p) == 2 for p in result)
    assert fusion.group_of("cam-a:1") != fusion.group_of("cam-a:2")
    assert fusion.group_of("cam-b:1") in {"cam-a:1", "cam-a:2"}


def test_a_wrong_link_splits_when_the_two_walk_apart() -> None:
    together: list[Mapping[str, View]] = [
        {"cam-a": (["cam-a:x"], [(5.0, 4.0)]), "cam-b": (["cam-b:y"], [(5.4, 4.0)])}
    ] * 6
    apart: list[Mapping[str, View]] = [
        {
            "cam-a": (["cam-a:x"], [(5.0 - 0.3 * i, 4.0)]),
            "cam-b": (["cam-b:y"], [(5.4 + 0.3 * i, 4.0)]),
        }
        for i in range(1, 12)
    ]
    fusion = CameraFusion()
    result = run(fusion, together + apart)
    assert len(result[5]) == 1
    assert len(result[-1]) == 2
    assert set(result[-1].person_ids) == {"cam-a:x", "cam-b:y"}
    assert fusion.group_of("cam-b:y") == "cam-b:y"


def test_forgotten_people_free_their_memory() -> None:
    fusion = CameraFusion(FusionConfig(forget_after_s=2.0))
    fusion.update(at(0), {"cam-a": (["cam-a:p"], [(1.0, 1.0)])})
    fusion.update(at(5), {"cam-a": (["cam-a:q"], [(2.0, 1.0)])})
    fusion.update(at(16), {})
    with pytest.raises(KeyError):
        fusion.group_of("cam-a:p")
    with pytest.raises(KeyError):
        fusion.group_of("cam-a:q")


def test_an_empty_tick_is_an_empty_floor() -> None:
    people = CameraFusion().update(at(0), {"cam-a": ([], np.empty((0, 2)))})
    assert len(people) == 0
    assert people.xy.shape == (0, 2)
    assert people.sightings == ()


def test_the_same_ticks_give_the_same_people() -> None:
    ticks = walk_through(a_until=6.0, b_from=4.0)
    first = [(p.person_ids, p.xy.tolist()) for p in run(CameraFusion(), ticks)]
    second = [(p.person_ids, p.xy.tolist()) for p in run(CameraFusion(), ticks)]
    assert first == second


@pytest.mark.parametrize(
    "kwargs",
    [
        {"link_distance_m": 0.0},
        {"link_distance_m": float("nan")},
        {"min_frames": 0},
        {"min_frames": 2.5},
        {"split_distance_m": 0.5},
        {"forget_after_s": -1.0},
    ],
)
def test_config_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FusionConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_ticks_are_refused_and_leave_no_trace() -> None:
    fusion = CameraFusion()
    fusion.update(at(0), {"cam-a": (["cam-a:p"], [(1.0, 1.0)])})
    bad: list[tuple[type[Exception], object]] = [
        (TypeError, [("cam-a", (["cam-a:p"], [(1.0, 1.0)]))]),
        (TypeError, {"cam-a": ["cam-a:p"]}),
        (TypeError, {"cam-a": ("cam-a:p", [(1.0, 1.0)])}),
        (ValueError, {"cam-a": (["cam-a:p", "cam-a:q"], [(1.0, 1.0)])}),
        (ValueError, {"cam-a": (["cam-a:p"], [(1.0, 1.0, 1.0)])}),
        (ValueError, {"cam-a": (["cam-a:p"], [(np.inf, 1.0)])}),
        (ValueError, {"cam-a": ([""], [(1.0, 1.0)])}),
        (ValueError, {"": (["x"], [(1.0, 1.0)])}),
        (ValueError, {"cam-a": (["s"], [(1.0, 1.0)]), "cam-b": (["s"], [(1.0, 1.0)])}),
        (ValueError, {"cam-b": (["cam-a:p"], [(1.0, 1.0)])}),  # p belongs to camera a
    ]
    for error, cameras in bad:
        with pytest.raises(error):
            fusion.update(at(1), cameras)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        fusion.update(datetime(2026, 3, 2, 9, 0), {})
    with pytest.raises(ValueError, match="increase"):
        fusion.update(at(0), {})
    people = fusion.update(at(1), {"cam-a": (["cam-a:p"], [(1.1, 1.0)])})
    assert people.person_ids == ("cam-a:p",)
    assert fusion.group_of("cam-a:p") == "cam-a:p"


def test_reset_forgets_everyone() -> None:
    fusion = CameraFusion()
    fusion.update(at(0), {"cam-a": (["cam-a:p"], [(1.0, 1.0)])})
    fusion.reset()
    with pytest.raises(KeyError):
        fusion.group_of("cam-a:p")
    assert len(fusion.update(at(0), {})) == 0
