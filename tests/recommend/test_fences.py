"""Fences refuse a customer while closed and for the grace after they are held."""

from __future__ import annotations

from storelens.recommend.candidate_store import CustomerCandidates, MemoryCandidates
from storelens.recommend.fences import Fences


def test_a_fence_holds_until_released_and_then_for_the_grace_only() -> None:
    now = [100.0]
    fences = Fences(lambda: now[0], grace_s=30.0)
    fences.close(["ada"])
    now[0] += 3600  # an erasure may take long: still closed
    assert fences.blocks("ada") and not fences.blocks("bob")
    fences.hold(["ada"])
    now[0] += 29.9
    assert fences.blocks("ada")
    now[0] += 0.2
    assert not fences.blocks("ada")
    fences.hold_everyone()
    assert fences.blocks("bob") and fences.blocks("ada")
    now[0] += 30.1
    assert not fences.blocks("bob")


def test_a_memory_store_refuses_fills_while_fenced_and_keeps_them_after() -> None:
    now = [0.0]
    store = MemoryCandidates(600, clock=lambda: now[0])
    store.put(CustomerCandidates("ada", consent=True))
    assert store.fence(["ada"]) == 1 and store.get("ada") is None
    store.put(CustomerCandidates("ada", consent=True))
    assert store.get("ada") is None
    store.hold(["ada"])
    now[0] += 31
    store.put(CustomerCandidates("ada", consent=True))
    assert store.get("ada") is not None
    store.forget_held()  # an erasure elsewhere: no fills for the grace
    store.put(CustomerCandidates("bob", consent=False))
    assert store.get("bob") is None
