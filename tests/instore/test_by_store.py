"""The tracker's in-flight dict: one store's entries without scanning the chain's."""

from __future__ import annotations

import pytest

from storelens.instore.by_store import ByStore


def test_one_store_is_listed_in_insertion_order_and_the_whole_keeps_its_order() -> None:
    held: ByStore[int] = ByStore()
    held[("b", "1")] = 1
    held[("a", "1")] = 2
    held[("b", "2")] = 3
    held[("a", "1")] = 4  # an update keeps its place, as in a dict
    assert list(held.items()) == [(("b", "1"), 1), (("a", "1"), 4), (("b", "2"), 3)]
    assert held.of("b") == [(("b", "1"), 1), (("b", "2"), 3)]
    assert held.of("a") == [(("a", "1"), 4)]
    assert held.of("nowhere") == [] and not held.holds("nowhere")


def test_removing_a_stores_last_entry_forgets_the_store() -> None:
    held = ByStore([(("a", "1"), "x"), (("a", "2"), "y"), (("b", "1"), "z")])
    assert held.pop(("a", "1")) == "x"
    assert held.holds("a")
    del held[("a", "2")]
    assert not held.holds("a") and held.of("a") == []
    assert held.setdefault(("a", "3"), "w") == "w" and held.of("a") == [(("a", "3"), "w")]
    assert held.pop(("zz", "9"), None) is None
    with pytest.raises(KeyError):
        del held[("zz", "9")]
    held.clear()
    assert len(held) == 0 and not held.holds("b")


def test_deleting_while_walking_one_store_is_safe() -> None:
    held = ByStore((("a", str(i)), i) for i in range(5))
    for key, value in held.of("a"):
        if value % 2 == 0:
            del held[key]
    assert [v for _, v in held.of("a")] == [1, 3]
    assert held == {("a", "1"): 1, ("a", "3"): 3}
