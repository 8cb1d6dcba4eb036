"""Where each customer's precomputed candidates live: this process's memory, or Redis.

A :class:`CustomerCandidates` is what serving needs about one customer without touching
the database: when they ordered, which items they bought when, and items co-bought with
their favourites. It is built from the orders table once, then kept current by the
purchase projection (each paid order is applied to it, so an order shows up in the
next answer without any retraining).

Two backends behind one small protocol (the transport idea of httpx): the embedded
default keeps entries in a dict, production in Redis so every worker shares them. A
Redis that errors or is slower than its timeout raises :class:`CandidatesUnavailable`,
and the engine answers from the database instead of failing the request.

Every live store is remembered so that an erasure reaches the entries of this process
(and of Redis) as well as the tables.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from storelens.config import Settings
from storelens.recommend.fences import FENCE_GRACE_S, Fences
from storelens.recommend.near_copies import CHANGED, NearCopies, changed_message

__all__ = [
    "CandidateStore",
    "CandidatesUnavailable",
    "CoPurchase",
    "CustomerCandidates",
    "MemoryCandidates",
    "RankingBasis",
    "RedisCandidates",
    "candidate_store",
    "live_stores",
]

REDIS_PREFIX = "storelens:reco:cand:"
FENCE_PREFIX = "storelens:reco:fence:"
"""A key here refuses fills of that customer's entry (:mod:`storelens.recommend.fences`)."""
OPEN_FENCE_S = 3600
"""An erasure's fence in Redis lasts this long if its process dies before lifting it."""
MAX_ORDERS_KEPT = 400  # per customer: enough for every decay and explanation window


class CandidatesUnavailable(Exception):
    """The candidate store cannot answer now (Redis down or slow); use the database."""


RankingBasis = tuple[float, float, float, dict[str, float], tuple[tuple[str, str, float], ...]]
"""(half-life s, as of, the orders' decayed count, each item's, and the co-purchases a
request ranks: (product, anchor, together / anchor_orders) for each item
the customer never bought whose anchor they did): weights are 1 at "as of"."""
CoPurchase = tuple[str, int, int]
"""(anchor, together, anchor_orders): ``product`` was in ``together`` of the
``anchor_orders`` orders that held ``anchor``."""


@dataclass(slots=True)
class CustomerCandidates:
    """One customer's purchase evidence; times are Unix seconds, newest last.

    The evidence is held in tuples of plain values, never lists: the garbage collector
    stops tracking such tuples (and then the dicts holding only them). A warm server
    keeps an entry per customer for minutes; as lists and a dataclass per co-purchase,
    2,000 customers made 55,000 of the 69,000 objects a full collection walks, and
    under load one ran every ~3 s, pausing the event loop 13-19 ms."""

    customer_id: str
    order_ids: tuple[str, ...] = ()
    order_times: tuple[float, ...] = ()
    items: dict[str, tuple[float, ...]] = field(default_factory=dict)
    copurchase: dict[str, CoPurchase] = field(default_factory=dict)
    # The rules' personal inputs, kept beside the evidence so a warm answer reads
    # nothing else: the latest ``personalization`` decision (None: not loaded, so the
    # entry is rebuilt; an entry without consent holds no purchase evidence) and the
    # items the customer declined.
    consent: bool | None = None
    consent_ts: float = 0.0
    declined: tuple[str, ...] = ()
    # The learned blend's next-basket scores from the last ``recommend train``
    # (storelens.recommend.blend_scores) and when they were scored (Unix seconds).
    blend: dict[str, float] = field(default_factory=dict)
    blend_at: float = 0.0
    # Derived from the evidence by serving, never stored: the time-decayed counts as of
    # the newest order and the co-purchases a request ranks
    # (storelens.recommend.suggestions.ranking_basis).
    basis: RankingBasis | None = field(default=None, repr=False, compare=False)

    def withdraw(self, ts: float) -> None:
        """Consent withdrawn at ``ts``: forget the purchase evidence, keep the declines."""
        self.consent, self.consent_ts = False, ts
        self.order_ids, self.order_times, self.items, self.copurchase = (), (), {}, {}
        self.blend, self.blend_at = {}, 0.0
        self.basis = None

    def apply_order(self, order_id: str, ts: float, products: list[str]) -> bool:
        """Count a paid order once (re-sent or replayed orders change nothing)."""
        if order_id in self.order_ids:
            return False
        for product in dict.fromkeys(products):
            times = sorted((*self.items.get(product, ()), ts))
            self.items[product] = tuple(times[-MAX_ORDERS_KEPT:])
        pairs = zip((*self.order_times, ts), (*self.order_ids, order_id), strict=True)
        order = sorted(pairs)[-MAX_ORDERS_KEPT:]
        self.order_times = tuple(t for t, _ in order)
        self.order_ids = tuple(o for _, o in order)
        self.basis = None
        return True

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "customer_id": self.customer_id,
                "order_ids": self.order_ids,
                "order_times": self.order_times,
                "items": self.items,
                "copurchase": self.copurchase,  # each as [anchor, together, anchor_orders]
                "consent": self.consent,
                "consent_ts": self.consent_ts,
                "declined": self.declined,
                "blend": self.blend,
                "blend_at": self.blend_at,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> CustomerCandidates:
        d: dict[str, Any] = orjson.loads(raw)
        return cls(
            customer_id=d["customer_id"],
            order_ids=tuple(d["order_ids"]),
            order_times=tuple([float(t) for t in d["order_times"]]),
            items={p: tuple([float(t) for t in ts]) for p, ts in d["items"].items()},
            copurchase={p: (str(a), int(t), int(n)) for p, (a, t, n) in d["copurchase"].items()},
            consent=d.get("consent"),  # absent in entries written before it was kept
            consent_ts=float(d.get("consent_ts", 0.0)),
            declined=tuple(d.get("declined", ())),
            blend={p: float(v) for p, v in d.get("blend", {}).items()},
            blend_at=float(d.get("blend_at", 0.0)),
        )


class CandidateStore(Protocol):
    def get(self, customer_id: str) -> CustomerCandidates | None: ...

    def put(self, entry: CustomerCandidates, *, marker: bool = False) -> None:
        """Store the entry unless its customer is fenced. ``marker``: the entry of a
        customer without consent (a withdrawal's marker, or a decline added to one),
        stored through a withdrawal's hold but never through an erasure's fence."""
        ...

    def delete(self, customer_ids: list[str]) -> int: ...

    def fence(self, customer_ids: list[str]) -> int:
        """Delete these entries and refuse to store them again until :meth:`hold`."""
        ...

    def hold(self, customer_ids: list[str]) -> None:
        """Refuse to store these entries for the grace period from now: an erasure has
        committed (again deleting what a request put meanwhile)."""
        ...

    def hold_withdrawn(self, customer_ids: list[str]) -> None:
        """Refuse fills of these entries, not markers, for the grace period from now
        (a consent withdrawal); never shortens or weakens an erasure's fence."""
        ...

    def forget_held(self) -> int:
        """Drop every entry this process holds in its own memory (an erasure ran
        elsewhere, its ids unknown here); how many went."""
        ...

    def close(self) -> None: ...


_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()


def live_stores() -> list[CandidateStore]:
    """Every candidate store alive in this process (the erasure walks them)."""
    return list(_LIVE)


class MemoryCandidates:
    """Entries in this process's memory, each kept ``ttl_s`` seconds after it was written;
    past ``max_entries`` the oldest written goes (a flood of unknown ids cannot grow it)."""

    def __init__(
        self,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 200_000,
    ) -> None:
        self._ttl, self._clock, self._max = ttl_s, clock, max_entries
        self._fences = Fences(clock)
        self._data: dict[str, tuple[float, bytes]] = {}
        # Entries decoded for :meth:`peek`, dropped with the entry (put, delete, expiry).
        self._decoded: dict[str, CustomerCandidates] = {}
        self._lock = threading.Lock()
        _LIVE.add(self)

    def close(self) -> None:
        """Leave the erasure's walk (the app's shutdown): a store of an app that has
        stopped would otherwise stay in it until the garbage collector finds the app."""
        _LIVE.discard(self)
        with self._lock:
            self._data.clear()
            self._decoded.clear()

    def _live(self, customer_id: str) -> tuple[float, bytes] | None:
        """The stored entry if not expired (the caller holds the lock)."""
        hit = self._data.get(customer_id)
        if hit is not None and self._clock() - hit[0] > self._ttl:
            del self._data[customer_id]
            self._decoded.pop(customer_id, None)
            return None
        return hit

    def get(self, customer_id: str) -> CustomerCandidates | None:
        with self._lock:
            hit = self._live(customer_id)
        if hit is None:
            return None
        # Stored serialised: a caller that changes its copy changes nothing here.
        return CustomerCandidates.from_json(hit[1])

    def peek(self, customer_id: str) -> CustomerCandidates | None:
        """The entry without a copy, for a caller that only reads it (serving): decoded
        once per write instead of once per request. Never change what this returns."""
        with self._lock:
            hit = self._live(customer_id)
            if hit is None:
                return None
            decoded = self._decoded.get(customer_id)
        if decoded is None:
            decoded = CustomerCandidates.from_json(hit[1])
            with self._lock:
                if self._data.get(customer_id) is hit:  # not replaced meanwhile
                    self._decoded[customer_id] = decoded
        return decoded

    def put(self, entry: CustomerCandidates, *, marker: bool = False) -> None:
        _check_marker(entry, marker)
        raw = entry.to_json()
        with self._lock:  # the fence checked under the lock: a hold cannot slip between
            if self._fences.blocks(entry.customer_id, marker=marker):
                return  # read before an erasure or withdrawal took effect: not kept
            if marker and self._newer_decision_held(entry):
                return  # a later withdrawal's marker stays (see _PUT_MARKER)
            self._data.pop(entry.customer_id, None)  # re-inserted: newest last
            self._decoded.pop(entry.customer_id, None)
            self._data[entry.customer_id] = (self._clock(), raw)
            while len(self._data) > self._max:
                oldest = next(iter(self._data))
                del self._data[oldest]
                self._decoded.pop(oldest, None)

    def _newer_decision_held(self, entry: CustomerCandidates) -> bool:
        """Locked. Whether the held entry of this customer has a later consent decision."""
        hit = self._data.get(entry.customer_id)
        if hit is None:
            return False
        held = self._decoded.get(entry.customer_id) or CustomerCandidates.from_json(hit[1])
        return held.consent_ts > entry.consent_ts

    def delete(self, customer_ids: list[str]) -> int:
        with self._lock:
            for c in customer_ids:
                self._decoded.pop(c, None)
            return sum(self._data.pop(c, None) is not None for c in customer_ids)

    def fence(self, customer_ids: list[str]) -> int:
        self._fences.close(customer_ids)
        return self.delete(customer_ids)

    def hold(self, customer_ids: list[str]) -> None:
        self._fences.hold(customer_ids)

    def hold_withdrawn(self, customer_ids: list[str]) -> None:
        self._fences.hold_withdrawn(customer_ids)

    def forget_held(self) -> int:
        """Drop every entry (an erasure elsewhere: which ids it named is not known here),
        and keep none for the grace period: a request of this process may have read the
        person's data before that erasure committed."""
        self._fences.hold_everyone()
        with self._lock:
            dropped = len(self._data)
            self._data.clear()
            self._decoded.clear()
        return dropped


_PUT_UNFENCED = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""
# A marker passes a withdrawal's hold only; any other fence value (an erasure's, or
# one an older version wrote) refuses it. Nor does it replace an entry holding a newer
# consent decision: a decline added to a marker read before a later withdrawal would
# put the older decision's time back, and a late grant between the two would then pass.
_PUT_MARKER = """
local fence = redis.call('GET', KEYS[2])
if fence and fence ~= 'withdrawn' then return 0 end
local held = redis.call('GET', KEYS[1])
if held then
  local ok, entry = pcall(cjson.decode, held)
  if ok and type(entry) == 'table' and tonumber(entry['consent_ts'])
      and tonumber(entry['consent_ts']) > tonumber(ARGV[5]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""
# A withdrawal's hold: set where no fence stands (or a withdrawal's does), and an
# erasure's fence only made to last the grace at least, never replaced.
_HOLD_WITHDRAWN = """
for _, key in ipairs(KEYS) do
  local fence = redis.call('GET', key)
  if not fence or fence == 'withdrawn' then
    redis.call('SET', key, 'withdrawn', 'EX', ARGV[1])
  else
    local ttl = redis.call('TTL', key)  -- -1: no expiry, never to be given one
    if ttl >= 0 and ttl < tonumber(ARGV[1]) then redis.call('EXPIRE', key, ARGV[1]) end
  end
end
return 0
"""
ERASED = b"erased"
"""The value of an erasure's fence key (a withdrawal's is ``withdrawn``)."""


def _check_marker(entry: CustomerCandidates, marker: bool) -> None:
    if marker and (
        entry.consent is not False
        or entry.order_ids
        or entry.items
        or entry.copurchase
        or entry.blend
    ):
        raise ValueError(
            "only an entry without consent, orders or scores goes through a withdrawal's hold"
        )


class RedisCandidates:
    """Entries in Redis under ``storelens:reco:cand:<customer>``, expiring after ``ttl_s``.

    Every write publishes the customer's id on :data:`~storelens.recommend.near_copies.CHANGED`
    in the same step on the server; with ``copies`` (the default) :meth:`aget` serves a
    worker's own decoded copy until such news drops it
    (:class:`~storelens.recommend.near_copies.NearCopies`)."""

    def __init__(self, url: str, ttl_s: float, timeout_s: float, copies: bool = True) -> None:
        import redis

        self._url, self._timeout = url, timeout_s
        self._ttl = max(int(ttl_s), 1)
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._put_unfenced = self._client.register_script(_PUT_UNFENCED)
        self._put_marker = self._client.register_script(_PUT_MARKER)
        self._hold_withdrawn = self._client.register_script(_HOLD_WITHDRAWN)
        # One asyncio client per event loop (a connection belongs to the loop it was
        # opened on): uvicorn runs one loop per worker, a test client one per portal.
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        db = self._client.connection_pool.connection_kwargs.get("db", 0)
        self._channel = f"{CHANGED}{db}"
        self.copies: NearCopies[CustomerCandidates] | None = (
            NearCopies(url, self._channel, timeout_s) if copies else None
        )
        if self.copies is not None:  # a store dropped without close() stops listening too
            weakref.finalize(self, self.copies.close)
        _LIVE.add(self)

    async def aget(self, customer_id: str) -> CustomerCandidates | None:
        """:meth:`get` without blocking the event loop: a serving request awaits Redis
        instead of holding a thread for the round trip, or reads this worker's copy.
        Shared when it is a copy: never change what this returns."""
        import redis
        import redis.asyncio

        copies, ticket = self.copies, None
        if copies is not None:
            hit = copies.get(customer_id)
            if hit is not None:
                return hit
            ticket = copies.ticket()
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            client = redis.asyncio.Redis.from_url(
                self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout
            )
            self._async[loop] = client
        key = REDIS_PREFIX + customer_id
        try:
            if ticket is None:
                raw, left_ms = await client.get(key), 0
            else:  # with the key's time left: a copy never outlives it
                async with client.pipeline(transaction=False) as pipe:
                    pipe.get(key)
                    pipe.pttl(key)
                    raw, left_ms = await pipe.execute()
        except (redis.RedisError, OSError, TimeoutError) as exc:
            raise CandidatesUnavailable(type(exc).__name__) from None
        if raw is None:
            return None
        entry = CustomerCandidates.from_json(raw)
        if copies is not None and left_ms > 0:
            copies.keep(customer_id, entry, ticket, min(self._ttl, left_ms / 1000.0))
        return entry

    def _call(self, fn: Callable[[], Any]) -> Any:
        import redis

        try:
            return fn()
        except (redis.RedisError, OSError) as exc:
            raise CandidatesUnavailable(type(exc).__name__) from None

    def _changed(self, customer_ids: list[str]) -> None:
        """This process's copies go at once; other workers' when the news reaches them."""
        if self.copies is not None:
            self.copies.drop(customer_ids)

    def get(self, customer_id: str) -> CustomerCandidates | None:
        raw = self._call(lambda: self._client.get(REDIS_PREFIX + customer_id))
        return None if raw is None else CustomerCandidates.from_json(raw)

    def put(self, entry: CustomerCandidates, *, marker: bool = False) -> None:
        """Stored unless the customer is fenced, in one step on the server (a check
        and a separate SET would let a fence land between them), and the change
        published in that step."""
        _check_marker(entry, marker)
        cid = entry.customer_id
        keys = [REDIS_PREFIX + cid, FENCE_PREFIX + cid]
        args: list[bytes | str | int] = [
            entry.to_json(),
            self._ttl,
            self._channel,
            changed_message([cid]),
            repr(entry.consent_ts),  # the marker's: a held newer decision is kept
        ]
        script = self._put_marker if marker else self._put_unfenced
        self._call(lambda: script(keys=keys, args=args))
        self._changed([cid])

    def delete(self, customer_ids: list[str]) -> int:
        if not customer_ids:
            return 0
        keys = [REDIS_PREFIX + c for c in customer_ids]

        def write() -> int:
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(*keys)
            pipe.publish(self._channel, changed_message(customer_ids))
            return int(pipe.execute()[0])

        try:
            return int(self._call(write))
        finally:
            self._changed(customer_ids)

    def fence(self, customer_ids: list[str]) -> int:
        self._set_fences(customer_ids, OPEN_FENCE_S)
        return self.delete(customer_ids)

    def hold(self, customer_ids: list[str]) -> None:
        self._set_fences(customer_ids, max(int(FENCE_GRACE_S), 1))

    def hold_withdrawn(self, customer_ids: list[str]) -> None:
        if customer_ids:
            keys = [FENCE_PREFIX + c for c in customer_ids]
            grace = max(int(FENCE_GRACE_S), 1)
            self._call(lambda: self._hold_withdrawn(keys=keys, args=[grace]))

    def forget_held(self) -> int:
        """Drop this worker's copies (an erasure elsewhere, ids unknown here); Redis
        itself is erased by the eraser, which also publishes the ids."""
        return self.copies.drop_all() if self.copies is not None else 0

    def _set_fences(self, customer_ids: list[str], seconds: int) -> None:
        def write() -> None:
            pipe = self._client.pipeline(transaction=False)
            for c in customer_ids:
                pipe.set(FENCE_PREFIX + c, ERASED, ex=seconds)
            pipe.execute()

        if customer_ids:
            self._call(write)

    def close(self) -> None:
        """Leave the erasure's walk and drop the connections (the app's shutdown)."""
        _LIVE.discard(self)
        if self.copies is not None:
            self.copies.close()
        self._client.close()


def candidate_store(settings: Settings) -> CandidateStore:
    """The backend the settings name; Redis needs ``redis_url``."""
    if settings.recommend_candidate_store == "redis":
        if not settings.redis_url:
            from storelens.core.errors import ConfigError

            raise ConfigError("recommend_candidate_store = 'redis' needs STORELENS_REDIS_URL")
        return RedisCandidates(
            settings.redis_url,
            settings.recommend_cache_ttl_s,
            settings.recommend_redis_timeout_s,
            copies=settings.recommend_redis_copies,
        )
    return MemoryCandidates(settings.recommend_cache_ttl_s)
