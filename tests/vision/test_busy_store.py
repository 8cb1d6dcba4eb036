"""What broke in a busy café, on small rendered clips: a still person kept through a long
stand, a queue shoulder to shoulder separated, a camera that starts on a full room, and a
seated visit kept whole across a short loss."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest
import supervision as sv
from scipy.optimize import linear_sum_assignment

from storelens.core.camera import CameraView
from storelens.core.layout import StoreLayout, load_layout
from storelens.sim.render import CameraScene
from storelens.sim.run import default_layout_path
from storelens.vision.appearance import AppearanceConfig
from storelens.vision.detectors.motion import MotionDetector
from storelens.vision.frames import Frame
from storelens.vision.pipeline import VisionPipeline
from storelens.vision.zones import FloorActivity, FloorConfig

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
FPS = 5.0
QUEUE = np.array([[2.4 + 0.5 * k, 2.9] for k in range(6)])  # 0.5 m apart: shoulder to shoulder
TABLES = np.array([[6.0, 6.0], [6.0, 6.8], [7.0, 6.0], [7.0, 6.8], [10.0, 7.5], [11.0, 7.5]])


@pytest.fixture(scope="module")
def cafe() -> StoreLayout:
    return load_layout(default_layout_path())


def scene(cafe: StoreLayout, camera: str) -> CameraScene:
    return CameraScene(CameraView.from_camera(cafe.camera(camera)), layout=cafe)


def empty_shop(film: CameraScene) -> npt.NDArray[np.uint8]:
    return film.draw(np.zeros((0, 2)), [], 0)


def matched(truth: npt.NDArray[np.float64], found: npt.NDArray[np.float64], within_m: float) -> int:
    """People found within ``within_m`` of a true spot, one to one."""
    if not len(truth) or not len(found):
        return 0
    cost = np.linalg.norm(truth[:, None, :] - found[None, :, :], axis=2)
    cost = np.where(np.isfinite(cost), cost, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return int((cost[rows, cols] <= within_m).sum())


def feet(detections: sv.Detections, view: CameraView) -> npt.NDArray[np.float64]:
    return view.boxes_to_floor(detections.xyxy)


@pytest.mark.parametrize("camera", ["cam-counter", "cam-entrance"])
def test_a_queue_shoulder_to_shoulder_is_six_people(cafe: StoreLayout, camera: str) -> None:
    film = scene(cafe, camera)
    queues = cafe.zones_of_kind("queue")
    detector = MotionDetector(view=film.view, background=empty_shop(film), queues=queues)
    found = detector.detect(film.draw(QUEUE, [f"q{k}" for k in range(6)], 1))
    assert len(found) == 6
    assert matched(QUEUE, feet(found, film.view), 0.3) == 6


def test_people_one_behind_the_other_are_two(cafe: StoreLayout) -> None:
    film = scene(cafe, "cam-seating")
    detector = MotionDetector(view=film.view, background=empty_shop(film))
    tables = TABLES[:4]  # two tables of two, each pair one behind the other for this camera
    found = detector.detect(film.draw(tables, [f"t{k}" for k in range(4)], 1))
    assert matched(tables, feet(found, film.view), 0.3) == 4
    assert len(found) == 4


def test_a_line_outside_the_queue_is_not_filled_in(cafe: StoreLayout) -> None:
    film = scene(cafe, "cam-entrance")
    line = QUEUE + np.array([0.0, 3.0])  # the same line of six, in the seating: no queue there
    queues = cafe.zones_of_kind("queue")
    detector = MotionDetector(view=film.view, background=empty_shop(film), queues=queues)
    found = detector.detect(film.draw(line, [f"q{k}" for k in range(6)], 1))
    assert 1 <= len(found) <= 2  # front and back only: who is hidden between is unknown


def test_a_camera_that_starts_on_a_full_room(cafe: StoreLayout) -> None:
    film = scene(cafe, "cam-seating")
    ids = [f"t{k}" for k in range(len(TABLES))]
    with_picture = MotionDetector(view=film.view, background=empty_shop(film))
    first = with_picture.detect(film.draw(TABLES, ids, 1))
    assert matched(TABLES, feet(first, film.view), 0.3) == len(TABLES)  # from the first frame
    # Without the empty shop, the seated people are learnt as floor during the warm-up.
    blind = MotionDetector(view=film.view, warmup_frames=5)
    for number in range(12):
        later = blind.detect(film.draw(TABLES, ids, number))
    assert matched(TABLES, feet(later, film.view), 0.3) == 0


def test_a_bad_empty_shop_picture_is_refused(cafe: StoreLayout) -> None:
    film = scene(cafe, "cam-seating")
    with pytest.raises(ValueError, match="BGR uint8"):
        MotionDetector(view=film.view, background=np.zeros((720, 1280), np.uint8))
    detector = MotionDetector(view=film.view, background=empty_shop(film))
    with pytest.raises(ValueError, match="frame size changed"):
        detector.detect(np.zeros((360, 640, 3), np.uint8))
    with pytest.raises(ValueError, match="finite"):
        detector.hold([[0, 0, np.nan, 10]])


def stand_still(film: CameraScene, seconds: float) -> Iterator[Frame]:
    """One customer walks from the queue to a seat in 4 s, then sits still."""
    start, seat = np.array([3.0, 4.8]), np.array([7.0, 6.5])
    for number in range(round(seconds * FPS)):
        t = number / FPS
        spot = start + (seat - start) * min(1.0, t / 4.0)
        yield Frame(number, T0 + timedelta(seconds=t), film.draw([spot], ["c1"], number))


class NoHold:
    """The same detector without its `hold` (what the pipeline had before)."""

    name = "motion"

    def __init__(self, detector: MotionDetector) -> None:
        self._detector = detector

    def detect(self, image: npt.NDArray[np.uint8]) -> sv.Detections:
        return self._detector.detect(image)


@pytest.mark.parametrize("hold", [True, False])
def test_a_still_person_is_kept_through_a_long_stand(cafe: StoreLayout, hold: bool) -> None:
    film = scene(cafe, "cam-seating")

    def detector(_camera: str) -> MotionDetector | NoHold:
        # history=100: an unheld still person fades within ~10 frames, not minutes
        motion = MotionDetector(view=film.view, background=empty_shop(film), history=100)
        return motion if hold else NoHold(motion)

    pipeline = VisionPipeline(cafe, ["cam-seating"], detector, fps=FPS, rng_seed=1)
    updates = list(pipeline.run({"cam-seating": stand_still(film, 40.0)}))
    seating = [v for u in updates for v in u.floor.zone_visits if v.zone_id == "seating"]
    if hold:  # one visit, from about when they reached the seating to the end
        assert len(seating) == 1
        assert seating[0].dwell_s == pytest.approx(40.0 - 1.4, abs=1.5)
    else:
        assert sum(v.dwell_s for v in seating) < 20.0


def test_a_seated_visit_is_kept_whole_across_a_short_loss(cafe: StoreLayout) -> None:
    floor = FloorActivity(cafe, FloorConfig(zone_relink_s=30.0, zone_relink_m=1.0))
    out = [floor.update(T0 + timedelta(seconds=s), ["cam:a"], [[7.0, 6.5]]) for s in range(60)]
    # lost for 12 s (someone stood in front), found again under a new id 0.3 m away
    out += [floor.update(T0 + timedelta(seconds=s), [], np.zeros((0, 2))) for s in range(60, 72)]
    out += [
        floor.update(T0 + timedelta(seconds=s), ["cam:b"], [[7.2, 6.7]]) for s in range(72, 200)
    ]
    out.append(floor.close())
    seating = [v for u in out for v in u.zone_visits if v.zone_id == "seating"]
    assert [(v.start, v.end) for v in seating] == [(T0, T0 + timedelta(seconds=199))]
    enters = [
        c for u in out for c in u.zone_changes if c.kind == "enter" and c.zone_id == "seating"
    ]
    assert [c.person_id for c in enters] == ["cam:a"]  # no second entry for the same visit


def test_a_stranger_far_away_does_not_take_over_a_lost_visit(cafe: StoreLayout) -> None:
    floor = FloorActivity(cafe, FloorConfig(zone_relink_s=30.0, zone_relink_m=1.0))
    out = [floor.update(T0 + timedelta(seconds=s), ["cam:a"], [[7.0, 6.5]]) for s in range(10)]
    out += [floor.update(T0 + timedelta(seconds=s), [], np.zeros((0, 2))) for s in range(10, 15)]
    out.append(floor.update(T0 + timedelta(seconds=15), ["cam:b"], [[12.0, 4.0]]))  # walks in
    out += [
        floor.update(T0 + timedelta(seconds=s), ["cam:b"], [[12.0, 8.0]]) for s in range(16, 60)
    ]
    out.append(floor.close())
    seating = sorted((v.person_id, v.dwell_s) for u in out for v in u.zone_visits
                     if v.zone_id == "seating")  # fmt: skip
    assert seating == [("cam:a", 9.0), ("cam:b", 43.0)]


Frames = list[tuple[int, dict[str, list[float]]]]


def seating_visits(floor: FloorActivity, frames: Frames) -> list[tuple[str, float, float]]:
    """Feed (second, {id: [x, y]}) frames and close; seating visits as (id, start, end) s."""
    out = [floor.update(T0 + timedelta(seconds=s), list(who), list(who.values()))
           for s, who in frames] + [floor.close()]  # fmt: skip
    return sorted(
        (v.person_id, (v.start - T0).total_seconds(), (v.end - T0).total_seconds())
        for u in out
        for v in u.zone_visits
        if v.zone_id == "seating"
    )


def test_a_seated_person_whose_id_walks_off_with_a_passer_by_keeps_one_visit(
    cafe: StoreLayout,
) -> None:
    # In a crowd the tracker moves a seated customer's id onto someone walking past and
    # gives the customer a new one: the visit is the customer's, not the id's.
    seated = [(s, {"cam:a": [7.0, 6.5]}) for s in range(30)]
    swapped = [
        (s, {"cam:a": [7.0, 6.5 - 0.6 * (s - 29)], "cam:c": [7.1, 6.5]}) for s in range(30, 40)
    ]
    stays = [(s, {"cam:c": [7.1, 6.5]}) for s in range(40, 90)]
    visits = seating_visits(FloorActivity(cafe), seated + swapped + stays)
    assert visits == [("cam:c", 0.0, 89.0)]
    old = FloorActivity(cafe, FloorConfig(born_inside_after_s=float("inf")))
    assert len(seating_visits(old, seated + swapped + stays)) == 2  # what it was: two visits


def test_a_track_that_appears_inside_a_zone_is_not_a_new_visitor(cafe: StoreLayout) -> None:
    # A seated customer's blob split in two for 20 s: the second box is nobody new.
    frames = [(s, {"cam:a": [7.0, 6.5]}) for s in range(60)]
    frames[20:40] = [(s, {"cam:a": [7.0, 6.5], "cam:g": [7.4, 6.6]}) for s in range(20, 40)]
    assert seating_visits(FloorActivity(cafe), frames) == [("cam:a", 0.0, 59.0)]
    old = FloorActivity(cafe, FloorConfig(born_inside_after_s=float("inf")))
    assert len(seating_visits(old, frames)) == 2


def test_someone_first_seen_in_the_doorway_is_a_new_visitor(cafe: StoreLayout) -> None:
    # People do appear inside the door's zone: they come in from the street.
    frames = [(s, {"cam:a": [7.0, 6.5]}) for s in range(30)]
    frames[10:20] = [(s, {"cam:a": [7.0, 6.5], "cam:e": [0.5, 4.5]}) for s in range(10, 20)]
    floor, out = FloorActivity(cafe), []
    for s, who in frames:
        out.append(floor.update(T0 + timedelta(seconds=s), list(who), list(who.values())))
    out.append(floor.close())
    entrance = [(v.person_id, v.dwell_s) for u in out for v in u.zone_visits
                if v.zone_id == "entrance"]  # fmt: skip
    assert entrance == [("cam:e", 9.0)]


def test_people_already_seated_when_the_camera_starts_are_counted(cafe: StoreLayout) -> None:
    # The camera starts on a full room: tracks confirmed in the first seconds are the
    # people sitting there, each a visit; one confirmed later inside the zone is not.
    frames = [(s, {"cam:a": [6.0, 6.0], "cam:b": [10.0, 7.5]}) for s in range(3)]
    frames += [(s, {"cam:a": [6.0, 6.0], "cam:b": [10.0, 7.5], "cam:c": [12.0, 8.0]})
               for s in range(3, 8)]  # fmt: skip
    frames += [(s, {**frames[-1][1], "cam:d": [4.0, 8.0]}) for s in range(8, 30)]
    visits = seating_visits(FloorActivity(cafe), frames)
    assert [v[0] for v in visits] == ["cam:a", "cam:b", "cam:c"]


def test_a_lost_visit_nobody_reclaims_ends_at_its_last_sighting(cafe: StoreLayout) -> None:
    floor = FloorActivity(cafe, FloorConfig(zone_relink_s=30.0))
    for s in range(10):
        floor.update(T0 + timedelta(seconds=s), ["cam:a"], [[7.0, 6.5]])
    quiet = [floor.update(T0 + timedelta(seconds=s), [], np.zeros((0, 2))) for s in range(10, 39)]
    assert not any(u.zone_visits for u in quiet)  # still waiting for its owner
    late = floor.update(T0 + timedelta(seconds=41), [], np.zeros((0, 2)))
    assert [(v.person_id, v.end) for v in late.zone_visits] == [
        ("cam:a", T0 + timedelta(seconds=9))
    ]


@pytest.mark.parametrize(
    "field", ["zone_relink_s", "zone_relink_m", "born_inside_after_s", "born_inside_reach_m"]
)
def test_relink_settings_must_be_numbers_not_below_zero(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        FloorConfig(**{field: -1.0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=field):
        FloorConfig(**{field: float("nan")})  # type: ignore[arg-type]


def meet_and_part(t: float, a: npt.NDArray[np.float64], b: npt.NDArray[np.float64],
                  meet: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:  # fmt: skip
    """Where two customers are at ``t``: they walk 3 s to stand side by side (0.35 m
    apart: one blob), stay 3 s, and walk 3 s back the way they came."""
    side = np.array([0.0, 0.175])
    f = min(1.0, t / 3) if t < 6 else max(0.0, 1 - (t - 6) / 3)
    return np.array([a + (meet - side - a) * f, b + (meet + side - b) * f])


def test_two_customers_who_stand_together_keep_their_ids_when_they_part(
    cafe: StoreLayout,
) -> None:
    film = scene(cafe, "cam-seating")
    a, b, meet = np.array([4.0, 6.0]), np.array([10.0, 6.0]), np.array([7.0, 6.4])
    frames = (
        Frame(n, T0 + timedelta(seconds=n / FPS),
              film.draw(meet_and_part(n / FPS, a, b, meet), ["ca", "cb"], n))
        for n in range(round(10 * FPS))
    )  # fmt: skip
    pipeline = VisionPipeline(
        cafe,
        ["cam-seating"],
        lambda _c: MotionDetector(view=film.view, background=empty_shop(film)),
        fps=FPS,
        rng_seed=1,
        appearance=AppearanceConfig(enabled=True),  # opt-in (without it, b is a new id)
    )
    samples = [s for u in pipeline.run({"cam-seating": frames}) for s in u.tracks]

    def who(second: float) -> list[str]:
        now = [s for s in samples if s.ts == T0 + timedelta(seconds=second)]
        ids = []
        for spot in meet_and_part(second, a, b, meet):
            near = min(now, key=lambda s: float(np.hypot(s.x - spot[0], s.y - spot[1])))
            assert np.hypot(near.x - spot[0], near.y - spot[1]) < 0.5
            ids.append(near.person_id)
        return ids

    before, after = who(1), who(9)  # walking towards each other; back where they started
    assert before[0] != before[1]
    assert after == before
