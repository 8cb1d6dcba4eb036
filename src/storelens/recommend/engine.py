"""Serving: a customer's candidates re-ranked for this request, under the business rules.

A warm answer touches no database: the customer's entry in the candidate store
(memory or Redis) holds their purchase evidence, their ``personalization`` decision
and their declined items; the store's popularity, its out-of-stock items and the
catalogue are cached here; the impressions go to a queue written in batches
(:mod:`storelens.recommend.impression_log`). How each cache stays true:

* an entry is built from the tables on a miss and kept current by the projection this
  engine registers (:meth:`apply_events`): a paid order is added to it, a consent
  decision applied to it (withdrawn: the evidence is dropped at once; granted: it is
  rebuilt), a decline made through the API added to it (:meth:`note_decline`), an
  erasure deletes it. With Redis every worker sees the same entry; the memory store
  is for one worker;
* out-of-stock items: reloaded every ``STOCK_TTL_S``, in the background while the
  loop answers from the old list (:mod:`~storelens.recommend.shared_cache`), and at
  once in the process that took a ``PUT /v1/stores/{id}/stock`` (:meth:`stock_changed`);
* popularity and the catalogue: not personal, refreshed every minute, the same way.

The rules: no personalisation without consent (store popularity, ``personalized:
false``); never an item the store marks out of stock; nothing bought in the last
``recommend_recent_days`` unless a staple; nothing the customer declined; at most
``recommend_category_cap`` per category (:mod:`storelens.recommend.suggestions`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from storelens import stores
from storelens.config import Settings
from storelens.privacy.consent import consent_state
from storelens.privacy.subject import person_ids, resolve_subject
from storelens.recommend import evidence
from storelens.recommend.answer import Answer, impression_row
from storelens.recommend.blend_scores import load_blend
from storelens.recommend.candidate_store import (
    CandidateStore,
    CandidatesUnavailable,
    CustomerCandidates,
    MemoryCandidates,
)
from storelens.recommend.context import Context, resolve_context
from storelens.recommend.impression_log import (
    COLUMNS,
    ERASED_ELSEWHERE_HOLD_S,
    ImpressionLog,
    shown_document,
)
from storelens.recommend.shared_cache import Cold, SharedCache, in_a_thread
from storelens.recommend.shortlist import Blocked, PopularOrder, pick_shortlisted, popular_order
from storelens.recommend.suggestions import Candidate, Recommendation, personal, popular
from storelens.storage.eventlog import StoredEvent

__all__ = ["CONSENT_PURPOSE", "STOCK_TTL_S", "Answer", "Recommendation", "RecommendationEngine"]

log = logging.getLogger(__name__)
CONSENT_PURPOSE = "personalization"
_SHARED_TTL_S = 60.0  # store popularity and the catalogue: not personal, refreshed a minute
STOCK_TTL_S = 1.0  # another process's stock change shows within this (+ the reload: < 1 s)
_WARM = object()  # answer only from what is held; Cold otherwise


class RecommendationEngine:
    """One per process; thread-safe. ``recommend_for`` is what other domains call."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        candidates: CandidateStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        background: Callable[[Callable[[], None]], None] = in_a_thread,
    ) -> None:
        self._engine, self._settings, self._store, self._clock = engine, settings, candidates, clock
        self._shared = SharedCache(monotonic, background)  # expired: reloaded in background
        # After an erasure elsewhere, rows are refused until the follower has surely
        # dropped this process's cached lists: ten of its steps, 5 s at the least.
        hold = max(ERASED_ELSEWHERE_HOLD_S, 10 * settings.recommend_follow_s)
        self.impressions = ImpressionLog(
            engine,
            every_s=settings.recommend_impressions_every_s,
            max_rows=settings.recommend_impressions_max_queued,
            hold_s=hold,
        )

    def close(self) -> None:
        """Write the impressions still queued and close the candidate store (the
        server's shutdown)."""
        self.impressions.close()
        self.candidates.close()

    # -- shared, non-personal data (cached) -------------------------------------------
    def _cached(
        self, key: str, load: Callable[[], Any], ttl: float = _SHARED_TTL_S, warm: bool = False
    ) -> Any:
        return self._shared.get(key, load, ttl, warm)

    def _read(self, load: Callable[[Connection], Any]) -> Any:
        with self._engine.connect() as conn:
            return load(conn)

    def _popularity(
        self, store_id: str, tz: str, warm: bool = False
    ) -> dict[str, evidence.Popularity]:
        days = self._settings.recommend_popularity_days

        def load(c: Connection) -> dict[str, evidence.Popularity]:
            # The window ends when it is loaded: a reload ahead of expiry runs this again.
            since = self._clock() - timedelta(days=days)
            return evidence.store_popularity(c, store_id, since, tz, days)

        return self._cached(  # type: ignore[no-any-return]
            f"pop:{store_id}", lambda: self._read(load), warm=warm
        )

    def _popular(
        self, store_id: str, daypart: str, pop: evidence.Popularity
    ) -> dict[str, Candidate]:
        """The popular list, built once per popularity snapshot (``pop`` is cached)."""
        key = f"popular:{store_id}:{daypart}"
        hit = self._shared.held(key)
        if hit is not None and hit[0] is pop:
            return hit[1]  # type: ignore[no-any-return]
        built = popular(pop, daypart)
        self._shared.keep(key, (pop, built))
        return built

    def _popular_order(
        self,
        store_id: str,
        daypart: str,
        popular: dict[str, Candidate],
        catalogue: dict[str, evidence.ProductInfo],
        zone: str | None,
    ) -> PopularOrder:
        """``popular`` sorted as a request ranks it, once per popular list, catalogue and zone
        (a zone no product sits in sorts like none: the request cannot grow the cache)."""
        zones = self._zones(catalogue)
        where = zone if zone and zone in zones else None
        key = f"order:{store_id}:{daypart}:{where}"
        hit = self._shared.held(key)
        if hit is not None and hit[0] is popular and hit[1] is catalogue:
            return hit[2]  # type: ignore[no-any-return]
        built = popular_order(self._settings, popular, catalogue, where)
        self._shared.keep(key, (popular, catalogue, built))
        return built

    def _zones(self, catalogue: dict[str, evidence.ProductInfo]) -> set[str]:
        hit = self._shared.held("zones")
        if hit is not None and hit[0] is catalogue:
            return hit[1]  # type: ignore[no-any-return]
        zones = {info.zone_id for info in catalogue.values() if info.zone_id}
        self._shared.keep("zones", (catalogue, zones))
        return zones

    def _copurchase(self, conn: Connection) -> evidence.CoPurchaseTable:
        since = self._clock() - timedelta(days=self._settings.recommend_copurchase_days)
        return self._cached(  # type: ignore[no-any-return]
            "copurchase", lambda: evidence.copurchase_table(conn, since)
        )

    def _catalogue(self, warm: bool = False) -> dict[str, evidence.ProductInfo]:
        return self._cached(  # type: ignore[no-any-return]
            "catalogue", lambda: self._read(evidence.catalogue_info), warm=warm
        )

    def _out_of_stock(self, store_id: str, warm: bool = False) -> set[str]:
        return self._cached(  # type: ignore[no-any-return]
            f"stock:{store_id}",
            lambda: self._read(lambda c: evidence.out_of_stock(c, store_id)),
            STOCK_TTL_S,
            warm,
        )

    def keep_shared_fresh(self, lead_s: float) -> int:
        """Reload the store data warm answers use that expires within ``lead_s`` (a
        timer's work: :meth:`SharedCache.refresh_due`); the number reloaded."""
        return self._shared.refresh_due(lead_s)

    def stock_changed(self, store_id: str) -> None:
        """This store's stock was written: the next answer reloads it."""
        self._shared.drop(f"stock:{store_id}")

    # -- candidates ------------------------------------------------------------------
    def build(self, conn: Connection, customer_id: str) -> CustomerCandidates | None:
        """The customer's entry from the tables (without consent it holds no purchase
        evidence: nothing personal is used); None for a consenting customer who never
        ordered, as there is nothing to keep."""
        entry = self._load(conn, customer_id)
        return None if entry.consent and not entry.order_ids else entry

    def _load(self, conn: Connection, customer_id: str) -> CustomerCandidates:
        return self._load_known(conn, customer_id)[0]

    def _load_known(self, conn: Connection, customer_id: str) -> tuple[CustomerCandidates, bool]:
        """The entry, and whether anyone holds the id. An entry for an id nobody holds
        (a typo, a probe, a person erased a moment ago) is answered but not cached: it
        put erased ids back as keys, and let any caller fill the cache with junk."""
        # the person's latest decision under any of their ids, as the profile shows it
        subject = resolve_subject(conn, customer_id)
        ids = [customer_id] if subject is None else list(subject.ids)
        decisions = [s for s in consent_state(conn, ids) if s.purpose == CONSENT_PURPOSE]
        granted = bool(decisions and decisions[0].granted)
        ts = decisions[0].ts.timestamp() if decisions else 0.0
        entry = self._evidence(conn, customer_id) if granted else None
        entry = entry or CustomerCandidates(customer_id=customer_id)
        entry.consent, entry.consent_ts = granted, ts
        entry.declined = tuple(sorted(evidence.declined(conn, customer_id)))
        return entry, subject is not None

    def _evidence(self, conn: Connection, customer_id: str) -> CustomerCandidates | None:
        anchors = self._settings.recommend_anchor_items
        entry = evidence.build_candidates(conn, customer_id, anchors, self._copurchase(conn))
        if entry is not None:  # called only with consent: the blend scores come with it
            entry.blend, entry.blend_at = load_blend(conn, customer_id)
        return entry

    def _entry(self, customer_id: str, warm: bool = False) -> tuple[CustomerCandidates, bool]:
        """(entry, degraded): from the store, else built from the database."""
        if warm:
            if not isinstance(self._store, MemoryCandidates):
                raise Cold("candidates")
            held = self._store.peek(customer_id)  # read only: personal() and the ranking keep it
            if held is None or held.consent is None:
                raise Cold("candidates")
            return held, False
        try:
            entry = self._store.get(customer_id)
        except CandidatesUnavailable as exc:
            log.warning("candidate store unavailable (%s): answering from the database", exc)
            return self._read(lambda c: self._load(c, customer_id)), True
        if entry is not None and entry.consent is not None:
            return entry, False
        entry, known = self._read(lambda c: self._load_known(c, customer_id))
        if not known:
            return entry, False
        try:
            self._store.put(entry)  # refused while an erasure or withdrawal fences them
        except CandidatesUnavailable:
            return entry, True
        return entry, False

    def apply_events(self, conn: Connection, batch: list[StoredEvent]) -> None:
        """Projection handler: paid orders and consent decisions reach the entries at once.

        A store that is down raises, so the projection retries the batch later (the
        order ids in an entry make the retry count each order once)."""
        for ev in batch:
            if ev.type == "pos.order_paid":
                self._apply_order(conn, ev)
            elif ev.type == "consent.changed" and ev.payload.get("purpose") == CONSENT_PURPOSE:
                self._apply_consent(conn, ev)

    apply_orders = apply_events  # the name the projection used before consent was kept

    def _apply_order(self, conn: Connection, ev: StoredEvent) -> None:
        customer = ev.payload.get("customer_id") or ev.subject
        if ev.store_id is None or not customer:
            return
        entry = self._store.get(customer)
        fresh = entry is None or entry.consent is None
        if entry is None or entry.consent is None:
            entry = self._load(conn, customer)
        if not entry.consent:  # no evidence is kept without consent
            if fresh:
                self._store.put(entry)
            return
        products = [li["product_id"] for li in ev.payload["lines"]]
        order_key = f"{ev.store_id}/{ev.payload['order_id']}"
        if entry.apply_order(order_key, ev.ts.timestamp(), products) or fresh:
            self._store.put(entry)

    def _apply_consent(self, conn: Connection, ev: StoredEvent) -> None:
        """The event decides, not the consent table (its projection may not have run
        yet); an older decision arriving late changes nothing."""
        if not ev.subject:
            return
        ts = ev.ts.timestamp()
        # A decision under one id is the person's: entries cached under their other ids
        # (a web account merged into a loyalty card) follow it too.
        ids = person_ids(conn, ev.subject)
        if not ev.payload["granted"]:
            self._withdraw(conn, ids, ts)
            return
        for cid in ids:
            entry = self._store.get(cid)
            if entry is None or entry.consent is None:
                # Not cached: the next answer loads it from the tables. Said anyway: a
                # worker's copy can outlive a key Redis evicted or an operator flushed.
                self._store.delete([cid])
                continue
            if ts < entry.consent_ts:
                continue  # a newer decision is held already
            if not entry.consent:
                rebuilt = self._evidence(conn, cid) or CustomerCandidates(cid)
                rebuilt.declined = entry.declined
                entry = rebuilt
            entry.consent, entry.consent_ts = True, ts
            # Deleted first: should a fence refuse the put, the old entry must not stay.
            self._store.delete([cid])
            self._store.put(entry)

    def _withdraw(self, conn: Connection, ids: list[str], ts: float) -> None:
        """A withdrawal: fills of the person's ids are refused first (a request may have
        read "granted" from the tables before this decision's projection commits, and
        be about to cache it), then each id gets a marker entry (consent off, no orders
        or scores, only the person's declines), stored through the withdrawal's hold.
        Until it expires, no answer reads consent from a consent table that may lag
        behind this event (two reviews' races). An erasure's fence refuses the marker
        too: it keeps the person's declines."""
        self._store.hold_withdrawn(ids)
        for cid in ids:
            held = self._store.get(cid)
            if held is not None and held.consent is not None and ts < held.consent_ts:
                continue  # a newer decision is held already
            marker = CustomerCandidates(cid, consent=False, consent_ts=ts)
            marker.declined = (
                held.declined if held is not None else tuple(sorted(evidence.declined(conn, cid)))
            )
            self._store.put(marker, marker=True)

    def forget_everyone(self) -> int:
        """Drop every list this process holds in memory (an erasure ran elsewhere): its
        memory store, or its copies of Redis entries."""
        return self._store.forget_held()

    def forget_people(self, customer_ids: Iterable[str]) -> int:
        """Drop the lists cached under these ids (identity resolution linked or split
        them): the next answer reads consent and orders as the new links have them."""
        return self._store.delete(sorted(set(customer_ids)))

    def note_decline(self, customer_id: str, product_id: str) -> None:
        """A decline was written: add it to the cached entry (the table stays the truth)."""
        try:
            entry = self._store.get(customer_id)
            if entry is None:
                # Nothing cached to add it to. Said anyway: a worker's copy can outlive
                # a key Redis evicted or an operator flushed, and must not show it.
                self._store.delete([customer_id])
            elif product_id not in entry.declined:
                entry.declined = (*entry.declined, product_id)
                # A withdrawal's marker takes the decline through the withdrawal's hold
                # (refused, the marker showed the item for the cache's ten minutes).
                self._store.put(entry, marker=entry.consent is False)
        except CandidatesUnavailable:
            # Answers read the table while the store is down; an entry cached before
            # lacks this decline until it expires (recommend_cache_ttl_s).
            log.warning("candidate store unavailable: a decline was not cached")  # no ids in logs

    @property
    def candidates(self) -> CandidateStore:
        return self._store

    # -- answering -------------------------------------------------------------------
    def answer(
        self,
        customer_id: str,
        store_id: str,
        k: int,
        context: Context,
        actor: str = "system",
        log_impressions: bool = True,
    ) -> Answer:
        """The top ``k`` for this customer in this store now (NotFound: unknown store)."""
        return self._answer(customer_id, store_id, k, context, actor, log_impressions, None)

    def answer_warm(
        self,
        customer_id: str,
        store_id: str,
        k: int,
        context: Context,
        actor: str = "system",
        entry: CustomerCandidates | None = None,
    ) -> Answer | None:
        """:meth:`answer` from what this process already holds, or None where that is not
        enough (a cache to fill, an entry to build, a full impression queue): no I/O,
        so an async route can call it on the event loop and hand only a None to a
        thread. ``entry``: the customer's entry, read by the caller (Redis, awaited);
        without it only the memory store is consulted."""
        if self.impressions.full(1):
            return None
        if entry is None and not isinstance(self._store, MemoryCandidates):
            return None
        try:
            return self._answer(customer_id, store_id, k, context, actor, True, entry or _WARM)
        except Cold:
            return None

    def _answer(
        self,
        customer_id: str,
        store_id: str,
        k: int,
        context: Context,
        actor: str,
        log_impressions: bool,
        how: object,
    ) -> Answer:
        """``how``: None (fill any cache), ``_WARM`` (only what is held), or the customer's
        entry already read by the caller."""
        warm = how is _WARM or isinstance(how, CustomerCandidates)
        now_dt = self._clock()
        now = now_dt.timestamp()
        store = self._cached(
            f"store:{store_id}", lambda: self._read(lambda c: stores.get_store(c, store_id)),
            warm=warm,
        )  # fmt: skip
        tz = str(store.get("timezone") or "UTC")
        ctx = resolve_context(context, now_dt, tz)
        dayparts = self._popularity(store_id, tz, warm)
        daypart = ctx.daypart or "all"
        pop = dayparts.get(daypart)
        if pop is None or pop.orders == 0:
            daypart, pop = "all", dayparts.get("all", evidence.Popularity(0, {}, 0))
        catalogue = self._catalogue(warm)
        if isinstance(how, CustomerCandidates):
            if how.consent is None:
                raise Cold("candidates")
            entry, degraded = how, False
        else:
            entry, degraded = self._entry(customer_id, warm)
        personalized = bool(entry.consent and entry.order_ids)
        reason = None
        if not entry.consent:
            reason = "no personalization consent on record for this id"
        elif not entry.order_ids:
            reason = "no purchase history"
        popular = self._popular(store_id, daypart, pop)
        order = self._popular_order(store_id, daypart, popular, catalogue, ctx.zone)
        mine = personal(self._settings, entry, pop, now, popular) if personalized else {}
        stock = self._out_of_stock(store_id, warm)  # shared: read, never changed
        blocked = Blocked(stock, frozenset(entry.declined)) if entry.declined else stock
        picked = pick_shortlisted(
            self._settings, popular, order, mine, entry if personalized else None, blocked,
            ctx.zone, catalogue, now, k,
        )  # fmt: skip
        answer = Answer(customer_id, store_id, personalized, reason, ctx, picked, degraded)
        if log_impressions and personalized:
            # Only personal answers are logged: a row under an unknown, erased or
            # non-consenting id would be personal data kept for nothing (a security
            # review saw rows written for an id erased a moment before).
            self.impressions.add([impression_row(answer, actor, now_dt)])
        return answer

    def record_shown(
        self, conn: Connection, answer: Answer, actor: str, at: datetime | None = None
    ) -> None:
        """Log ``answer``'s items as shown to ``actor`` (for a caller that asked with
        ``log_impressions=False`` and decided to show them, in its own transaction)."""
        if self.impressions.refuses(answer.customer_id):
            return  # being erased: the answer was read before the erasure committed
        if not self.impressions.admits(conn):
            return  # an erasure elsewhere since: the answer may be from a stale list
        row = dict(zip(COLUMNS, impression_row(answer, actor, at or self._clock()), strict=True))
        row["shown"] = shown_document(row["shown"])
        evidence.log_impressions(conn, [row])

    def recommend_for(
        self, customer_id: str, store_id: str, k: int, context: Context | None = None
    ) -> list[Recommendation]:
        """Suggestions for another domain (staff notices, campaigns); impressions logged."""
        return self.answer(customer_id, store_id, k, context or Context()).items
