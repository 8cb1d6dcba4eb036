"""k of n frames of one track, one arrival per track, forgetting at once: no dlib needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from storelens.recognition.matcher import Arrival, EntranceMatcher, Gallery, MatchRule

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
RULE = MatchRule(threshold=0.5, k=3, n=5, track_idle_s=30)
rng = np.random.default_rng(7)
ANNA, BEN = rng.normal(0, 0.09, 128), rng.normal(0, 0.09, 128)  # |difference| ~ 1.4


def near(v: np.ndarray, spread: float = 0.02) -> np.ndarray:
    return v + rng.normal(0, spread, 128)


def stranger() -> np.ndarray:
    return rng.normal(0, 0.09, 128)


def _matcher(arrivals: list[Arrival], consented: set[str] | None = None) -> EntranceMatcher:
    gallery = Gallery(np.stack([ANNA, near(ANNA), BEN]), ["anna", "anna", "ben"])
    return EntranceMatcher(
        "cafe-01",
        gallery,
        RULE,
        arrivals.append,
        (lambda c: c in consented) if consented is not None else (lambda _c: True),
    )


def test_a_member_is_confirmed_on_the_kth_matching_frame_and_only_once() -> None:
    arrivals: list[Arrival] = []
    m = _matcher(arrivals)
    results = [m.observe("t1", T0 + timedelta(seconds=i), near(ANNA)) for i in range(6)]
    assert [r is not None for r in results] == [False, False, True, False, False, False]
    assert len(arrivals) == 1
    a = arrivals[0]
    assert (a.customer_id, a.store_id, a.track_id, a.ts) == (
        "anna",
        "cafe-01",
        "t1",
        T0 + timedelta(seconds=2),
    )
    assert 0 < a.distance < RULE.threshold


def test_k_minus_one_frames_never_confirm() -> None:
    arrivals: list[Arrival] = []
    m = _matcher(arrivals)
    for i in range(RULE.k - 1):
        m.observe("t1", T0 + timedelta(seconds=i), near(ANNA))
    for i in range(10):  # the rest of the track: a stranger's face (bad angle, occlusion)
        m.observe("t1", T0 + timedelta(seconds=10 + i), stranger())
    assert arrivals == []


def test_matches_must_fall_within_the_last_n_frames() -> None:
    arrivals: list[Arrival] = []
    m = _matcher(arrivals)
    sequence = [ANNA, None, None, None, ANNA, None, None, None, ANNA]  # never 3 in 5
    for i, v in enumerate(sequence):
        m.observe("t1", T0 + timedelta(seconds=i), near(v) if v is not None else stranger())
    assert arrivals == []


def test_frames_of_different_tracks_do_not_add_up() -> None:
    arrivals: list[Arrival] = []
    m = _matcher(arrivals)
    for _i in range(RULE.k - 1):
        m.observe("t1", T0, near(ANNA))
        m.observe("t2", T0, near(ANNA))
    assert arrivals == []
    m.observe("t2", T0, near(ANNA))
    assert [a.track_id for a in arrivals] == ["t2"]


def test_votes_for_two_members_do_not_add_up() -> None:
    arrivals: list[Arrival] = []
    m = _matcher(arrivals)
    for v in (ANNA, BEN, ANNA, BEN):
        m.observe("t1", T0, near(v))
    assert arrivals == []


def test_a_non_member_track_keeps_no_vector_and_no_distance() -> None:
    arrivals: list[Arrival] = []
    m = _matcher(arrivals)
    for i in range(5):
        m.observe("t9", T0 + timedelta(seconds=i), stranger())
    assert arrivals == []
    track = m._tracks["t9"]
    assert list(track.votes) == [None] * 5  # "no match", nothing of the face


def test_forgetting_a_member_stops_recognition_at_once() -> None:
    arrivals: list[Arrival] = []
    m = _matcher(arrivals)
    for _ in range(RULE.k - 1):
        m.observe("t1", T0, near(ANNA))
    m.forget("anna")
    assert "anna" not in m.gallery.members
    for _ in range(5):
        m.observe("t1", T0, near(ANNA))
    assert arrivals == []


def test_consent_is_checked_again_before_the_sink_is_called() -> None:
    arrivals: list[Arrival] = []
    m = _matcher(arrivals, consented={"ben"})  # anna withdrew in another process
    for _ in range(5):
        m.observe("t1", T0, near(ANNA))
    assert arrivals == []
    assert "anna" not in m.gallery.members


def test_idle_tracks_are_forgotten() -> None:
    m = _matcher([])
    m.observe("t1", T0, stranger())
    m.expire(T0 + timedelta(seconds=RULE.track_idle_s))
    assert m.open_tracks == 1
    m.expire(T0 + timedelta(seconds=RULE.track_idle_s + 1))
    assert m.open_tracks == 0


def test_an_empty_gallery_matches_no_one() -> None:
    arrivals: list[Arrival] = []
    m = EntranceMatcher("cafe-01", Gallery.empty(), RULE, arrivals.append)
    for _ in range(5):
        assert m.observe("t1", T0, near(ANNA)) is None
    assert arrivals == []


@pytest.mark.parametrize(("k", "n"), [(0, 3), (4, 3)])
def test_a_rule_needs_k_between_1_and_n(k: int, n: int) -> None:
    with pytest.raises(ValueError, match="k <= n"):
        MatchRule(threshold=0.5, k=k, n=n, track_idle_s=1)


def test_settings_refuse_k_above_n() -> None:
    from storelens.config import Settings

    with pytest.raises(ValueError, match="faces_match_k"):
        Settings(faces_match_k=6, faces_match_n=5)
