"""One café day as a discrete-event simulation: a door, a queue, registers and a bar.

A heap of timed callbacks drives it. Customers queue FIFO for the first free register;
paid orders queue FIFO for the barista who has been idle longest; the customer waits at
pickup until the order is ready. Because waits come from real contention rather than a
rush factor, queue lengths, fulfilment times and barista utilisation in the truth are
exactly what the events imply, which is what the ops metrics are scored on.

Zone crossings and track points are not emitted while simulating: each person's zone
stays are recorded and turned into events afterwards (see :mod:`storelens.sim.paths`).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from math import sqrt
from typing import Any

from storelens.catalogue import Product
from storelens.sim.checkout import Checkout
from storelens.sim.clock import MINUTE, SECOND, Agenda, uniform_ms
from storelens.sim.config import BaristaPlan, SimConfig
from storelens.sim.day import DayContext, Track
from storelens.sim.menu import Basket
from storelens.sim.population import Person
from storelens.sim.truth import BaristaTruth, OrderTruth

__all__ = ["simulate_cafe_day"]

_MAKE_S = {"tea": 30.0, "cold-drinks": 40.0}  # coffee is drawn from 45-75 s per cup
"""Walking the length of an empty queue; the same for all, so it cannot break FIFO order."""
_RECHECK = MINUTE  # how often a barista who must stay checks whether they may leave


@dataclass(slots=True)
class _Order:
    truth: OrderTruth
    basket: Basket
    visit: _Visit
    maker: _Barista | None = None
    done: bool = False
    """Ready; ``truth.ready`` is known earlier, when the barista plans the order."""


@dataclass(slots=True)
class _Visit:
    person: Person
    track: Track
    mobile: bool
    customer_id: str | None
    queue_enter: int = 0
    at_pickup: int | None = None
    order: _Order | None = None


@dataclass(slots=True)
class _Barista:
    plan: BaristaPlan
    rank: int
    machine: str
    truth: BaristaTruth
    segments: list[tuple[int, int]]
    """Planned (clock-in, clock-out) pairs for the day; a later start slips with a late break."""
    segment: int = -1
    on_duty: bool = False
    busy: bool = False
    away: bool = False
    off_due: bool = False
    recheck_pending: bool = False
    free_since: int = 0
    clocked_in: int = 0
    track: Track | None = None


@dataclass(slots=True)
class _Cafe:
    ctx: DayContext
    config: SimConfig
    pickup: str
    bar: str
    agenda: Agenda = field(default_factory=Agenda)
    checkout: Checkout[_Visit] = field(default_factory=lambda: Checkout(1))
    orders: deque[_Order] = field(default_factory=deque)
    baristas: list[_Barista] = field(default_factory=list)
    open_work: int = 0
    """Customers admitted (or mobile orders paid) and not yet handed their order."""
    order_count: int = 0

    # -- engine -----------------------------------------------------------------------

    def at(self, ms: int, action: Callable[[int, Any], None], arg: Any = None) -> None:
        self.agenda.at(ms, action, arg)

    def run(self) -> None:
        self.agenda.run()

    # -- customers --------------------------------------------------------------------

    def arrive(self, ms: int, visit: _Visit) -> None:
        visit.track.move(self.ctx.zones.entrance, ms)
        rng = self.ctx.service_rng
        if visit.mobile:
            self.at(ms + uniform_ms(rng, 2, 6), self.reach_pickup, visit)
        else:
            self.open_work += 1
            self.at(ms + uniform_ms(rng, 2, 6), self.join_queue, visit)

    def join_queue(self, ms: int, visit: _Visit) -> None:
        self.at(self.checkout.enter(self.ctx, visit, ms), self.serve_registers)

    def serve_registers(self, ms: int, _: Any = None) -> None:
        for paid_at, register, visit in self.checkout.serve(self.ctx, ms, (20, 90)):
            self.at(paid_at, self.pay, (visit, register))

    def pay(self, ms: int, arg: tuple[_Visit, int]) -> None:
        visit, register = arg
        self.checkout.release(register)
        self.place_order(ms, visit, f"reg-{register + 1}")
        self.serve_registers(ms)
        self.at(ms + uniform_ms(self.ctx.service_rng, 3, 8), self.reach_pickup, visit)

    def mobile_paid(self, ms: int, visit: _Visit) -> None:
        self.open_work += 1
        self.place_order(ms, visit, None)

    def place_order(self, ms: int, visit: _Visit, register: str | None) -> None:
        ctx = self.ctx
        local_hour = (ms - ctx.opens) / (60 * MINUTE) + self.config.opens.hour
        basket = ctx.menu.basket(ctx.order_rng, visit.person, lunch=11.75 <= local_hour < 14)
        self.order_count += 1
        order_id = f"{ctx.store_id}-{ctx.day:%Y%m%d}-{self.order_count:04d}"
        drinks = sum(qty for product, qty in basket if ctx.menu.is_drink(product))
        truth = OrderTruth(
            order_id=order_id,
            store_id=ctx.store_id,
            channel="mobile" if visit.mobile else "in_store",
            register_id=register,
            customer_id=visit.customer_id,
            paid=ms,
            drinks=drinks,
            items=sum(qty for _, qty in basket),
        )
        ctx.truth.orders.append(truth)
        method = "mobile" if visit.mobile else ctx.order_rng.choices(_METHODS, _METHOD_WEIGHTS)[0]
        payload = {
            "order_id": order_id,
            "lines": [_line(product, qty) for product, qty in basket],
            "register_id": register,
            "channel": truth.channel,
            "customer_id": visit.customer_id,
            "currency": "EUR",
            "payment_method": method,
        }
        ctx.journal.add(ms, "pos.order_paid", "pos", payload, subject=visit.customer_id)
        order = _Order(truth=truth, basket=basket, visit=visit)
        visit.order = order
        self.orders.append(order)
        self.dispatch(ms)

    def reach_pickup(self, ms: int, visit: _Visit) -> None:
        visit.track.move(self.pickup, ms)
        visit.at_pickup = ms
        order = visit.order
        if order is not None and order.done:
            self.at(ms + uniform_ms(self.ctx.service_rng, 2, 15), self.hand_off, order)

    def hand_off(self, ms: int, order: _Order) -> None:
        maker = order.maker
        assert maker is not None
        staff = maker if maker.on_duty else next((b for b in self.baristas if b.on_duty), maker)
        payload = {"order_id": order.truth.order_id, "staff_id": staff.plan.staff_id}
        self.ctx.journal.add(ms, "order.handed_off", "kds", payload)
        order.truth.handed_off = ms
        self.open_work -= 1
        self.leave(ms + uniform_ms(self.ctx.service_rng, 1, 4), order.visit)

    def leave(self, ms: int, visit: _Visit) -> None:
        """After pickup nobody else is involved, so the rest of the visit is laid out at once."""
        ctx, rng = self.ctx, self.ctx.service_rng
        if ctx.zones.seating and ctx.closes - ms >= 5 * MINUTE and rng.random() < ctx.seat_share:
            seat = rng.choices(ctx.zones.seating, ctx.zones.seating_weights)[0]
            visit.track.move(seat, ms)
            ms += min(uniform_ms(rng, 5 * 60, 45 * 60), ctx.closes - ms)
        visit.track.move(ctx.zones.entrance, ms)
        visit.track.end(ms + uniform_ms(rng, 2, 6))

    # -- baristas ---------------------------------------------------------------------

    def dispatch(self, ms: int) -> None:
        while self.orders:
            idle = [b for b in self.baristas if b.on_duty and not b.busy and not b.away]
            if not idle:
                return
            barista = min(idle, key=lambda b: (b.free_since, b.rank))
            self.make(ms, barista, self.orders.popleft())

    def make(self, ms: int, barista: _Barista, order: _Order) -> None:
        """Plan the whole order at once: start, one sensor event per shot, ready."""
        ctx, rng = self.ctx, self.ctx.bar_rng
        staff_id, speed = barista.plan.staff_id, barista.plan.speed
        barista.busy = True
        order.maker = barista
        started = ms + uniform_ms(rng, 1, 5)
        station = "espresso-bar" if order.truth.drinks else "pastry-case"
        payload = {"order_id": order.truth.order_id, "staff_id": staff_id, "station": station}
        ctx.journal.add(started, "order.started", "kds", payload)
        cursor = started
        for product, qty in order.basket:
            for _ in range(qty):
                cursor = self.make_item(cursor, barista, product, speed, staff_id, rng)
        ready_payload = {"order_id": order.truth.order_id, "staff_id": staff_id}
        ctx.journal.add(cursor, "order.ready", "kds", ready_payload)
        truth = order.truth
        truth.started, truth.ready, truth.barista = started, cursor, staff_id
        barista.truth.busy_ms += cursor - started
        barista.truth.drinks += truth.drinks
        barista.truth.orders += 1
        self.at(cursor, self.order_ready, order)

    def make_item(
        self,
        start: int,
        barista: _Barista,
        product: Product,
        speed: float,
        staff_id: str,
        rng: random.Random,
    ) -> int:
        if not self.ctx.menu.is_drink(product):
            return start + uniform_ms(rng, 15, 30)
        base = _MAKE_S.get(product.category) or rng.uniform(45, 75)
        end = start + round(base * speed * SECOND)
        shots = int(product.attributes.get("espresso_shots", 0) or 0)
        pulled = start + uniform_ms(rng, 1, 4)
        for shot in range(shots):  # the machine's group heads pull a cup's shots side by side
            duration = uniform_ms(rng, 22, 30)
            done = pulled + shot * uniform_ms(rng, 0.2, 1.5) + duration
            payload = {
                "machine_id": barista.machine,
                "staff_id": staff_id,
                "duration_s": duration / SECOND,
            }
            self.ctx.journal.add(done, "sensor.espresso_shot", barista.machine, payload)
            end = max(end, done + SECOND)
        return end

    def order_ready(self, ms: int, order: _Order) -> None:
        order.done = True
        barista = order.maker
        assert barista is not None
        barista.busy = False
        barista.free_since = ms
        visit = order.visit
        if visit.at_pickup is not None:
            self.at(ms + uniform_ms(self.ctx.service_rng, 2, 15), self.hand_off, order)
        if barista.off_due:
            self.try_clock_out(ms, barista)
        self.dispatch(ms)

    def clock_in(self, ms: int, barista: _Barista) -> None:
        ctx = self.ctx
        barista.segment += 1
        barista.on_duty, barista.free_since, barista.clocked_in = True, ms, ms
        staff = {"staff_id": barista.plan.staff_id, "role": "barista"}
        ctx.journal.add(ms, "staff.clock_in", "pos", staff)
        barista.track = ctx.new_track(staff=True)
        barista.track.move(self.bar, ms)
        planned_end = barista.segments[barista.segment][1]
        self.at(max(planned_end, ms), self.segment_due, barista)
        window = (ms + 20 * MINUTE, planned_end - 30 * MINUTE)
        if ctx.zones.seating and window[0] < window[1]:
            for _ in range(self.config.table_rounds):
                self.at(ctx.staff_rng.randint(*window), self.clear_tables, barista)
        self.dispatch(ms)

    def segment_due(self, ms: int, barista: _Barista) -> None:
        barista.off_due = True
        if not barista.busy and not barista.away:
            self.try_clock_out(ms, barista)

    def try_clock_out(self, ms: int, barista: _Barista) -> None:
        """Leave unless that would leave the bar unattended with orders still open."""
        cover = any(b.on_duty and not b.off_due for b in self.baristas if b is not barista)
        if self.open_work > 0 and not cover:
            if not barista.recheck_pending:
                barista.recheck_pending = True
                self.at(ms + _RECHECK, self.recheck, barista)
            return
        staff = {"staff_id": barista.plan.staff_id, "role": "barista"}
        self.ctx.journal.add(ms, "staff.clock_out", "pos", staff)
        assert barista.track is not None
        barista.track.end(ms)
        barista.truth.shifts.append((barista.clocked_in, ms))
        barista.on_duty = barista.off_due = False
        barista.track = None
        following = barista.segment + 1
        if following < len(barista.segments):
            planned = barista.segments[following][0]
            self.at(max(planned, ms + barista.plan.break_minutes * MINUTE), self.clock_in, barista)

    def recheck(self, ms: int, barista: _Barista) -> None:
        barista.recheck_pending = False
        if barista.on_duty and barista.off_due and not barista.busy and not barista.away:
            self.try_clock_out(ms, barista)

    def clear_tables(self, ms: int, barista: _Barista) -> None:
        """A walk out to the tables and back, on the barista's own (staff) track."""
        if not barista.on_duty or barista.off_due:
            return
        planned_end = barista.segments[barista.segment][1]
        if barista.busy or barista.away or self.orders:  # orders first; try again later
            if ms + 18 * MINUTE < planned_end:
                self.at(ms + 3 * MINUTE, self.clear_tables, barista)
            return
        if ms + 15 * MINUTE > planned_end:
            return
        ctx, rng = self.ctx, self.ctx.staff_rng
        track = barista.track
        assert track is not None
        seating = rng.choices(ctx.zones.seating, ctx.zones.seating_weights)[0]
        track.move(ctx.zones.queue, ms)
        ms += uniform_ms(rng, 3, 6)
        track.move(seating, ms)
        ms += uniform_ms(rng, 60, 180)
        track.move(ctx.zones.queue, ms)
        ms += uniform_ms(rng, 3, 6)
        track.move(self.bar, ms)
        barista.away = True
        self.at(ms, self.back_at_bar, barista)

    def back_at_bar(self, ms: int, barista: _Barista) -> None:
        barista.away = False
        barista.free_since = ms
        if barista.off_due:
            self.try_clock_out(ms, barista)
        self.dispatch(ms)


_METHODS = ("card", "cash", "mobile")
_METHOD_WEIGHTS = (0.7, 0.2, 0.1)


def _line(product: Product, qty: int) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "qty": qty,
        "unit_price": product.price,
        "name": product.name,
        "category": product.category,
    }


def _baristas(ctx: DayContext, config: SimConfig) -> list[_Barista]:
    baristas = []
    for rank, plan in enumerate(config.baristas):
        start, pause = ctx.local(plan.start), ctx.local(plan.break_start)
        resume, end = pause + plan.break_minutes * MINUTE, ctx.local(plan.end)
        segments = [(start, pause), (resume, end)] if resume < end else [(start, end)]
        truth = ctx.truth.baristas.setdefault(plan.staff_id, BaristaTruth(plan.staff_id))
        machine = f"espresso-{rank % 2 + 1}"
        baristas.append(_Barista(plan, rank, machine, truth, segments))
    return baristas


def simulate_cafe_day(ctx: DayContext, config: SimConfig, day: date) -> None:
    """Simulate one day into ``ctx``'s journal and truth; tracks are emitted by the caller."""
    pickup, bar = ctx.zones.pickup, ctx.zones.bar
    if pickup is None or bar is None:
        raise ValueError(f"a café layout needs a pickup and a staff_only zone ({ctx.store_id})")
    cafe = _Cafe(ctx, config, pickup, bar, checkout=Checkout(config.registers))
    cafe.baristas = _baristas(ctx, config)
    for barista in cafe.baristas:
        cafe.at(barista.segments[0][0], cafe.clock_in, barista)

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
        mobile = who.random() < config.mobile_share
        scanned = person.loyalty_id is not None and (mobile or who.random() < config.scan_share)
        visit = _Visit(
            person=person,
            track=ctx.new_visit_track(person, "mobile" if mobile else "in_store"),
            mobile=mobile,
            customer_id=person.loyalty_id if scanned else None,
        )
        if mobile:
            cafe.at(max(ms - uniform_ms(who, 120, 600), ctx.opens), cafe.mobile_paid, visit)
        cafe.at(ms, cafe.arrive, visit)
    cafe.run()
    for barista in cafe.baristas:
        if barista.on_duty:
            raise RuntimeError(f"{barista.plan.staff_id} never clocked out")  # a bug, not input
    unfinished = [o.truth.order_id for o in cafe.orders]
    if unfinished or cafe.open_work:
        raise RuntimeError(f"{len(unfinished)} orders left unmade at the end of {day}")
