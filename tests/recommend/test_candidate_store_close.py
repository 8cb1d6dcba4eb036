"""A closed candidate store leaves the erasure's walk at once, not when it is collected."""

from __future__ import annotations

import gc

from storelens.recommend.candidate_store import MemoryCandidates, RedisCandidates, live_stores


def test_closing_a_store_takes_it_out_of_the_erasure_walk(redis_url: str) -> None:
    memory = MemoryCandidates(ttl_s=60)
    shared = RedisCandidates(redis_url, 60, 0.05)
    gc.disable()  # the point: no collection is needed for it to leave
    try:
        assert memory in live_stores() and shared in live_stores()
        memory.close()
        shared.close()
        assert memory not in live_stores() and shared not in live_stores()
        shared.close()  # twice is fine (a shutdown and a test's own close)
    finally:
        gc.enable()
