"""The vision chain on short hand-made scenes: a walk through the door gives one "in", zone
visits, occupancy and heat equal to person-seconds; stitching repairs an id switch; two
cameras count one shopper once; every event validates against the envelope."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
import supervision as sv

from storelens.core.camera import CameraView
from storelens.core.events import EventBase, event_adapter
from storelens.core.layout import StoreLayout, load_layout
from storelens.core.retry import ManualClock
from storelens.ingest.client import IngestAuthError, IngestUnavailable
from storelens.sim.run import default_layout_path
from storelens.vision.frames import Frame
from storelens.vision.outputs import ApiWriter, EventsRejected, JsonlWriter, VisionEvents
from storelens.vision.pipeline import PipelineUpdates, TrackHook, VisionPipeline, renaming_hook
from storelens.vision.stitching import StitchConfig
from storelens.vision.zones import FloorConfig, VisitConfig

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
STEP = timedelta(milliseconds=200)


@pytest.fixture(scope="module")
def layout() -> StoreLayout:
    return load_layout(default_layout_path())


def walk(a: tuple[float, float], b: tuple[float, float], seconds: float) -> list[np.ndarray]:
    """Floor positions every 200 ms from ``a`` to ``b``."""
    n = round(seconds * 5)
    return [np.array(a) + (np.array(b) - np.array(a)) * i / (n - 1) for i in range(n)]


def frames(
    layout: StoreLayout, camera_id: str, path: list[np.ndarray], tail_s: float = 4.0
) -> Iterator[tuple[str, datetime, sv.Detections]]:
    """Exact person boxes for ``path`` as ``camera_id`` sees it, then empty frames."""
    view = CameraView.from_camera(layout.camera(camera_id))
    empty = round(tail_s * 5)
    for i in range(len(path) + empty):
        if i < len(path):
            boxes = view.person_boxes(path[i][None, :])
            found = sv.Detections(xyxy=boxes, confidence=np.array([0.9]), class_id=np.array([0]))
        else:
            found = sv.Detections.empty()
        yield camera_id, T0 + i * STEP, found


def run(
    pipeline: VisionPipeline, feed: Iterator[tuple[str, datetime, sv.Detections]]
) -> PipelineUpdates:
    out = PipelineUpdates()
    for update in pipeline.run_detections(feed):
        out.extend(update)
    return out


DOOR_WALK = walk((0.1, 4.5), (4.0, 6.0), 12.0)  # from the street side into the seating


def test_walk_through_the_door(layout: StoreLayout) -> None:
    every_second = FloorConfig(occupancy_every_s=1.0)
    pipeline = VisionPipeline(
        layout, ["cam-entrance"], floor=every_second, track_every_s=0.2, rng_seed=1
    )
    out = run(pipeline, frames(layout, "cam-entrance", DOOR_WALK))
    crossings = out.floor.crossings
    assert [(c.line_id, c.direction) for c in crossings] == [("door", "in")]
    people = {t.person_id for t in out.tracks}
    assert len(people) == 1 and next(iter(people)).startswith("cam-entrance:")
    entered = [(c.zone_id, c.kind) for c in out.floor.zone_changes]
    assert ("entrance", "enter") in entered and ("entrance", "exit") in entered
    assert ("seating", "enter") in entered and ("seating", "exit") in entered
    assert len(out.floor.store_visits) == 1
    assert 9.0 <= out.floor.store_visits[0].dwell_s <= 12.0
    entrance = [o.count for o in out.floor.occupancy if o.zone_id == "entrance"]
    assert entrance and max(entrance) == 1 and entrance[-1] == 0
    assert {o.zone_id for o in out.floor.occupancy} <= set(layout.camera("cam-entrance").covers)
    # Heat is person-seconds: one track sample per tick here, 0.2 s each, all on the floor.
    heat = sum(float(h.grid.values.sum()) for h in out.heat)
    on_floor = [t for t in out.tracks if 0 <= t.x <= 14 and 0 <= t.y <= 9]
    assert heat == pytest.approx(len(on_floor) * 0.2)
    assert sum(h.grid.period_s for h in out.heat) == pytest.approx(pipeline.ticks * 0.2)


def test_tracks_are_sampled_every_second(layout: StoreLayout) -> None:
    pipeline = VisionPipeline(layout, ["cam-entrance"], rng_seed=1)
    out = run(pipeline, frames(layout, "cam-entrance", DOOR_WALK))
    stamps = sorted({t.ts for t in out.tracks})
    assert len(stamps) >= 10
    assert all(ts.microsecond == 0 for ts in stamps)  # on the whole seconds of the clock
    assert all(t.confidence == pytest.approx(0.9, abs=0.05) for t in out.tracks)


def switch_at(seconds: float) -> TrackHook:
    """A tracker that gives its track a new id from ``seconds`` on."""

    def rename(ts: datetime, tracked: sv.Detections) -> sv.Detections:
        from dataclasses import replace

        ids = np.asarray(tracked.tracker_id)
        if ts >= T0 + timedelta(seconds=seconds):
            ids = ids + 1000
        return replace(tracked, tracker_id=ids)

    return renaming_hook({"cam-entrance": rename})


@pytest.mark.parametrize(
    ("stitch", "relink_s", "people", "tracks_per_visit"),
    [(True, 60.0, 1, [1]), (False, 0.0, 2, [1, 1]), (False, 60.0, 2, [2])],
)
def test_stitching_repairs_an_id_switch(
    layout: StoreLayout, stitch: bool, relink_s: float, people: int, tracks_per_visit: list[int]
) -> None:
    """The switch happens mid-floor: the stitcher joins the tracks; without it the visit
    chain still joins them into one door-to-door visit; with neither, it is two."""
    pipeline = VisionPipeline(
        layout,
        ["cam-entrance"],
        stitch=StitchConfig(enabled=stitch),
        floor=FloorConfig(visits=VisitConfig(relink_s=relink_s)),
        after_tracking=switch_at(6.0),
        rng_seed=2,
    )
    out = run(pipeline, frames(layout, "cam-entrance", DOOR_WALK))
    assert [v.tracks for v in out.floor.store_visits] == tracks_per_visit
    assert len({t.person_id for t in out.tracks}) == people
    assert [c.direction for c in out.floor.crossings] == ["in"]
    assert out.floor.store_visits[0].entered_by == "door"
    if len(tracks_per_visit) == 1:
        assert 9.0 <= out.floor.store_visits[0].dwell_s <= 12.0


def test_two_cameras_count_one_shopper_once(layout: StoreLayout) -> None:
    path = walk((2.5, 3.0), (4.5, 3.2), 10.0)  # along the queue, which both cameras see
    both = sorted(
        [*frames(layout, "cam-entrance", path), *frames(layout, "cam-counter", path)],
        key=lambda f: (f[1], f[0]),
    )
    pipeline = VisionPipeline(layout, ["cam-entrance", "cam-counter"], rng_seed=3)
    assert pipeline.occupancy_camera is None
    out = run(pipeline, iter(both))
    per_instant: dict[datetime, set[str]] = {}
    for t in out.tracks:
        per_instant.setdefault(t.ts, set()).add(t.person_id)
    assert per_instant and all(len(ids) == 1 for ids in per_instant.values())
    queue = [o.count for o in out.floor.occupancy if o.zone_id == "queue"]
    assert max(queue) == 1
    assert [c.zone_id for c in out.floor.zone_changes if c.kind == "enter"] == ["queue"]
    assert len(out.floor.store_visits) == 1


class ReplayDetector:
    """Stands in for a model: returns the boxes planted for each frame's index."""

    name = "replay"

    def __init__(self, boxes: dict[int, sv.Detections]) -> None:
        self.boxes = boxes
        self.calls = 0

    def detect(self, image: np.ndarray) -> sv.Detections:
        found = self.boxes[int(image[0, 0, 0])]
        self.calls += 1
        return found


def test_frames_go_through_the_detector(layout: StoreLayout) -> None:
    planted = {i: d for i, (_, _, d) in enumerate(frames(layout, "cam-entrance", DOOR_WALK))}
    detector = ReplayDetector(planted)
    pipeline = VisionPipeline(layout, ["cam-entrance"], lambda _camera: detector, rng_seed=4)
    images = [
        Frame(i, T0 + i * STEP, np.full((4, 4, 3), i, dtype=np.uint8)) for i in range(len(planted))
    ]
    out = PipelineUpdates()
    for update in pipeline.run({"cam-entrance": images}):
        out.extend(update)
    assert detector.calls == len(planted) == pipeline.frames
    assert [c.direction for c in out.floor.crossings] == ["in"]


def test_midnight_closes_the_floor(layout: StoreLayout) -> None:
    berlin_midnight = datetime(2026, 11, 2, 23, 0, tzinfo=UTC)  # 00:00 in Europe/Berlin
    pipeline = VisionPipeline(layout, ["cam-entrance"], rng_seed=5)
    feed = list(frames(layout, "cam-entrance", walk((3.0, 6.0), (3.5, 6.0), 4.0), tail_s=0))
    shift = berlin_midnight - T0 - timedelta(seconds=2)
    out = PipelineUpdates()
    for camera_id, ts, found in feed:
        out.extend(pipeline.feed(camera_id, ts + shift, found))
    assert len(out.floor.store_visits) == 1  # closed at midnight, before close()
    assert out.floor.store_visits[0].end <= berlin_midnight
    out.extend(pipeline.close())
    assert len(out.floor.store_visits) == 2
    assert len({t.person_id for t in out.tracks}) == 2  # new day, new anonymous id


def test_bad_input_is_refused(layout: StoreLayout) -> None:
    with pytest.raises(ValueError, match="no cameras"):
        VisionPipeline(layout, ["cam-roof"])
    with pytest.raises(ValueError, match="at least one camera"):
        VisionPipeline(layout, [])
    with pytest.raises(ValueError, match="track_every_s"):
        VisionPipeline(layout, ["cam-entrance"], track_every_s=0)
    pipeline = VisionPipeline(layout, ["cam-entrance"])
    with pytest.raises(ValueError, match="not one of"):
        pipeline.feed("cam-counter", T0, sv.Detections.empty())
    with pytest.raises(ValueError, match="no detector"):
        pipeline.process("cam-entrance", Frame(0, T0, np.zeros((4, 4, 3), np.uint8)))
    pipeline.feed("cam-entrance", T0 + STEP, sv.Detections.empty())
    with pytest.raises(ValueError, match="older than the tick"):
        pipeline.feed("cam-entrance", T0, sv.Detections.empty())
    with pytest.raises(ValueError, match="timezone-aware"):
        pipeline.feed("cam-entrance", datetime(2026, 11, 2, 10), sv.Detections.empty())


def test_events_validate_against_the_envelope(layout: StoreLayout, tmp_path: Path) -> None:
    pipeline = VisionPipeline(layout, ["cam-entrance"], rng_seed=6)
    builder = VisionEvents(layout.store_id, pipeline.occupancy_camera)
    writer = JsonlWriter(tmp_path / "run", layout)
    for update in pipeline.run_detections(frames(layout, "cam-entrance", DOOR_WALK)):
        writer.write(builder.events(update))
    writer.close()
    lines = writer.path.read_text(encoding="utf-8").splitlines()
    events = [event_adapter.validate_python(json.loads(line)) for line in lines]
    kinds = {e.type for e in events}
    expected = {"vision.track", "vision.zone_enter", "vision.zone_exit", "vision.line_crossed"}
    expected |= {"vision.visit"}
    assert expected | {"vision.occupancy", "vision.heatmap"} == kinds
    assert all(e.source == "vision" and e.store_id == "cafe-01" for e in events)
    assert len({e.id for e in events}) == len(events)
    assert all(e.ts.tzinfo is not None for e in events)
    occupancy = [e for e in events if e.type == "vision.occupancy"]
    assert all(e.payload.camera_id == "cam-entrance" for e in occupancy)
    assert writer.heatmap_path is not None and writer.heatmap_path.stat().st_size > 1000


def _one_event(layout: StoreLayout) -> list[EventBase]:
    pipeline = VisionPipeline(layout, ["cam-entrance"], rng_seed=7)
    updates = PipelineUpdates()
    for update in pipeline.run_detections(frames(layout, "cam-entrance", DOOR_WALK[:10])):
        updates.extend(update)
    return VisionEvents(layout.store_id).events(updates)[:3]


class _UpperBound(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def test_api_writer_retries_then_posts(layout: StoreLayout) -> None:
    answers = iter([503, 429, 200])
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = next(answers)
        if status == 429:
            return httpx.Response(429, headers={"Retry-After": "4"})
        body = {"accepted": 3, "duplicates": 0, "rejected": 0, "errors": []}
        return httpx.Response(status, json=body if status == 200 else {"detail": "busy"})

    clock = ManualClock()
    writer = ApiWriter(
        "https://edge.test",
        "sk_x",
        transport=httpx.MockTransport(handle),
        clock=clock,
        rng=_UpperBound(),
    )
    writer.write(_one_event(layout))
    writer.close()
    assert len(seen) == 3 and clock.sleeps == [0.5, 4.0]  # backoff, then the server's wait
    assert seen[0].headers["X-API-Key"] == "sk_x"
    assert seen[0].url.path == "/v1/events" and len(json.loads(seen[2].content)) == 3
    assert (writer.sent, writer.accepted) == (3, 3)


def test_api_writer_gives_up_after_its_retries(layout: StoreLayout) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    clock = ManualClock()
    writer = ApiWriter(
        "https://edge.test",
        "sk_x",
        retries=2,
        transport=httpx.MockTransport(down),
        clock=clock,
        rng=_UpperBound(),
    )
    writer.write(_one_event(layout))
    with pytest.raises(IngestUnavailable, match="gave up after 3 tries: cannot reach"):
        writer.close()
    assert clock.sleeps == [0.5, 1.0]


def test_api_writer_reports_refusals(layout: StoreLayout) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"detail": "bad key"})

    writer = ApiWriter("https://edge.test", "sk_bad", transport=httpx.MockTransport(refuse))
    writer.write(_one_event(layout))
    with pytest.raises(IngestAuthError, match="401: bad key"):
        writer.close()

    def reject(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)
        error = {"index": 0, "id": items[0]["id"], "errors": [{"loc": "ts", "msg": "m"}]}
        body = {"accepted": 2, "duplicates": 0, "rejected": 1, "errors": [error]}
        return httpx.Response(200, json=body)

    writer = ApiWriter("https://edge.test", "sk_x", transport=httpx.MockTransport(reject))
    writer.write(_one_event(layout))
    with pytest.raises(EventsRejected, match="rejected 1 events"):
        writer.close()
    with pytest.raises(ValueError, match="http"):
        ApiWriter("ftp://edge.test", "k")
    with pytest.raises(ValueError, match="API key"):
        ApiWriter("https://edge.test", " ")


def test_nobody_is_tracked_inside_a_fitting_room() -> None:
    from importlib.resources import files

    apparel = load_layout(str(files("storelens.samples").joinpath("layouts", "apparel.toml")))
    room = next(z for z in apparel.zones if z.kind == "fitting_room")
    # From the denim aisle into the fitting rooms, which cam-left's frame partly shows.
    path = walk((12.0, 7.0), (12.0, 3.0), 8.0)
    assert CameraView.from_camera(apparel.camera("cam-left")).sees(np.array(path)).all()
    out = run(VisionPipeline(apparel, ["cam-left"], rng_seed=5), frames(apparel, "cam-left", path))
    assert out.tracks, "the walk outside the room is tracked"
    assert not any(room.contains((t.x, t.y)) for t in out.tracks)
    assert all(c.zone_id != room.id for c in out.floor.zone_changes)
    assert all(o.count == 0 for o in out.floor.occupancy if o.zone_id == room.id)
