"""Each worker's copies of the Redis candidate entries, dropped the moment any process
changes one.

With candidates in Redis, every warm answer paid a round trip and a JSON decode of
the customer's entry: on this 2-core machine one worker answered 29 % of hello
world's requests per second with Redis against 42 % with the entries in its own
memory (``benchmarks/serving.py``). Redis is the mode for several workers, so the
mode a busy shop runs was the slow one.

So a worker keeps the entries it read, decoded, and serves the next request for the
same customer from that copy. A copy is only as good as the news of changes, so:

* every write to an entry (a paid order, a consent decision, a decline, an erasure's
  delete) publishes the customer's id on :data:`CHANGED` (and the database number)
  in the same step on the
  Redis server (:mod:`storelens.recommend.candidate_store`); a listener thread in
  each worker drops the copy;
* a copy never outlives the Redis key it was read from (its remaining time to live is
  read with it): an entry Redis no longer holds is in nobody's copies, so a change
  the projection skips because the key is gone cannot leave a stale copy behind;
* a read that was under way while a change arrived keeps nothing (each change moves
  a counter; a copy is kept only if the counter did not move since the read began);
* while the listener is not subscribed (starting, Redis down, the connection lost)
  no copy is served or kept, and every copy is dropped when it (re)subscribes: news
  missed meanwhile cannot be told apart, so nothing from before is trusted;
* an erasure anywhere drops every copy of this process
  (:meth:`RecommendationEngine.forget_everyone`), besides the published ids.

Pub/sub is at most once, but Redis loses a message only by dropping the subscriber's
connection (or its output buffer limit, which drops it too), and the listener treats
that as above: it never reconnects by itself (redis-py would, re-subscribing quietly),
and it pings every :data:`HEALTH_CHECK_S` and gives the connection up when nothing,
not even the ping's answer, came back for twice that (a connection that died without
an error). Redis's own client tracking would do the same job, but redis-py's support
for it needs Redis 7.4 (this machine runs 7.0).

Every process that writes entries must publish: during an upgrade from a version
without copies, writers still on it do not, so turn ``recommend_redis_copies`` off
until every worker and projection runs this one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import orjson

__all__ = ["CHANGED", "HEALTH_CHECK_S", "NearCopies", "changed_message"]

log = logging.getLogger(__name__)

CHANGED = "storelens:reco:cand:changed:"
"""The channel every write to a candidate entry publishes the customer's id on, with
the database's number after it (channels are not per database in Redis; keys are)."""
HEALTH_CHECK_S = 5.0
"""How often an idle listener pings Redis: a dead connection is found within this."""
RETRY_S = 1.0
Entry = TypeVar("Entry")  # a decoded candidate entry (kept generic: no import cycle)


def changed_message(customer_ids: Iterable[str]) -> bytes:
    return orjson.dumps(list(customer_ids))


class NearCopies(Generic[Entry]):
    """Decoded entries by customer id, each until it expires (``clock`` seconds), and
    the thread that listens for news of changes on ``channel``."""

    def __init__(
        self,
        url: str,
        channel: str,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 200_000,
    ) -> None:
        self._url, self._channel, self._timeout = url, channel, timeout_s
        self._clock, self._max = clock, max_entries
        self._copies: dict[str, tuple[float, Entry]] = {}
        self._changes = 0  # moves on every change heard and on every (un)subscribe
        self._listening = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- serving -------------------------------------------------------------------
    def get(self, customer_id: str) -> Entry | None:
        """The copy, if the listener is subscribed and the copy has not expired. Shared:
        never change what this returns."""
        hit = self._copies.get(customer_id)
        if hit is None or not self._listening:
            return None
        if self._clock() >= hit[0]:
            with self._lock:
                if self._copies.get(customer_id) is hit:
                    del self._copies[customer_id]
            return None
        return hit[1]

    def ticket(self) -> int | None:
        """Taken before reading Redis; None while no copy may be kept."""
        self.start()
        return self._changes if self._listening else None

    def keep(self, customer_id: str, entry: Entry, ticket: int | None, ttl_s: float) -> bool:
        """Keep ``entry`` for ``ttl_s`` unless anything changed since ``ticket``."""
        if ticket is None or ttl_s <= 0:
            return False
        with self._lock:
            if ticket != self._changes or not self._listening:
                return False
            self._copies.pop(customer_id, None)  # re-inserted: newest last
            self._copies[customer_id] = (self._clock() + ttl_s, entry)
            while len(self._copies) > self._max:
                del self._copies[next(iter(self._copies))]
        return True

    def drop(self, customer_ids: Iterable[str]) -> None:
        with self._lock:
            self._changes += 1
            for cid in customer_ids:
                self._copies.pop(cid, None)

    def drop_all(self) -> int:
        with self._lock:
            self._changes += 1
            dropped = len(self._copies)
            self._copies.clear()
        return dropped

    def __len__(self) -> int:
        return len(self._copies)

    @property
    def listening(self) -> bool:
        return self._listening

    # -- the listener --------------------------------------------------------------
    def start(self) -> None:
        """Start the listener once (lazily: a process that never serves never listens)."""
        if self._thread is not None or self._stop.is_set():
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="reco-near-copies", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Serve and keep nothing from now; the listener notices within a second and
        closes its connection (not waited for: an app's shutdown should not)."""
        self._stop.set()
        self._set_listening(False)

    def _set_listening(self, on: bool) -> None:
        with self._lock:
            self._changes += 1
            self._copies.clear()
            self._listening = on and not self._stop.is_set()

    def _heard(self, data: bytes) -> None:
        try:
            ids = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.drop_all()  # not ours to read: trust nothing held
            return
        if isinstance(ids, list):
            self.drop(str(cid) for cid in ids)
        else:
            self.drop_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # Redis down or the connection lost
                log.warning("candidate copies: listener lost Redis (%s)", type(exc).__name__)
            finally:
                self._set_listening(False)
            self._stop.wait(RETRY_S)

    def _listen(self) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(
            self._url,
            socket_timeout=max(self._timeout, 1.0),
            socket_connect_timeout=max(self._timeout, 1.0),
            # No reconnecting behind our back: redis-py would re-subscribe by itself,
            # and copies would be served through the outage and the news lost in it.
            retry=Retry(NoBackoff(), 0),
        )
        pubsub: Any = client.pubsub()
        try:
            pubsub.subscribe(self._channel)
            heard = pinged = time.monotonic()
            while not self._stop.is_set():
                now = time.monotonic()
                if now - heard > 2 * HEALTH_CHECK_S:  # a connection that died silently
                    raise ConnectionError("no answer to the listener's ping")
                if now - pinged >= HEALTH_CHECK_S:
                    pubsub.ping()
                    pinged = now
                message = pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                heard = time.monotonic()  # anything, the ping's answer included
                if message["type"] == "subscribe":
                    self._set_listening(True)
                elif message["type"] == "message":
                    self._heard(message["data"])
        finally:
            pubsub.close()
            client.close()
