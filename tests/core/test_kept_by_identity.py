"""The identity-keyed memo behind serving's kept contexts and shared item JSON."""

from __future__ import annotations

import gc

import pytest

from storelens.core.kept_by_identity import KeptByIdentity


class Box:
    """A plain object compared by value, as a pydantic model or a named tuple is."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Box) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]  # unhashable, as the callers' objects may be


def test_found_by_the_same_object_not_by_an_equal_one() -> None:
    kept: KeptByIdentity[Box, str] = KeptByIdentity(8)
    first = Box("a")
    assert kept.get(first) is None
    assert kept.keep(first, "A") == "A"
    assert kept.get(first) == "A"
    assert kept.get(Box("a")) is None  # equal, another object: not this entry


def test_the_extra_key_keeps_values_apart() -> None:
    kept: KeptByIdentity[Box, str] = KeptByIdentity(8)
    box = Box("a")
    kept.keep(box, "at 7", (7, 0, 3))
    kept.keep(box, "at 8", (8, 0, 3))
    assert (kept.get(box, (7, 0, 3)), kept.get(box, (8, 0, 3))) == ("at 7", "at 8")
    assert kept.get(box) is None and kept.get(box, (9, 0, 3)) is None


def test_an_address_cannot_be_reused_while_its_entry_is_kept() -> None:
    """The entry holds its object, so its id stays taken; the object dies only after
    the entry is gone, and a new object at that address is not found."""
    kept: KeptByIdentity[Box, str] = KeptByIdentity(8)
    kept.keep(Box("gone"), "old")  # no other reference: only the entry holds it
    gc.collect()
    # New objects of the same size, all alive at once: CPython hands out free addresses,
    # so without the hold one of them would sit where the first one was.
    fresh = [Box("new") for _ in range(2000)]
    assert [kept.get(box) for box in fresh] == [None] * len(fresh)
    assert kept.values() == ["old"]


def test_bounded_it_starts_afresh() -> None:
    kept: KeptByIdentity[Box, int] = KeptByIdentity(3)
    boxes = [Box(str(i)) for i in range(4)]
    for i, box in enumerate(boxes):
        kept.keep(box, i)
    assert len(kept) == 1 and kept.get(boxes[3]) == 3 and kept.get(boxes[0]) is None
    kept.clear()
    assert len(kept) == 0 and kept.values() == []
    with pytest.raises(ValueError, match="at least 1"):
        KeptByIdentity(0)
