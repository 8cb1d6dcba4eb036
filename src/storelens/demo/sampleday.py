"""A small, seeded day of café events for the demo, tests and ingest benchmarks.

Not a simulator: there are no real queues or barista capacities, only a time-of-day
rush factor that stretches waits. What matters is that the day looks plausible on the
dashboards and that a seed always gives byte-identical events, so tests and benchmarks
can compare runs.
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from storelens.catalogue import DRINK_CATEGORIES, Product, load_catalogue
from storelens.core.events import CONSENT_PURPOSES, Event, event_batch_adapter

__all__ = [
    "ZONE_LAYOUT",
    "generate_day",
    "load_customers",
    "write_jsonl",
]


# Mirrors samples/layouts/cafe.toml (metres, origin top left, y down, door on the left wall);
# seating has no camera there, so its crossings carry no camera and it gets no track points.
ZONE_LAYOUT: dict[str, tuple[str | None, tuple[float, float, float, float]]] = {
    "entrance": ("cam-entrance", (0.0, 3.0, 1.5, 6.0)),
    "queue": ("cam-counter", (2.0, 2.2, 5.5, 3.6)),
    "counter": ("cam-counter", (5.5, 2.2, 9.0, 3.4)),
    "pickup": ("cam-counter", (9.5, 2.2, 12.5, 3.4)),
    "seating": (None, (3.0, 4.5, 14.0, 9.0)),
    "window-seats": ("cam-entrance", (0.0, 6.3, 2.5, 9.0)),
}
"""Customer zone -> (camera, (x0, y0, x1, y1)). The staff-only ``bar`` never sees a visitor."""

# Relative arrival intensity per half hour from 07:00; none after 18:30 so visits end by 19:00.
_ARRIVAL_PROFILE: tuple[float, ...] = (
    *(3, 7, 9, 9, 7, 4),  # 07:00-10:00, the morning rush
    *(3.5, 3.5, 3.5, 4.5),  # 10:00-12:00
    *(7, 7.5, 6),  # 12:00-13:30, lunch
    *(3.5, 2.5, 2.5, 3, 3, 3, 3, 3, 2.5, 2),  # 13:30-18:30, quiet afternoon
)
_BARISTAS = ("barista-ana", "barista-ben", "barista-chloe")
_SEARCHES = ("oat milk", "decaf", "vegan", "beans", "opening hours", "matcha")


def _read_text(path: Path | None, name: str) -> str:
    if path is not None:
        return path.read_text(encoding="utf-8")
    return files("storelens.samples").joinpath(name).read_text(encoding="utf-8")


def load_customers(path: Path | None = None) -> list[dict[str, str]]:
    """Read the CRM export as raw strings: cleaning them is identity resolution's job."""
    return list(csv.DictReader(io.StringIO(_read_text(path, "customers.csv"))))


class _Day:
    """Collects raw events as (seconds after opening, envelope) and turns them into a sorted day."""

    def __init__(self, rng: random.Random, store_id: str, open_utc: datetime, close: float) -> None:
        self.rng, self.store_id, self.open_utc, self.close = rng, store_id, open_utc, close
        self.catalogue = load_catalogue()
        self.by_category: dict[str, list[Product]] = {}
        for product in self.catalogue:
            self.by_category.setdefault(product.category, []).append(product)
        self.crm = load_customers()
        self.loyalty_ids = sorted({row["loyalty_id"] for row in self.crm if row["loyalty_id"]})
        self.raw: list[tuple[float, dict[str, Any]]] = []

    def add(
        self,
        at: float,
        type_: str,
        source: str,
        payload: dict[str, Any],
        subject: str | None = None,
        in_store: bool = True,
    ) -> None:
        envelope = {"type": type_, "source": source, "subject": subject, "payload": payload}
        envelope["store_id"] = self.store_id if in_store else None
        self.raw.append((round(at, 3), envelope))

    def cross(self, zone: str, track: str, enter: float, leave: float, points: int = 1) -> None:
        """A track entering and leaving a zone, with a few sampled positions inside it."""
        camera, (x0, y0, x1, y1) = ZONE_LAYOUT[zone]
        crossing = {"zone_id": zone, "track_id": track, "camera_id": camera}
        self.add(enter, "vision.zone_enter", "vision", crossing)
        self.add(leave, "vision.zone_exit", "vision", dict(crossing))
        for k in range(points if camera else 0):
            point = {
                "camera_id": camera,
                "track_id": track,
                "x": round(self.rng.uniform(x0, x1), 2),
                "y": round(self.rng.uniform(y0, y1), 2),
                "confidence": round(self.rng.uniform(0.6, 0.99), 2),
            }
            self.add(enter + (leave - enter) * (k + 0.5) / points, "vision.track", "vision", point)

    def pick_products(self, lunch: bool) -> list[Product]:
        """One to three products: usually a drink first, food more likely around lunch."""
        rng = self.rng

        def pick(categories: tuple[str, ...], weights: tuple[float, ...]) -> Product:
            products = self.by_category[rng.choices(categories, weights)[0]]
            # Catalogue order is popularity order: the first rows of a category sell most.
            return rng.choices(products, [1 / (rank + 1) ** 0.8 for rank in range(len(products))])[
                0
            ]

        drinks, foods = ("coffee", "tea", "cold-drinks"), ("bakery", "food")
        picked = [pick(drinks, (7, 2, 1.5)) if rng.random() < 0.9 else pick(foods, (3, 1))]
        if rng.random() < (0.55 if lunch else 0.4):
            picked.append(pick(foods, (1, 2) if lunch else (3, 1)))
        if rng.random() < 0.12:
            picked.append(pick((*drinks, "retail-beans"), (6, 2, 1.5, 0.4)))
        return list({p.product_id: p for p in picked}.values())

    def prepare(
        self, order_id: str, items: list[tuple[Product, int]], paid: float, rush: float
    ) -> float:
        """The bar side of an order: started, one sensor event per espresso shot, ready."""
        rng = self.rng
        barista = rng.choice(_BARISTAS)
        machine = (
            "espresso-1" if barista == "barista-ana" else rng.choice(("espresso-1", "espresso-2"))
        )
        started = paid + rng.uniform(10, 40) + rush * rng.uniform(30, 150)
        drinks = [(p, qty) for p, qty in items if p.category in DRINK_CATEGORIES]
        station = "espresso-bar" if drinks else "pastry-case"
        started_payload = {"order_id": order_id, "staff_id": barista, "station": station}
        self.add(started, "order.started", "kds", started_payload)
        shot_end = started
        for k in range(sum(int(p.attributes.get("espresso_shots", 0)) * qty for p, qty in drinks)):
            duration = round(min(max(rng.gauss(27, 2.5), 18.0), 40.0), 1)
            # Two group heads: shots run in pairs, the second a moment after the first.
            shot_end = started + 15 + (k // 2) * 35 + duration + (k % 2) * rng.uniform(0.2, 2)
            shot = {"machine_id": machine, "staff_id": barista, "duration_s": duration}
            self.add(shot_end, "sensor.espresso_shot", machine, shot)
        prep = 20 + 30 * len(items) + rush * rng.uniform(20, 90)
        ready = max(started + prep, shot_end + rng.uniform(15, 40))
        self.add(ready, "order.ready", "kds", {"order_id": order_id, "staff_id": barista})
        return ready

    def visit(self, order_id: str, arrive: float, rush: float) -> None:
        """One customer: walk in, queue and pay (or pick up a mobile order), maybe sit, leave."""
        rng = self.rng
        track = f"t-{rng.getrandbits(40):010x}"
        mobile = rng.random() < 0.15
        loyal = rng.random() < (0.6 if mobile else 0.25)
        customer = rng.choice(self.loyalty_ids) if loyal and self.loyalty_ids else None
        products = self.pick_products(lunch=17_100 <= arrive <= 23_400)  # 11:45-13:30
        items = [(p, 1 if rng.random() < 0.9 else 2) for p in products]

        at = arrive + rng.uniform(3, 8)
        self.cross("entrance", track, arrive, at)
        if mobile:  # ordered in the app on the way: skips queue and counter
            paid = max(arrive - rng.uniform(60, 300), 1.0)
            register, method, channel = None, "mobile", "mobile"
        else:
            queued = at + rng.uniform(10, 60) + rush * rng.uniform(30, 240)
            self.cross("queue", track, at, queued)
            paid = queued + rng.uniform(25, 70)
            leave_counter = paid + rng.uniform(3, 10)
            self.cross("counter", track, queued, leave_counter)
            register = rng.choice(("reg-1", "reg-2"))
            method = rng.choices(("card", "cash", "mobile"), (7, 2, 1))[0]
            channel = "in_store"
            at = leave_counter + rng.uniform(1, 4)
        lines = [
            {"product_id": p.product_id, "qty": qty, "unit_price": p.price, "name": p.name}
            for p, qty in items
        ]
        order = {"order_id": order_id, "lines": lines, "register_id": register, "channel": channel}
        order |= {"customer_id": customer, "payment_method": method}
        self.add(paid, "pos.order_paid", "pos", order, subject=customer)

        ready = self.prepare(order_id, items, paid, rush)
        handed = max(ready, at) + rng.uniform(3, 40)
        handoff = {"order_id": order_id, "staff_id": rng.choice(_BARISTAS)}
        self.add(handed, "order.handed_off", "kds", handoff)
        leave_pickup = handed + rng.uniform(2, 8)
        self.cross("pickup", track, at, leave_pickup)

        has_food = any(p.category in ("food", "bakery") for p in products)
        stay = (0.6 if has_food else 0.3) * (1 - 0.5 * rush)
        dwell = rng.uniform(300, 2400) + (900 if has_food else 0)
        if rng.random() < stay and leave_pickup + 600 < self.close:
            seat = "seating" if rng.random() < 0.75 else "window-seats"
            sit = leave_pickup + rng.uniform(5, 15)
            self.cross(seat, track, sit, min(sit + dwell, self.close - 30), points=2)

    def events(self, id_rng: random.Random) -> list[Event]:
        """Sort by time (ties keep insertion order) and give ids in that order: reproducible."""
        self.raw.sort(key=lambda item: item[0])
        docs = [
            {
                **envelope,
                "ts": self.open_utc + timedelta(seconds=at),
                "id": uuid.UUID(int=id_rng.getrandbits(128), version=4),
            }
            for at, envelope in self.raw
        ]
        return event_batch_adapter.validate_python(docs)


def generate_day(
    store_id: str = "cafe-01",
    day: date = date(2026, 11, 2),
    seed: int = 7,
    customers: int | None = None,
    tz: str = "Europe/Berlin",
) -> list[Event]:
    """A café's day, 07:00-19:00 local time: visits, orders, shots, web, CRM and consent.

    ``customers`` is the number of store visits (default: 340-460, drawn from the seed).
    Each visit crosses the entrance once, so entrance entries count footfall. Ids come
    from a generator seeded with store, day and seed, so two demo stores loaded with the
    same seed do not collide on the ingest idempotency key.
    """
    rng = random.Random(seed)  # noqa: S311  # sample data, not secrets
    zone = ZoneInfo(tz)
    open_utc = datetime.combine(day, time(7), tzinfo=zone).astimezone(UTC)
    close = (
        datetime.combine(day, time(19), tzinfo=zone).astimezone(UTC) - open_utc
    ).total_seconds()
    builder = _Day(rng, store_id, open_utc, close)
    loyalty_ids = builder.loyalty_ids

    for i, row in enumerate(builder.crm):  # a CRM sync at opening
        record: dict[str, Any] = {k: (v or None) for k, v in row.items()}
        record["source_system"] = "crm"
        subject = row["loyalty_id"] or None
        builder.add(i * 0.5, "customer.upserted", "crm", record, subject, in_store=False)

    visits = customers if customers is not None else rng.randint(340, 460)
    slots = rng.choices(range(len(_ARRIVAL_PROFILE)), _ARRIVAL_PROFILE, k=visits)
    arrivals = sorted((slot, (slot + rng.random()) * 1800) for slot in slots)
    for n, (slot, arrive) in enumerate(arrivals, start=1):
        rush = _ARRIVAL_PROFILE[slot] / max(_ARRIVAL_PROFILE)
        builder.visit(f"{store_id}-{day:%Y%m%d}-{n:04d}", arrive, rush)

    actions = ("page_view", "product_view", "search", "add_to_cart", "checkout")
    for _ in range(5):
        session = f"w-{rng.getrandbits(48):012x}"
        who = rng.choice(loyalty_ids) if loyalty_ids and rng.random() < 0.4 else None
        at = rng.uniform(600, close - 3600)
        for step in range(rng.randint(3, 6)):
            action = "page_view" if step == 0 else rng.choices(actions, (3, 4, 1.5, 1.5, 0.5))[0]
            product = rng.choice(builder.catalogue)
            hit: dict[str, Any] = {"session_id": session, "action": action, "page": "/"}
            if action in ("product_view", "add_to_cart"):
                hit |= {"product_id": product.product_id, "page": f"/menu/{product.product_id}"}
            elif action == "search":
                hit |= {"query": rng.choice(_SEARCHES), "page": "/search"}
            elif action == "checkout":
                hit["page"] = "/checkout"
            builder.add(at, "web.event", "web", hit, subject=who, in_store=False)
            at += rng.uniform(5, 90)

    for _ in range(rng.randint(3, 6)):
        consent = {
            "purpose": rng.choice(CONSENT_PURPOSES),
            "granted": rng.random() < 0.7,
            "channel": rng.choice(("app", "web", "in_store")),
            "policy_version": "2026-09",
        }
        source = "crm" if consent["channel"] == "in_store" else "web"
        at = rng.uniform(60, close - 60)
        builder.add(at, "consent.changed", source, consent, rng.choice(loyalty_ids), in_store=False)

    id_rng = random.Random(f"{store_id}|{day.isoformat()}|{seed}")  # noqa: S311
    return builder.events(id_rng)


def write_jsonl(events: Iterable[Event], path: Path) -> int:
    """Write one event per line, the format ``storelens ingest`` and the benchmarks read."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for event in events:
            out.write(event.model_dump_json() + "\n")
            count += 1
    return count
