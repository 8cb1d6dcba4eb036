"""An independent crowd for the vision benchmark: the café floor walked by JuPedSim.

JuPedSim (``pip install jupedsim``, the ``bench`` extra) is a pedestrian-dynamics
simulator from Forschungszentrum Jülich; its collision-free speed model moves people
around each other and the walls. We only tell each customer where to go next and how
long to stay, so the walking, the crowding at the pickup and the queue's shape come
from a model that is not ours, and the vision pipeline cannot be tuned to our own
walker. Customers arrive at random (Poisson) from the street, queue in a serpentine lane
along the counter shoulder to shoulder (0.5 m apart), order at one of two tills, wait at
the pickup, then sit 2 to 10 minutes, browse a shelf still for 30 to 90 s, or leave. Two
baristas walk behind the bar (scripted, since the bar is off the customers' floor).

Writes what ``storelens sim run`` writes for scoring: ``positions.parquet`` (every
person at ``fps``) and ``truth.json`` (visits with their door crossings). A door time is
when the person walked through the doorway itself (the opening in the street wall,
x = 0): the count line 0.8 m inside is not where people leave, since a customer at a
window seat sits beyond its extension and one leaving from the shelf cuts past its end.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from storelens.core.layout import StoreLayout, load_layout
from storelens.sim.positions import POSITION_SCHEMA

__all__ = ["simulate_cafe"]

DT = 0.05
WALL_X = 0.0  # the street wall; its only opening is the doorway (y 3 to 6)
STREET = (-2.3, 4.5)
TILLS = ((6.3, 2.7), (8.1, 2.7))
QUEUE = [(5.0 - 0.5 * k, 2.9) for k in range(6)] + [(2.2 + 0.5 * k, 3.45) for k in range(7)]
PICKUP = [(9.9 + 0.55 * i, 2.55 + 0.5 * j) for i in range(5) for j in range(2)]
SEATS = [(3.9 + 1.2 * i, 5.3 + 1.0 * j) for i in range(9) for j in range(4)]
SEATS += [(0.6 + 0.8 * i, 7.0 + 0.9 * j) for i in range(2) for j in range(2)]
SHELVES = [(1.9 + 0.6 * i, 0.8) for i in range(6)] + [(13.4, 3.8 + 0.0 * i) for i in range(1)]


@dataclass
class _Customer:
    track_id: str
    plan: str  # "sit", "browse" or "leave" after the pickup
    stage: str = "queue"
    spot: tuple[float, float] | None = None
    until: float | None = None
    door_in: float | None = None
    door_out: float | None = None
    born: float = 0.0
    last_x: float = STREET[0]
    held: list[tuple[float, float]] = field(default_factory=list)


def _geometry() -> object:
    from shapely.geometry import box

    floor = box(0.0, 0.0, 14.0, 9.0).union(box(-2.6, 3.0, 0.0, 6.0))
    return floor.difference(box(5.5, 0.0, 14.0, 2.2))


def simulate_cafe(
    out: Path,
    layout_path: Path,
    start: datetime,
    minutes: float,
    arrivals_per_min: float,
    seed: int,
    *,
    fps: float = 5.0,
) -> None:
    """Simulate ``minutes`` from ``start`` and write positions.parquet and truth.json."""
    import jupedsim as jps

    layout = load_layout(layout_path)
    rng = np.random.default_rng(seed)
    sim = jps.Simulation(model=jps.CollisionFreeSpeedModel(), geometry=_geometry(), dt=DT)
    stage = sim.add_direct_steering_stage()
    journey = sim.add_journey(jps.JourneyDescription([stage]))
    every = max(1, round(1 / (fps * DT)))
    steps = round(minutes * 60 / DT)
    arrivals = np.cumsum(rng.exponential(60.0 / arrivals_per_min, size=10_000))
    people: dict[int, _Customer] = {}
    queue: list[int] = []
    tills: list[int | None] = [None, None]
    taken: set[tuple[float, float]] = set()
    rows: list[tuple[int, str, float, float, bool]] = []
    visits: list[dict[str, object]] = []
    base_ms = round(start.timestamp() * 1000)
    next_arrival, count = 0, 0
    for step in range(steps):
        now = step * DT
        while arrivals[next_arrival] <= now:
            next_arrival += 1
            spot = (STREET[0], 3.6 + 1.8 * rng.random())
            if any(math.dist(spot, sim.agent(a).position) < 0.6 for a in people):
                continue  # the street is crowded: this one walks on by
            count += 1
            plan = rng.choice(["sit", "browse", "leave"], p=[0.5, 0.25, 0.25])
            agent = sim.add_agent(
                jps.CollisionFreeSpeedModelAgentParameters(
                    position=spot, journey_id=journey, stage_id=stage,
                    desired_speed=float(rng.uniform(1.0, 1.4)), radius=0.2,
                )
            )  # fmt: skip
            people[agent] = _Customer(f"j-{seed}-{count:04d}", str(plan), born=now)
            queue.append(agent)
        _steer(sim, people, queue, tills, taken, now, rng)
        sim.iterate()
        for agent, person in list(people.items()):
            x, _ = sim.agent(agent).position
            if person.last_x < WALL_X <= x and person.door_in is None:
                person.door_in = now
            if person.last_x >= WALL_X > x:
                person.door_out = now
            person.last_x = x
            if person.stage == "gone" and x < STREET[0] + 0.3:
                sim.mark_agent_for_removal(agent)
                del people[agent]
                visits.append(_visit(person, now, start))
        if step % every == 0:
            ms = base_ms + round(now * 1000)
            rows += [(ms, p.track_id, *sim.agent(a).position, False) for a, p in people.items()]
            rows += [(ms, f"s-{seed}-{k}", *_barista(k, now), True) for k in range(2)]
    for person in people.values():  # still inside at the end: no exit yet
        visits.append(_visit(person, None, start))
    _write(out, layout, rows, visits, start, seed)


def _steer(
    sim: object,
    people: dict[int, _Customer],
    queue: list[int],
    tills: list[int | None],
    taken: set[tuple[float, float]],
    now: float,
    rng: np.random.Generator,
) -> None:
    """Each customer's next target: the queue slot, a free till, a pickup spot, a seat or
    a shelf, then the street."""
    for k, till in enumerate(tills):
        if till is None and queue and _near(sim, queue[0], QUEUE[0], 0.5):
            head = queue.pop(0)
            tills[k] = head
            people[head].stage, people[head].spot = "order", TILLS[k]
            people[head].until = None
    for i, agent in enumerate(queue):
        _go(sim, agent, QUEUE[min(i, len(QUEUE) - 1)])
    for agent, person in people.items():
        if person.stage == "queue":
            continue
        if person.stage == "gone":
            _go(sim, agent, STREET)
            continue
        assert person.spot is not None
        _go(sim, agent, person.spot)
        if person.until is None and _near(sim, agent, person.spot, 0.3):
            person.until = now + _stay(person.stage, rng)
        if person.until is not None and now >= person.until:
            _next(agent, person, tills, taken, rng)


def _stay(stage: str, rng: np.random.Generator) -> float:
    low, high = {"order": (10, 24), "pickup": (20, 90), "sit": (120, 600), "browse": (30, 90)}[
        stage
    ]
    return float(rng.uniform(low, high))


def _next(
    agent: int,
    person: _Customer,
    tills: list[int | None],
    taken: set[tuple[float, float]],
    rng: np.random.Generator,
) -> None:
    if person.stage == "order":
        tills[tills.index(agent)] = None
        person.stage, person.spot = "pickup", _free(PICKUP, taken, rng)
    elif person.stage == "pickup":
        taken.discard(person.spot)  # type: ignore[arg-type]
        if person.plan == "leave":
            person.stage, person.spot = "gone", STREET
        else:
            places = SEATS if person.plan == "sit" else SHELVES
            person.stage, person.spot = person.plan, _free(places, taken, rng)
    else:
        taken.discard(person.spot)  # type: ignore[arg-type]
        person.stage, person.spot = "gone", STREET
    person.until = None


def _free(
    spots: list[tuple[float, float]], taken: set[tuple[float, float]], rng: np.random.Generator
) -> tuple[float, float]:
    free = [s for s in spots if s not in taken] or spots
    spot = free[int(rng.integers(len(free)))]
    taken.add(spot)
    return spot


def _go(sim: object, agent: int, target: tuple[float, float]) -> None:
    sim.agent(agent).target = target  # type: ignore[attr-defined]


def _near(sim: object, agent: int, spot: tuple[float, float], within: float) -> bool:
    return math.dist(sim.agent(agent).position, spot) <= within  # type: ignore[attr-defined]


def _barista(k: int, now: float) -> tuple[float, float]:
    """Two baristas pacing the bar between the machine and the pickup, out of phase."""
    phase = (now / 40.0 + k / 2) % 1.0
    along = 2 * phase if phase < 0.5 else 2 * (1 - phase)
    return 6.2 + 6.5 * along, 1.2 + 0.4 * k


def _visit(person: _Customer, gone: float | None, start: datetime) -> dict[str, object]:
    def iso(seconds: float | None) -> str | None:
        if seconds is None:
            return None
        return (start + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    end = gone if gone is not None else None
    return {
        "track_id": person.track_id,
        "customer_id": None,
        "channel": "in_store",
        "enter": iso(person.born),
        "exit": iso(end) if end is not None else iso(1e7),
        "dwell_s": None if end is None else round(end - person.born, 3),
        "door_in": iso(person.door_in),
        "door_out": iso(person.door_out),  # out of the door, maybe still in the street
        "plan": person.plan,
    }


def _write(
    out: Path,
    layout: StoreLayout,
    rows: list[tuple[int, str, float, float, bool]],
    visits: list[dict[str, object]],
    start: datetime,
    seed: int,
) -> None:
    from storelens.vision.zones import ZoneMap

    out.mkdir(parents=True, exist_ok=True)
    xy = np.array([(r[2], r[3]) for r in rows], dtype=np.float64).reshape(-1, 2)
    zone_map = ZoneMap(layout.zones)
    inside = np.vstack([zone_map.inside(xy[i : i + 50_000]) for i in range(0, len(xy), 50_000)])
    labels = [layout.zones[int(np.argmax(row))].id if row.any() else None for row in inside]
    table = pa.Table.from_pydict(
        {
            "ts": pa.array([r[0] for r in rows], pa.int64()).cast(pa.timestamp("ms", "UTC")),
            "track_id": [r[1] for r in rows],
            "x": xy[:, 0],
            "y": xy[:, 1],
            "zone_id": labels,
            "is_staff": [r[4] for r in rows],
        },
        schema=POSITION_SCHEMA,
    )
    pq.write_table(table, out / "positions.parquet")
    record = {
        "store_id": layout.store_id,
        "layout": "cafe.toml",
        "seed": seed,
        "crowd": "jupedsim",
        "start": start.astimezone(UTC).isoformat(),
        "visits": visits,
    }
    (out / "truth.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
