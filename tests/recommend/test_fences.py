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


def test_a_withdrawal_refuses_fills_lets_markers_through_and_never_weakens_an_erasure() -> None:
    now = [0.0]
    fences = Fences(lambda: now[0], grace_s=30.0)
    fences.hold_withdrawn(["ada"])
    assert fences.blocks("ada") and not fences.blocks("ada", marker=True)
    now[0] += 30.1
    assert not fences.blocks("ada")
    # An erasure under way: closed to markers too, and a withdrawal does not open it.
    fences.close(["bob"])
    fences.hold_withdrawn(["bob"])
    now[0] += 3600
    assert fences.blocks("bob", marker=True)
    # An erasure committed: its grace refuses markers; a withdrawal then extends it.
    fences.hold(["bob"])
    now[0] += 20
    fences.hold_withdrawn(["bob"])
    now[0] += 20  # past the erasure's grace, within the withdrawal's
    assert fences.blocks("bob", marker=True)
    now[0] += 10.1
    assert not fences.blocks("bob", marker=True)
    # A withdrawal, then an erasure: the erasure's fence wins.
    fences.hold_withdrawn(["cy"])
    fences.close(["cy"])
    assert fences.blocks("cy", marker=True)
    fences.hold_everyone()  # an erasure elsewhere refuses fills, not markers
    assert fences.blocks("dee") and not fences.blocks("dee", marker=True)
