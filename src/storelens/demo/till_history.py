"""The loyalty members' till orders of the months before the demo's simulated week.

A week shows a café's operations, but not its customers: everyone in it bought within
the last seven days, so lifetime value and churn risk cannot be fitted and the RFM
segments split a week by days ("lost" after six). A store that installs storelens has
its tills' history, so the demo loads one: the members' paid orders of the ``weeks``
before the week (till orders only: there were no cameras, order screens or espresso
sensors then, so no visits, queue or fulfillment for those months).

Each member of the café's CRM export:

* buys at their own weekly rate, the Gamma prior updated with what they bought in the
  simulated week (a member with five orders in it is a regular, one with none is not);
* joined on some day of the history (two thirds before it began);
* if they bought nothing in the week, may have lapsed: they leave after an exponential
  time (mean ``mean_stay_weeks``), and those whose leaving falls before the week stop
  buying then. Members who bought in the week stayed.

Baskets come from what the member bought in the week (their staples) and the café's
popular items, at the hours of the day they come in, in the store's local time (the
history crosses summer time). Seeded: one seed gives byte-identical events.

Nothing here is a truth to evaluate models on: the demo's history exists to be looked
at. Models are measured on data storelens did not generate (docs/predictive.md).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from storelens.catalogue import Product
from storelens.core.events import Event, OrderPaidEvent

__all__ = ["MemberWeek", "SimulatedWeek", "TillHistoryConfig", "read_week", "till_history"]

_WEEK_S = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class TillHistoryConfig:
    """How the history is drawn (rates and times in weeks)."""

    weeks: int = 26
    seed: int = 7
    rate_shape: float = 1.2
    rate_mean: float | None = None
    """Prior of a member's orders per week: Gamma(rate_shape, rate_mean / rate_shape);
    by default the members' mean in the simulated days, so the history runs at the
    week's level (not a café that suddenly doubled)."""
    mean_stay_weeks: float = 20.0
    """Of members absent from the week: mean time from joining to leaving."""
    joined_before_share: float = 2 / 3
    """Share of members who were customers before the history begins: an established
    café's members (with a third, the members' revenue grew 74 % a quarter)."""
    staple_share: float = 0.75
    """Chance that a basket line is one of the member's staples, not a popular item."""


@dataclass(slots=True)
class MemberWeek:
    """What one member did in the simulated week: the evidence their history follows."""

    orders: int = 0
    products: Counter[str] = field(default_factory=Counter)
    local_hours: list[int] = field(default_factory=list)
    mobile: int = 0


@dataclass(slots=True)
class SimulatedWeek:
    """The simulated days as the history reads them: members, popular items, hours."""

    members: dict[str, MemberWeek]
    store_id: str
    start: datetime  # the week's first event: the history ends there
    end: datetime  # its last
    popular: Counter[str]
    local_hours: list[int]
    basket_lines: list[int]


def read_week(path: Path, tz: ZoneInfo) -> SimulatedWeek:
    """The members, their orders and the café's popular items and hours, from the
    simulated week's events (only the CRM records and paid orders are parsed)."""
    members: dict[str, MemberWeek] = {}
    popular: Counter[str] = Counter()
    hours: list[int] = []
    lines: list[int] = []
    store_id, start, end = "", None, None
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            if '"customer.upserted"' not in raw and '"pos.order_paid"' not in raw:
                continue
            event = json.loads(raw)
            ts = datetime.fromisoformat(event["ts"])
            start = ts if start is None or ts < start else start
            end = ts if end is None or ts > end else end
            if event["type"] == "customer.upserted":
                loyalty = event["payload"].get("loyalty_id")
                if loyalty:
                    members.setdefault(str(loyalty), MemberWeek())
                continue
            if event["type"] != "pos.order_paid":
                continue
            payload = event["payload"]
            store_id = event["store_id"]
            hour = ts.astimezone(tz).hour
            hours.append(hour)
            lines.append(len(payload["lines"]))
            for line in payload["lines"]:
                popular[line["product_id"]] += 1
            customer = payload.get("customer_id")
            if customer:
                week = members.setdefault(str(customer), MemberWeek())
                week.orders += 1
                week.local_hours.append(hour)
                week.mobile += payload["channel"] == "mobile"
                week.products.update(line["product_id"] for line in payload["lines"])
    if start is None or end is None or not store_id:
        raise ValueError(f"{path}: no paid orders to follow")
    return SimulatedWeek(members, store_id, start, end, popular, hours, lines)


class _Choice:
    """Names drawn in proportion to their counts (built once, drawn from many times)."""

    def __init__(self, counts: Counter[str]) -> None:
        self.names = sorted(counts)
        weights = np.array([counts[n] for n in self.names], dtype=float)
        self.cumulative = np.cumsum(weights / weights.sum())

    def draw(self, rng: np.random.Generator) -> str:
        at = int(np.searchsorted(self.cumulative, rng.uniform(), side="right"))
        return self.names[min(at, len(self.names) - 1)]


def till_history(
    week_events: Path,
    products: Iterable[Product],
    tz: ZoneInfo,
    config: TillHistoryConfig | None = None,
) -> list[Event]:
    """The members' paid orders of the ``config.weeks`` before the simulated week, in
    time order."""
    config = config or TillHistoryConfig()
    week = read_week(week_events, tz)
    catalogue = {p.product_id: p for p in products}
    known = Counter({p: n for p, n in week.popular.items() if p in catalogue})
    if not known:
        raise ValueError("the week's orders name no product of the catalogue")
    popular = _Choice(known)
    rng = np.random.default_rng(config.seed)
    end = week.start
    begin = end - timedelta(weeks=config.weeks)
    weeks_seen = max((week.end - week.start).total_seconds() / _WEEK_S, 1 / 7)
    rate_mean = config.rate_mean or sum(m.orders for m in week.members.values()) / max(
        len(week.members) * weeks_seen, 1e-9
    )
    scale = rate_mean / config.rate_shape
    drawn: list[tuple[datetime, str, list[tuple[str, int]], bool]] = []
    for member in sorted(week.members):
        seen = week.members[member]
        # Gamma prior and the days' Poisson evidence: Gamma(shape + n, scale / (1 + s t)).
        rate = rng.gamma(config.rate_shape + seen.orders, scale / (1.0 + scale * weeks_seen))
        # Uniform over [-b W, W] clipped at 0: P(joined before) = b / (1 + b) = the share.
        before = config.joined_before_share / (1.0 - config.joined_before_share)
        joined = max(0.0, float(rng.uniform(-before * config.weeks, config.weeks)))
        stop = float(config.weeks)
        if seen.orders == 0:
            stop = min(stop, joined + rng.exponential(config.mean_stay_weeks))
        if stop <= joined:
            continue
        staples = Counter({p: n for p, n in seen.products.items() if p in catalogue})
        while len(staples) < 3:  # a member the week saw little of still has favourites
            staples[popular.draw(rng)] += 1
        favourite = _Choice(staples)
        hours = seen.local_hours or week.local_hours
        mobile_share = seen.mobile / seen.orders if seen.orders else 0.15
        count = rng.poisson(rate * (stop - joined))
        for at in np.sort(rng.uniform(joined, stop, size=count)):
            day = (begin + timedelta(weeks=float(at))).astimezone(tz).date()
            hour = hours[int(rng.integers(len(hours)))]
            minute = float(rng.uniform(0, 60))
            local = datetime(day.year, day.month, day.day, hour, tzinfo=tz)
            ts = (local + timedelta(minutes=minute)).astimezone(UTC)
            if not begin <= ts < end:  # the first day's early hours, the week's own day
                continue
            n_lines = week.basket_lines[int(rng.integers(len(week.basket_lines)))]
            basket: Counter[str] = Counter()
            for _ in range(n_lines):
                mine = rng.uniform() < config.staple_share
                basket[(favourite if mine else popular).draw(rng)] += 1
            drawn.append((ts, member, sorted(basket.items()), rng.uniform() < mobile_share))
    drawn.sort(key=lambda d: (d[0], d[1]))
    return [_event(week.store_id, i, d, catalogue, rng) for i, d in enumerate(drawn)]


def _event(
    store_id: str,
    number: int,
    drawn: tuple[datetime, str, list[tuple[str, int]], bool],
    catalogue: dict[str, Product],
    rng: np.random.Generator,
) -> Event:
    ts, member, basket, mobile = drawn
    lines = [
        {
            "product_id": product,
            "qty": qty,
            "unit_price": catalogue[product].price,
            "name": catalogue[product].name,
            "category": catalogue[product].category,
        }
        for product, qty in basket
    ]
    register = None if mobile else f"reg-{1 + int(rng.integers(2))}"
    return OrderPaidEvent.model_validate(
        {
            "id": uuid.UUID(bytes=rng.bytes(16), version=4),
            "ts": ts,
            "source": "pos",
            "subject": member,
            "store_id": store_id,
            "payload": {
                "order_id": f"{store_id}-{ts:%Y%m%d}-h{number:05d}",
                "lines": lines,
                "register_id": register,
                "channel": "mobile" if mobile else "in_store",
                "customer_id": member,
                "currency": "EUR",
                "payment_method": "mobile" if mobile else "card",
            },
        }
    )
