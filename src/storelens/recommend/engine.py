"""Serving: a customer's candidates re-ranked for this request, under the business rules.

Each candidate carries a probability that it is in the customer's next basket, and
that probability is the confidence shown:

* a repeat item: the time-decayed share of the customer's orders holding it, shrunk
  toward the store's daypart share (``(d_item + s) / (d_orders + 1)``): a customer
  with one order is not 100 % sure to buy its items again;
* a co-purchase: P(item | anchor) from all orders, times the anchor's own repeat
  probability;
* popularity: the share of this store's orders in this daypart holding it.

The order is confidence times a zone bonus (the item sits in the zone the customer
stands in). Then the rules: no personalisation without ``personalization`` consent
(store popularity, ``personalized: false``); never an item the store marks out of
stock; nothing bought in the last ``recommend_recent_days`` unless a staple; nothing
the customer declined; at most ``recommend_category_cap`` per category.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from storelens import stores
from storelens.config import Settings
from storelens.privacy.consent import has_consent
from storelens.recommend import evidence
from storelens.recommend.candidate_store import (
    CandidateStore,
    CandidatesUnavailable,
    CustomerCandidates,
)
from storelens.recommend.context import Context, resolve_context
from storelens.storage.eventlog import StoredEvent

__all__ = ["Answer", "Recommendation", "RecommendationEngine"]

log = logging.getLogger(__name__)
CONSENT_PURPOSE = "personalization"
_SHARED_TTL_S = 60.0  # store popularity and the catalogue: not personal, refreshed a minute


@dataclass(frozen=True, slots=True)
class Recommendation:
    product_id: str
    score: float
    confidence: float
    explanation: str
    source: str
    evidence: dict[str, Any] = field(default_factory=dict)
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    customer_id: str
    store_id: str
    personalized: bool
    reason: str | None
    context: Context
    items: list[Recommendation]
    degraded: bool = False  # candidates computed from the database (cache unavailable)


def _months(days: int) -> str:
    if days % 30 == 0:
        return "month" if days == 30 else f"{days // 30} months"
    return f"{days} days"


def _times(n: int) -> str:
    """Words a salesperson reads aloud: "once", "twice", "3 times"."""
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


class RecommendationEngine:
    """One per process; thread-safe. ``recommend_for`` is what other domains call."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        candidates: CandidateStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine, self._settings, self._store, self._clock = engine, settings, candidates, clock
        self._shared: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    # -- shared, non-personal data (cached a minute) --------------------------------
    def _cached(self, key: str, load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._shared.get(key)
        if hit is not None and now - hit[0] < _SHARED_TTL_S:
            return hit[1]
        value = load()
        with self._lock:
            self._shared[key] = (now, value)
        return value

    def _popularity(
        self, conn: Connection, store_id: str, tz: str
    ) -> dict[str, evidence.Popularity]:
        days = self._settings.recommend_popularity_days
        since = self._clock() - timedelta(days=days)
        return self._cached(  # type: ignore[no-any-return]
            f"pop:{store_id}", lambda: evidence.store_popularity(conn, store_id, since, tz, days)
        )

    def _copurchase(self, conn: Connection) -> evidence.CoPurchaseTable:
        since = self._clock() - timedelta(days=self._settings.recommend_copurchase_days)
        return self._cached(  # type: ignore[no-any-return]
            "copurchase", lambda: evidence.copurchase_table(conn, since)
        )

    def build(self, conn: Connection, customer_id: str) -> CustomerCandidates | None:
        anchors = self._settings.recommend_anchor_items
        return evidence.build_candidates(conn, customer_id, anchors, self._copurchase(conn))

    def _catalogue(self, conn: Connection) -> dict[str, evidence.ProductInfo]:
        return self._cached("catalogue", lambda: evidence.catalogue_info(conn))  # type: ignore[no-any-return]

    # -- candidates ------------------------------------------------------------------
    def _candidates(
        self, conn: Connection, customer_id: str
    ) -> tuple[CustomerCandidates | None, bool]:
        """(entry, degraded): from the store, else built from the database."""
        try:
            entry = self._store.get(customer_id)
        except CandidatesUnavailable as exc:
            log.warning("candidate store unavailable (%s): answering from the database", exc)
            return self.build(conn, customer_id), True
        if entry is not None:
            return entry, False
        entry = self.build(conn, customer_id)
        if entry is not None:
            try:
                self._store.put(entry)
            except CandidatesUnavailable:
                return entry, True
        return entry, False

    def apply_orders(self, conn: Connection, batch: list[StoredEvent]) -> None:
        """Projection handler: each paid order updates its customer's candidates at once.

        A store that is down raises, so the projection retries the batch later (the
        order ids in an entry make the retry count each order once)."""
        for ev in batch:
            if ev.type != "pos.order_paid" or ev.store_id is None:
                continue
            customer = ev.payload.get("customer_id") or ev.subject
            if not customer:
                continue
            entry = self._store.get(customer)
            fresh = entry is None
            if entry is None:
                entry = self.build(conn, customer) or CustomerCandidates(customer_id=customer)
            products = [li["product_id"] for li in ev.payload["lines"]]
            order_key = f"{ev.store_id}/{ev.payload['order_id']}"
            if entry.apply_order(order_key, ev.ts.timestamp(), products) or fresh:
                self._store.put(entry)

    # -- scoring ---------------------------------------------------------------------
    def _personal(
        self,
        entry: CustomerCandidates,
        pop: evidence.Popularity,
        now: float,
    ) -> dict[str, Recommendation]:
        s = self._settings
        half = s.recommend_half_life_days * 86400.0
        window = now - s.recommend_history_days * 86400.0
        d_orders = sum(0.5 ** ((now - t) / half) for t in entry.order_times)
        out: dict[str, Recommendation] = {}
        for product, times in entry.items.items():
            share = pop.counts.get(product, 0) / pop.orders if pop.orders else 0.0
            d_item = sum(0.5 ** ((now - t) / half) for t in times)
            p = (d_item + share) / (d_orders + 1.0)
            recent = sum(1 for t in times if t >= window)
            if recent:
                span = _months(s.recommend_history_days)
                text = f"you bought this {_times(recent)} in the last {span}"
            else:
                last = datetime.fromtimestamp(times[-1], UTC).date().isoformat()
                text = f"you bought this {_times(len(times))}, last on {last}"
            out[product] = Recommendation(
                product, p, p, text, "repeat",
                {
                    "times_bought": recent,
                    "window_days": s.recommend_history_days,
                    "times_bought_ever": len(times),
                    "orders": len(entry.order_times),
                    "last_bought": times[-1],
                },
            )  # fmt: skip
        for product, co in entry.copurchase.items():
            if product in out or co.anchor not in out:
                continue
            p = out[co.anchor].confidence * co.together / co.anchor_orders
            out[product] = Recommendation(
                product, p, p,
                f"people who buy {{anchor}} often add this: {co.together} of {co.anchor_orders} "
                "orders with it",
                "copurchase",
                {"anchor": co.anchor, "together": co.together, "anchor_orders": co.anchor_orders},
            )  # fmt: skip
        return out

    @staticmethod
    def _popular(pop: evidence.Popularity, daypart: str) -> dict[str, Recommendation]:
        out: dict[str, Recommendation] = {}
        for product, n in pop.counts.items():
            p = n / pop.orders
            when = "" if daypart == "all" else f" in the {daypart}"
            out[product] = Recommendation(
                product, p, p,
                f"popular at this store{when}: in {n} of {pop.orders} orders in the last "
                f"{pop.days} days",
                "popularity",
                {"orders_with_item": n, "orders": pop.orders, "days": pop.days, "daypart": daypart},
            )  # fmt: skip
        return out

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
        now_dt = self._clock()
        now = now_dt.timestamp()
        with self._engine.begin() as conn:
            store = self._cached(f"store:{store_id}", lambda: stores.get_store(conn, store_id))
            tz = str(store.get("timezone") or "UTC")
            ctx = resolve_context(context, now_dt, tz)
            dayparts = self._popularity(conn, store_id, tz)
            daypart = ctx.daypart or "all"
            pop = dayparts.get(daypart)
            if pop is None or pop.orders == 0:
                daypart, pop = "all", dayparts.get("all", evidence.Popularity(0, {}, 0))
            catalogue = self._catalogue(conn)
            consent = has_consent(conn, customer_id, CONSENT_PURPOSE)
            entry, degraded = self._candidates(conn, customer_id) if consent else (None, False)
            reason = None
            if not consent:
                reason = "no personalization consent"
            elif entry is None:
                reason = "no purchase history"
            personalized = entry is not None and consent
            ranked = self._popular(pop, daypart)
            if personalized and entry is not None:
                for product, rec in self._personal(entry, pop, now).items():
                    if rec.source == "copurchase":
                        anchor = catalogue.get(rec.evidence["anchor"])
                        name = anchor.name if anchor else rec.evidence["anchor"]
                        rec = Recommendation(
                            rec.product_id, rec.score, rec.confidence,
                            rec.explanation.replace("{anchor}", name), rec.source, rec.evidence,
                        )  # fmt: skip
                    current = ranked.get(product)
                    if current is None or rec.confidence >= current.confidence:
                        ranked[product] = rec
            blocked = evidence.blocked_items(conn, store_id, customer_id)
            picked = self._apply_rules(
                ranked, entry if personalized else None, blocked, ctx, catalogue, now, k
            )
            answer = Answer(customer_id, store_id, personalized, reason, ctx, picked, degraded)
            if log_impressions:
                self.record_shown(conn, answer, actor, now_dt)
        return answer

    def record_shown(
        self, conn: Connection, answer: Answer, actor: str, at: datetime | None = None
    ) -> None:
        """Log ``answer``'s items as shown to ``actor`` (for a caller that asked with
        ``log_impressions=False`` and decided to show them, in its own transaction)."""
        at = at or self._clock()
        evidence.log_impressions(
            conn,
            [
                {
                    "ts": at, "customer_id": answer.customer_id, "store_id": answer.store_id,
                    "product_id": r.product_id, "rank": i, "confidence": r.confidence,
                    "personalized": answer.personalized, "actor": actor[:128],
                }
                for i, r in enumerate(answer.items, start=1)
            ],
        )  # fmt: skip

    def _apply_rules(
        self,
        ranked: dict[str, Recommendation],
        entry: CustomerCandidates | None,
        blocked: set[str],
        ctx: Context,
        catalogue: dict[str, evidence.ProductInfo],
        now: float,
        k: int,
    ) -> list[Recommendation]:
        s = self._settings
        recent_cut = now - s.recommend_recent_days * 86400.0
        scored: list[Recommendation] = []
        for product, rec in ranked.items():
            if product in blocked:
                continue
            if entry is not None and product in entry.items:
                times = entry.items[product]
                if times[-1] >= recent_cut and len(times) < s.recommend_staple_orders:
                    continue
            info = catalogue.get(product)
            bonus = 1.0 + (
                s.recommend_zone_boost if ctx.zone and info and info.zone_id == ctx.zone else 0.0
            )
            scored.append(
                Recommendation(
                    product,
                    rec.confidence * bonus,
                    rec.confidence,
                    rec.explanation,
                    rec.source,
                    rec.evidence,
                    info.name if info else None,
                )
            )
        scored.sort(key=lambda r: (-r.score, r.product_id))
        per_category: dict[str, int] = {}
        picked: list[Recommendation] = []
        for rec in scored:
            info = catalogue.get(rec.product_id)
            category = info.category if info else rec.product_id
            if per_category.get(category, 0) >= s.recommend_category_cap:
                continue
            per_category[category] = per_category.get(category, 0) + 1
            picked.append(rec)
            if len(picked) == k:
                break
        return picked

    def recommend_for(
        self, customer_id: str, store_id: str, k: int, context: Context | None = None
    ) -> list[Recommendation]:
        """Suggestions for another domain (staff notices, campaigns); impressions logged."""
        return self.answer(customer_id, store_id, k, context or Context()).items
