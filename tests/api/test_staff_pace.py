"""The staff timing floor keeps to whole steps, so slow work shows no more than fast.

A fake clock says how long the work took; the sleeps are recorded, nothing is timed."""

from __future__ import annotations

import pytest

from storelens.api.deps import StaffPace


def _wait(floor_s: float, work_s: float) -> list[float]:
    readings = iter([work_s])
    slept: list[float] = []
    StaffPace(floor_s, clock=lambda: next(readings), sleep=slept.append).wait_out(0.0)
    return slept


@pytest.mark.parametrize(
    ("work_ms", "answer_ms"),
    [(1, 40), (39.5, 40), (41, 80), (79, 80), (81, 120), (200.5, 240)],
)
def test_the_answer_comes_at_the_first_step_after_the_work(
    work_ms: float, answer_ms: float
) -> None:
    slept = _wait(0.040, work_ms / 1000)
    assert sum(slept) + work_ms / 1000 == pytest.approx(answer_ms / 1000)


def test_a_known_and_an_unknown_id_on_a_slow_database_answer_together() -> None:
    """Before, a floor of 40 ms hid a 2 ms write only when the work took under 40 ms:
    at 60 and 62 ms both answered when done, 2 ms apart."""
    known = 0.062 + sum(_wait(0.040, 0.062))
    unknown = 0.060 + sum(_wait(0.040, 0.060))
    assert known == pytest.approx(unknown) == pytest.approx(0.080)


def test_work_ending_on_a_step_waits_no_more_and_no_floor_never_waits() -> None:
    assert _wait(0.040, 0.080) == []
    assert _wait(0.040, 0.040) == []
    assert _wait(0.0, 0.5) == []
