"""Colour re-pairing after a crowd parts: descriptors, the ledger's decisions, and the
tracker-side rename. Scenes are flat-colour people on a grey floor, so each test knows
who is who whatever the boxes say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest
import supervision as sv

from storelens.vision.appearance import (
    AppearanceConfig,
    AppearanceLedger,
    colour_descriptors,
    hellinger,
)
from storelens.vision.tracking import PERSON_ID_KEY, PersonTracker

RED, BLUE, GREEN = (30, 30, 200), (200, 60, 20), (40, 180, 40)  # BGR
W, H = 40, 100  # a person's box, full-frame pixels


def floor(*people: tuple[tuple[int, int, int], float]) -> npt.NDArray[np.uint8]:
    """A grey 640x360 frame with a flat-colour person (colour, left edge) per argument."""
    image = np.full((360, 640, 3), 128, np.uint8)
    for colour, x in people:
        image[100 : 100 + H, int(x) : int(x) + W] = colour
    return image


def box(x: float) -> list[float]:
    return [x, 100.0, x + W, 100.0 + H]


def ledger(**settings: float) -> AppearanceLedger:
    return AppearanceLedger(AppearanceConfig(**{"enabled": True, **settings}))  # type: ignore[arg-type]


def learn_apart(book: AppearanceLedger, frames: int = 4) -> float:
    """Red (id r) at x=100 and blue (id b) at x=400, well apart, for ``frames`` frames."""
    for k in range(frames):
        image = floor((RED, 100), (BLUE, 400))
        assert book.update(k * 0.2, ["r", "b"], np.array([box(100), box(400)]), image) == [
            "r",
            "b",
        ]
    return frames * 0.2


def test_descriptors_tell_colours_apart_and_see_only_the_person() -> None:
    image = floor((RED, 100), (BLUE, 300))
    red, blue, red_wide = colour_descriptors(image, np.array([box(100), box(300), box(90)]))
    assert red is not None and blue is not None and red_wide is not None
    assert hellinger(red, red) == pytest.approx(0.0, abs=1e-6)
    assert hellinger(red, blue) > 0.9
    # A loose box takes in grey floor; the foreground mask keeps it to the person.
    loose = np.array([[60.0, 80.0, 180.0, 220.0]])
    mask = np.zeros((180, 320), np.uint8)
    mask[50:100, 50:70] = 255  # the red person's pixels at half scale
    (masked,) = colour_descriptors(image, loose, mask, scale=0.5)
    (unmasked,) = colour_descriptors(image, loose)
    assert masked is not None and unmasked is not None
    assert hellinger(masked, red) < 0.05 < 0.3 < hellinger(unmasked, red)


def test_a_box_off_the_frame_or_without_foreground_has_no_descriptor() -> None:
    image = floor((RED, 100))
    empty = np.zeros((180, 320), np.uint8)
    off, blank = colour_descriptors(image, np.array([[700.0, 0, 760, 50], box(100)]), empty)
    assert off is None and blank is None


def test_a_pair_that_parts_with_swapped_ids_gets_them_back() -> None:
    book = ledger()
    t = learn_apart(book)
    # They meet: the boxes touch, the tracker keeps both ids.
    for k in range(3):
        image = floor((RED, 230), (BLUE, 262))
        book.update(t + k * 0.2, ["r", "b"], np.array([box(230), box(262)]), image)
    # They part, but the tracker hands each the other's id.
    image = floor((RED, 205), (BLUE, 250))
    out = book.update(t + 0.6, ["b", "r"], np.array([box(205), box(250)]), image)
    assert out == ["r", "b"]
    assert book.reassigned == 2
    # Settled: the next frame needs no repair and keeps the corrected ids.
    image = floor((RED, 195), (BLUE, 260))
    again = book.update(t + 0.8, ["r", "b"], np.array([box(195), box(260)]), image)
    assert again == ["r", "b"]


def test_a_box_too_far_from_where_a_person_was_is_not_theirs() -> None:
    book = ledger()
    t = learn_apart(book)
    for k in range(3):
        image = floor((RED, 230), (BLUE, 262))
        book.update(t + k * 0.2, ["r", "b"], np.array([box(230), box(262)]), image)
    # 0.2 s later the boxes are 1.3 and 1.4 person heights away: colour cannot move ids
    # that far, so the tracker's (wrong) pairing stands.
    image = floor((RED, 100), (BLUE, 400))
    out = book.update(t + 0.6, ["b", "r"], np.array([box(100), box(400)]), image)
    assert out == ["b", "r"]


def test_a_pair_that_parts_with_the_right_ids_is_left_alone() -> None:
    book = ledger()
    t = learn_apart(book)
    for k in range(3):
        image = floor((RED, 230), (BLUE, 262))
        book.update(t + k * 0.2, ["r", "b"], np.array([box(230), box(262)]), image)
    out = book.update(
        t + 0.6, ["r", "b"], np.array([box(205), box(250)]), floor((RED, 205), (BLUE, 250))
    )
    assert out == ["r", "b"]
    assert book.reassigned == 0


def test_a_person_lost_in_a_merged_blob_is_found_in_the_newborn_track() -> None:
    """One blob for two: blue's track is lost inside red's box, red's track drifts onto
    blue when they part, and red comes back as a newborn track."""
    book = ledger()
    t = learn_apart(book)
    image = floor((RED, 230), (BLUE, 262))
    book.update(t, ["r", "b"], np.array([box(230), box(262)]), image)  # they meet
    merged = np.array([[230.0, 100.0, 302.0, 200.0]])
    for k in range(1, 4):
        assert book.update(t + k * 0.2, ["r"], merged, image) == ["r"]
    image = floor((RED, 200), (BLUE, 300))
    out = book.update(t + 0.8, ["r", "n"], np.array([box(300), box(200)]), image)
    assert out == ["b", "r"]


def test_strangers_are_not_renamed_and_an_untrusted_person_keeps_their_id() -> None:
    book = ledger(min_sightings=10)
    t = learn_apart(book, frames=3)  # too few clear sightings to trust anyone
    for k in range(3):
        image = floor((RED, 230), (BLUE, 262))
        book.update(t + k * 0.2, ["r", "b"], np.array([box(230), box(262)]), image)
    out = book.update(
        t + 0.6, ["b", "r"], np.array([box(205), box(250)]), floor((RED, 205), (BLUE, 250))
    )
    assert out == ["b", "r"]  # the tracker's word stands
    # A third person who never touched anyone is never re-paired.
    book = ledger()
    t = learn_apart(book)
    image = floor((RED, 100), (BLUE, 400), (GREEN, 550))
    out = book.update(t, ["r", "b", "g"], np.array([box(100), box(400), box(550)]), image)
    assert out == ["r", "b", "g"] and book.reassigned == 0


def test_disabled_ledger_passes_ids_through() -> None:
    book = ledger(enabled=False)
    image = floor((RED, 100), (BLUE, 400))
    assert book.update(0.0, ["b", "r"], np.array([box(100), box(400)]), image) == ["b", "r"]


def test_bad_input_and_settings_are_refused() -> None:
    book = ledger()
    with pytest.raises(ValueError, match="person ids"):
        book.update(0.0, ["r"], np.array([box(100), box(400)]), floor())
    with pytest.raises(ValueError, match="momentum"):
        AppearanceConfig(momentum=1.0)
    with pytest.raises(ValueError, match="min_sightings"):
        AppearanceConfig(min_sightings=0)
    with pytest.raises(ValueError, match="swap_margin"):
        AppearanceConfig(swap_margin=-0.1)
    with pytest.raises(ValueError, match="contact_s"):
        AppearanceConfig(contact_s=float("nan"))


def _people(centres: list[float]) -> sv.Detections:
    xyxy = np.array([box(x) for x in centres], np.float32)
    n = len(xyxy)
    return sv.Detections(
        xyxy=xyxy, confidence=np.full(n, 0.9, np.float32), class_id=np.zeros(n, int)
    )


def test_the_tracker_keeps_a_reassigned_id_and_never_shares_one() -> None:
    import random

    tracker = PersonTracker("cam", 5.0, rng=random.Random(3))
    t0 = datetime(2026, 11, 2, 10, tzinfo=UTC)
    for k in range(3):
        out = tracker.update(_people([100, 400]), t0 + timedelta(seconds=0.2 * k))
    a, b = (str(p) for p in out.data[PERSON_ID_KEY])
    ta, tb = (int(v) for v in out.tracker_id)
    tracker.reassign([ta, tb], [b, a])
    out = tracker.update(_people([100, 400]), t0 + timedelta(seconds=0.6))
    assert [str(p) for p in out.data[PERSON_ID_KEY]] == [b, a]
    # Moving one id alone: the track that held it gets a fresh id, not a duplicate.
    tracker.reassign([ta], [a])
    out = tracker.update(_people([100, 400]), t0 + timedelta(seconds=0.8))
    ids = [str(p) for p in out.data[PERSON_ID_KEY]]
    assert ids[0] == a and ids[1] not in (a, b) and ids[1].startswith("cam:")
    with pytest.raises(ValueError, match="never issued"):
        tracker.reassign([ta], ["cam:000000000000"])
    with pytest.raises(ValueError, match="distinct"):
        tracker.reassign([ta, tb], [a, a])
