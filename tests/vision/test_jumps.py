"""A track that leaps across the floor is split from the leap on; a walk, a wobble or a
long gap at walking pace is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from storelens.vision.jumps import FloorJumps, JumpConfig

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ON = JumpConfig(enabled=True)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def follow(jumps: FloorJumps, path: list[tuple[float, float]], step: float = 0.2) -> list[str]:
    return [jumps.update(at(i * step), ["cam:a"], np.array([xy]))[0] for i, xy in enumerate(path)]


def test_a_walk_with_wobble_keeps_its_name() -> None:
    rng = np.random.default_rng(1)
    path = [(2 + 0.25 * i + rng.normal(0, 0.1), 4 + rng.normal(0, 0.1)) for i in range(40)]
    jumps = FloorJumps(ON)
    assert set(follow(jumps, path)) == {"cam:a"}
    assert jumps.splits == 0


def test_a_swap_across_the_counter_renames_the_rest_of_the_track() -> None:
    jumps = FloorJumps(ON)
    names = follow(jumps, [(10.0, 1.5)] * 5 + [(10.2, 3.0)] * 5)  # 1.5 m in 200 ms
    assert names[:5] == ["cam:a"] * 5
    assert len(set(names[5:])) == 1 and names[5] != "cam:a" and names[5].startswith("cam:")
    assert jumps.splits == 1


def test_a_long_gap_allows_a_longer_step() -> None:
    jumps = FloorJumps(ON)
    jumps.update(at(0), ["cam:a"], np.array([[2.0, 4.0]]))
    assert jumps.update(at(2), ["cam:a"], np.array([[6.0, 4.0]])) == ["cam:a"]  # 4 m in 2 s
    assert jumps.update(at(2.2), ["cam:a"], np.array([[8.0, 4.0]])) != ["cam:a"]


def test_disabled_and_reset() -> None:
    off = FloorJumps()  # off by default
    assert set(follow(off, [(0.0, 0.0), (9.0, 9.0)])) == {"cam:a"}
    jumps = FloorJumps(ON)
    follow(jumps, [(0.0, 0.0), (9.0, 9.0)])
    jumps.reset()
    assert jumps.update(at(10), ["cam:a"], np.array([[0.0, 0.0]])) == ["cam:a"]


@pytest.mark.parametrize("name", ["max_speed_mps", "slack_m"])
@pytest.mark.parametrize("value", [-0.5, float("nan")])
def test_bad_config_is_refused(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        JumpConfig(**{name: value})
