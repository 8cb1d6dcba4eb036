"""What every simulated day shares: its clock, random streams, tracks and the event journal.

Each concern (arrival times, who visits, baskets, service times, the bar, staff walks,
track ids, event ids) draws from its own generator, seeded from the run's seed, the
store, the concern and the date. Adding a feature to one concern, or simulating more
days, then leaves every other stream, and every earlier day, unchanged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, time
from zoneinfo import ZoneInfo

from storelens.core.layout import StoreLayout
from storelens.sim.clock import local_ms
from storelens.sim.heat import DayHeat
from storelens.sim.journal import DayJournal
from storelens.sim.menu import Menu
from storelens.sim.paths import FloorPlan, Stay
from storelens.sim.population import Person, Population
from storelens.sim.truth import Truth, VisitTruth

__all__ = ["DayContext", "Track", "ZoneRoles", "stream"]


def stream(seed: int, store_id: str, concern: str, day: date | None = None) -> random.Random:
    """A generator for one concern; string seeds hash with SHA-512, stable across Pythons."""
    when = day.isoformat() if day else "run"
    return random.Random(f"{seed}|{store_id}|{concern}|{when}")  # noqa: S311  # not secrets


@dataclass(slots=True)
class Track:
    """One camera track: the zones it passed through, closed stay by stay."""

    track_id: str
    staff: bool
    stays: list[Stay] = field(default_factory=list)
    zone: str | None = None
    since: int = 0

    def move(self, zone_id: str, ms: int) -> None:
        """Leave the current zone and enter the next at the same instant."""
        if self.zone is not None:
            if ms < self.since:
                raise ValueError(f"{self.track_id} would leave {self.zone} before entering it")
            self.stays.append(Stay(self.zone, self.since, ms))
        self.zone, self.since = zone_id, ms

    def end(self, ms: int) -> None:
        """Leave the store (or, for staff, the camera's view) from the current zone."""
        if self.zone is None or ms < self.since:
            raise ValueError(f"{self.track_id} cannot end at {ms}")
        self.stays.append(Stay(self.zone, self.since, ms))
        self.zone = None


@dataclass(frozen=True, slots=True)
class ZoneRoles:
    """Which zone of the layout plays which part; the first zone of each kind is used."""

    entrance: str
    queue: str
    counter: str
    pickup: str | None
    bar: str | None
    seating: tuple[str, ...]
    seating_weights: tuple[float, ...]
    browse: tuple[str, ...]

    @classmethod
    def of(cls, layout: StoreLayout) -> ZoneRoles:
        def first(*kinds: str) -> str | None:
            return next((z.id for z in layout.zones if z.kind in kinds), None)

        entrance, queue = first("entrance"), first("queue")
        counter = first("counter", "checkout") if layout.kind == "cafe" else first("checkout")
        if entrance is None or queue is None or counter is None:
            raise ValueError(
                f"layout {layout.store_id!r} needs an entrance, a queue and a "
                f"{'counter' if layout.kind == 'cafe' else 'checkout'} zone to be simulated"
            )
        seats = layout.zones_of_kind("seating")
        return cls(
            entrance=entrance,
            queue=queue,
            counter=counter,
            pickup=first("pickup"),
            bar=first("staff_only"),
            seating=tuple(z.id for z in seats),
            seating_weights=tuple(z.area_m2 for z in seats),
            browse=tuple(z.id for z in layout.zones if z.kind in ("aisle", "fixture")),
        )


@dataclass(slots=True)
class DayContext:
    """One store day: its opening hours in UTC milliseconds and everything that records it."""

    seed: int
    store_id: str
    day: date
    tz: ZoneInfo
    opens: int
    closes: int
    journal: DayJournal
    truth: Truth
    menu: Menu
    population: Population
    floor: FloorPlan
    zones: ZoneRoles
    seat_share: float
    used_track_ids: set[str]
    tracks: list[Track] = field(default_factory=list)
    visits: list[VisitTruth] = field(default_factory=list)
    heat: DayHeat | None = None
    """Collects ``vision.heatmap`` person-seconds from the sampled positions, when asked."""
    arrival_rng: random.Random = field(init=False)
    visitor_rng: random.Random = field(init=False)
    order_rng: random.Random = field(init=False)
    service_rng: random.Random = field(init=False)
    bar_rng: random.Random = field(init=False)
    staff_rng: random.Random = field(init=False)
    track_rng: random.Random = field(init=False)
    planted_rng: random.Random = field(init=False)
    """Only planted insights truth draws from it, so planting leaves other draws alone."""

    def __post_init__(self) -> None:
        for concern in (
            "arrival",
            "visitor",
            "order",
            "service",
            "bar",
            "staff",
            "track",
            "planted",
        ):
            setattr(self, f"{concern}_rng", stream(self.seed, self.store_id, concern, self.day))

    def local(self, at: time) -> int:
        return local_ms(self.day, at, self.tz)

    def new_track(self, *, staff: bool) -> Track:
        while True:  # 40 random bits; redraw the rare repeat so ids stay unique per run
            track_id = f"t-{self.track_rng.getrandbits(40):010x}"
            if track_id not in self.used_track_ids:
                break
        self.used_track_ids.add(track_id)
        track = Track(track_id, staff)
        self.tracks.append(track)
        if staff:
            self.truth.staff_tracks.append(track_id)
        return track

    def new_visit_track(self, person: Person, channel: str) -> Track:
        track = self.new_track(staff=False)
        self.visits.append(VisitTruth(track.track_id, person.loyalty_id, channel, track.stays))
        return track

    def emit_tracks(self, step_ms: int) -> None:
        """Zone crossings and sampled positions for every track of the day, from its stays."""
        journal, floor = self.journal, self.floor
        for track in self.tracks:
            if track.zone is not None:
                raise RuntimeError(f"track {track.track_id} never left {track.zone}")
            track_id = track.track_id
            # Stay by stay, so at each zone change the exit is emitted (and sorts) first.
            for stay in track.stays:
                crossing = {
                    "zone_id": stay.zone_id,
                    "track_id": track_id,
                    "camera_id": floor.camera_for(stay.zone_id),
                }
                journal.add(stay.enter, "vision.zone_enter", "vision", crossing)
                journal.add(stay.exit, "vision.zone_exit", "vision", dict(crossing))
            samples = list(floor.sample(track_id, track.stays, step_ms))
            cameras = floor.track_cameras([(x, y) for _, x, y, _ in samples])
            for (ms, x, y, _), camera in zip(samples, cameras, strict=True):
                if camera is not None:  # a spot no camera sees yields no track point
                    point = {"camera_id": camera, "track_id": track_id, "x": x, "y": y}
                    journal.add(ms, "vision.track", "vision", point)
                    if self.heat is not None:
                        self.heat.add(ms, x, y)
        if self.heat is not None:
            self.heat.emit(journal)
        for visit in self.visits:
            visit.door_in, visit.door_out = floor.door_crossings(visit.stays)
        self.visits.sort(key=lambda visit: visit.stays[0].enter)
        self.truth.visits.extend(self.visits)
