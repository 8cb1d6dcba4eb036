"""A simpler retail mode for apparel layouts: browse, maybe try on, maybe queue and pay.

No bar and no order preparation: the interesting signals in a fashion store are which
fixtures people browse, for how long, and how many of them end up at the checkout
(conversion). Shoppers queue FIFO for the first free checkout, as in the café, so queue
truth means the same thing in both kinds of store.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from math import sqrt
from typing import Any

from storelens.catalogue import Product
from storelens.sim.checkout import Checkout
from storelens.sim.clock import MINUTE, SECOND, Agenda, uniform_ms
from storelens.sim.config import SimConfig
from storelens.sim.day import DayContext, Track
from storelens.sim.menu import Basket
from storelens.sim.population import Person
from storelens.sim.truth import OrderTruth

__all__ = ["apparel_catalogue", "simulate_apparel_day"]

_BUY_SHARE = 0.35
_TRY_ON_SHARE = 0.6  # of buyers of clothes, when the layout has fitting rooms

# (product_id, name, category, price, zone_id); most popular first within a category.
_CATALOGUE = (
    ("top-basic-tee", "Basic Tee", "tops", 12.99, "womens"),
    ("top-oxford-shirt", "Oxford Shirt", "tops", 39.99, "mens"),
    ("top-knit-sweater", "Knit Sweater", "tops", 49.99, "new-arrivals"),
    ("top-linen-blouse", "Linen Blouse", "tops", 34.99, "womens"),
    ("top-hoodie", "Hoodie", "tops", 44.99, "mens"),
    ("top-polo", "Polo Shirt", "tops", 29.99, "sale-rack"),
    ("den-slim-jeans", "Slim Jeans", "denim", 59.99, "denim"),
    ("den-straight-jeans", "Straight Jeans", "denim", 64.99, "denim"),
    ("den-mom-jeans", "Mom Jeans", "denim", 59.99, "denim"),
    ("den-jacket", "Denim Jacket", "denim", 79.99, "denim"),
    ("bot-chinos", "Chinos", "bottoms", 49.99, "mens"),
    ("bot-pleated-skirt", "Pleated Skirt", "bottoms", 39.99, "womens"),
    ("bot-wide-trousers", "Wide Trousers", "bottoms", 54.99, "new-arrivals"),
    ("bot-shorts", "Shorts", "bottoms", 24.99, "sale-rack"),
    ("out-wool-coat", "Wool Coat", "outerwear", 149.99, "new-arrivals"),
    ("out-rain-jacket", "Rain Jacket", "outerwear", 89.99, "mens"),
    ("out-puffer", "Puffer Jacket", "outerwear", 119.99, "womens"),
    ("acc-beanie", "Beanie", "accessories", 14.99, "accessories"),
    ("acc-scarf", "Scarf", "accessories", 19.99, "accessories"),
    ("acc-belt", "Leather Belt", "accessories", 29.99, "accessories"),
    ("acc-socks", "Socks 3-Pack", "accessories", 9.99, "accessories"),
    ("acc-tote", "Canvas Tote", "accessories", 17.99, "accessories"),
)
_CLOTHES = frozenset({"tops", "denim", "bottoms", "outerwear"})


def apparel_catalogue() -> tuple[list[Product], frozenset[str], frozenset[str]]:
    """A small synthetic fashion catalogue: (products, clothing categories, add-ons)."""
    products = [
        Product(pid, name, category, "Threads", price, {}, zone)
        for pid, name, category, price, zone in _CATALOGUE
    ]
    return products, _CLOTHES, frozenset({"accessories"})


@dataclass(slots=True)
class _Shopper:
    person: Person
    track: Track
    customer_id: str | None
    basket: Basket | None
    queue_enter: int = 0


@dataclass(slots=True)
class _Store:
    ctx: DayContext
    fitting: str | None
    config: SimConfig = field(default_factory=SimConfig)
    agenda: Agenda = field(default_factory=Agenda)
    checkout: Checkout[_Shopper] = field(default_factory=lambda: Checkout(1))
    order_count: int = 0

    def at(self, ms: int, action: Callable[[int, Any], None], arg: Any = None) -> None:
        self.agenda.at(ms, action, arg)

    def run(self) -> None:
        self.agenda.run()

    def arrive(self, ms: int, shopper: _Shopper) -> None:
        """Browsing involves nobody else, so the path up to the checkout is laid out at once."""
        ctx, rng = self.ctx, self.ctx.service_rng
        track, zones = shopper.track, ctx.zones
        track.move(zones.entrance, ms)
        ms += uniform_ms(rng, 2, 6)
        wanted = [p.zone_id for p, _ in shopper.basket or [] if p.zone_id in zones.browse]
        cold = self.config.cold_zone
        others = [z for z in zones.browse if z not in wanted and z != cold]
        extra = rng.sample(others, min(len(others), rng.randint(0, 3)))
        path = list(dict.fromkeys([*wanted, *extra])) or [rng.choice(others or zones.browse)]
        rng.shuffle(path)
        lure = self.config.attractive_fixture
        drawn = lure is not None and lure not in path[:4]
        if drawn and ctx.planted_rng.random() < self.config.attractive_share:
            assert lure is not None
            path.insert(0, lure)  # first, so the four-zone limit never cuts it
        # Nobody browses past closing: stays shrink in the last minutes of the day.
        budget = max(ctx.closes - ms - 2 * SECOND * len(path), len(path) * 30 * SECOND)
        per_zone = budget // len(path)
        for zone_id in path[:4]:
            track.move(zone_id, ms)
            ms += min(uniform_ms(rng, 60, 480), per_zone)
        clothes = any(p.category in _CLOTHES for p, _ in shopper.basket or [])
        if self.fitting and clothes and rng.random() < _TRY_ON_SHARE and ctx.closes - ms > MINUTE:
            track.move(self.fitting, ms)
            ms += min(uniform_ms(rng, 180, 600), max(ctx.closes - ms, 30 * SECOND))
        if shopper.basket:
            self.at(ms, self.join_queue, shopper)
        else:
            self.leave(ms, shopper)

    def join_queue(self, ms: int, shopper: _Shopper) -> None:
        self.at(self.checkout.enter(self.ctx, shopper, ms), self.serve)

    def serve(self, ms: int, _: Any = None) -> None:
        for paid_at, register, shopper in self.checkout.serve(self.ctx, ms, (40, 120)):
            self.at(paid_at, self.pay, (shopper, register))

    def pay(self, ms: int, arg: tuple[_Shopper, int]) -> None:
        shopper, register = arg
        self.checkout.release(register)
        basket = shopper.basket or []
        ctx = self.ctx
        self.order_count += 1
        order_id = f"{ctx.store_id}-{ctx.day:%Y%m%d}-{self.order_count:04d}"
        register_id = f"reg-{register + 1}"
        items = sum(qty for _, qty in basket)
        ctx.truth.orders.append(
            OrderTruth(
                order_id, ctx.store_id, "in_store", register_id, shopper.customer_id, ms, 0, items
            )
        )
        payload = {
            "order_id": order_id,
            "lines": [
                {
                    "product_id": p.product_id,
                    "qty": qty,
                    "unit_price": p.price,
                    "name": p.name,
                    "category": p.category,
                }
                for p, qty in basket
            ],
            "register_id": register_id,
            "channel": "in_store",
            "customer_id": shopper.customer_id,
            "currency": "EUR",
            "payment_method": ctx.order_rng.choices(("card", "cash", "mobile"), (0.8, 0.1, 0.1))[0],
        }
        ctx.journal.add(ms, "pos.order_paid", "pos", payload, subject=shopper.customer_id)
        self.serve(ms)
        self.leave(ms + uniform_ms(ctx.service_rng, 2, 6), shopper)

    def leave(self, ms: int, shopper: _Shopper) -> None:
        shopper.track.move(self.ctx.zones.entrance, ms)
        shopper.track.end(ms + uniform_ms(self.ctx.service_rng, 2, 6))


def simulate_apparel_day(ctx: DayContext, config: SimConfig, day: date) -> None:
    """Shoppers only; ``config.baristas`` and ``mobile_share`` do not apply to a fashion store."""
    if not ctx.zones.browse:
        raise ValueError(f"an apparel layout needs aisle or fixture zones ({ctx.store_id})")
    fitting = next((z.id for z in ctx.floor.layout.zones if z.kind == "fitting_room"), None)
    for zone_id in config.planted.values():
        if zone_id not in ctx.zones.browse:
            raise ValueError(
                f"planted zone {zone_id!r} is not an aisle or fixture of {ctx.store_id} "
                f"(those are: {', '.join(ctx.zones.browse)})"
            )
    store = _Store(ctx, fitting, config, checkout=Checkout(config.registers))
    weekend = day.weekday() >= 5
    mean = config.weekend_visits if weekend else config.weekday_visits
    profile = config.weekend_profile if weekend else config.weekday_profile
    rng = ctx.arrival_rng
    count = max(0, round(rng.gauss(mean, sqrt(mean))))
    slots = rng.choices(range(len(profile)), profile, k=count)
    half_hour = 30 * MINUTE
    arrivals = sorted(ctx.opens + slot * half_hour + rng.randrange(half_hour) for slot in slots)
    who = ctx.visitor_rng
    for ms in arrivals:
        person = ctx.population.pick(who)
        buys = who.random() < _BUY_SHARE
        scanned = buys and person.loyalty_id is not None and who.random() < config.scan_share
        basket = ctx.menu.basket(ctx.order_rng, person, lunch=False) if buys else None
        basket = _put_back(basket, config, ctx.planted_rng)
        shopper = _Shopper(
            person=person,
            track=ctx.new_visit_track(person, "in_store"),
            customer_id=person.loyalty_id if scanned else None,
            basket=basket,
        )
        store.at(ms, store.arrive, shopper)
    store.run()
    if store.checkout.waiting:
        raise RuntimeError(
            f"{len(store.checkout.waiting)} shoppers never reached a checkout on {day}"
        )


def _put_back(basket: Basket | None, config: SimConfig, rng: random.Random) -> Basket | None:
    """Planted truth: lines from the attractive fixture and the cold zone mostly go back.

    Draws from its own generator, and only when something is planted, so an unplanted
    run is the same event for event as before planting existed.
    """
    if basket is None or not config.planted:
        return basket
    keep = {config.attractive_fixture: config.attractive_keep, config.cold_zone: config.cold_keep}
    kept = [
        (product, qty)
        for product, qty in basket
        if product.zone_id not in keep or rng.random() < keep[product.zone_id]
    ]
    return kept or None
