"""Scoring vision events against truth: perfect events score perfectly, each planted fault
moves exactly the metric it should, and bad input says what is wrong."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from storelens.core.camera import CameraView
from storelens.core.layout import StoreLayout, load_layout
from storelens.sim.config import BaristaPlan, SimConfig
from storelens.sim.positions import POSITION_SCHEMA
from storelens.sim.run import default_layout_path, run_simulation
from storelens.vision.evaluate import CountScore, VisionScore, evaluate, print_score
from storelens.vision.score_inputs import truth_visits

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MS0 = round(T0.timestamp() * 1000)
STEP = 200
# id: (enter s, exit s, start xy, end xy); all customers but "s1", the barista.
PEOPLE = {
    "v1": (1.0, 40.0, (2.0, 5.0), (4.0, 6.0)),  # in cam-entrance's view
    "v2": (5.0, 55.0, (3.0, 3.0), (3.5, 2.8)),  # in the queue, both cameras see it
    "v3": (10.0, 30.0, (10.0, 7.0), (10.5, 7.5)),  # seating no camera sees
    "s1": (0.0, 60.0, (7.0, 3.0), (7.2, 3.0)),  # at the counter
}


@pytest.fixture(scope="module")
def layout() -> StoreLayout:
    return load_layout(default_layout_path())


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def zone_of(layout: StoreLayout, x: float, y: float) -> str:
    return next((z.id for z in layout.zones if z.contains((x, y))), "entrance")


def write_run(folder: Path, layout: StoreLayout) -> Path:
    """A hand-made run: truth.json and positions.parquet for PEOPLE over one minute."""
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[int, str, float, float, str, bool]] = []
    for person, (enter, exit_, (ax, ay), (bx, by)) in PEOPLE.items():
        for ms in range(MS0 + round(enter * 1000), MS0 + round(exit_ * 1000), STEP):
            share = (ms - MS0 - enter * 1000) / ((exit_ - enter) * 1000)
            x, y = ax + share * (bx - ax), ay + share * (by - ay)
            rows.append((ms, person, x, y, zone_of(layout, x, y), person == "s1"))
    rows.sort()
    columns = {name: [row[i] for row in rows] for i, name in enumerate(POSITION_SCHEMA.names)}
    ts = pa.array(columns["ts"], pa.int64()).cast(POSITION_SCHEMA.field("ts").type)
    table = pa.table({**columns, "ts": ts}, schema=POSITION_SCHEMA)
    pq.write_table(table, folder / "positions.parquet")
    visits = [
        {
            "track_id": person,
            "enter": iso(MS0 + round(enter * 1000)),
            "exit": iso(MS0 + round(exit_ * 1000)),
        }
        for person, (enter, exit_, _, _) in PEOPLE.items()
        if person != "s1"
    ]
    truth = {"store_id": "cafe-01", "layout": "cafe.toml", "visits": visits, "staff_tracks": ["s1"]}
    (folder / "truth.json").write_text(json.dumps(truth), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, layout: StoreLayout) -> Path:
    return write_run(tmp_path_factory.mktemp("run"), layout)


def event(type_: str, ms: int, payload: dict[str, Any], store: str = "cafe-01") -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": type_,
        "ts": iso(ms),
        "store_id": store,
        "source": "vision",
        "payload": payload,
    }


def perfect_events(
    folder: Path, layout: StoreLayout, *, every_ms: int = 1000, occupancy_ms: int = 5000
) -> list[dict[str, Any]]:
    """What a flawless pipeline would say, worked out independently of the scorer: the
    layout's own Zone.contains, each camera's `sees`, the truth visits' door times."""
    table = pq.read_table(folder / "positions.parquet")
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    ids = table.column("track_id").to_pylist()
    xy = np.column_stack([table.column("x").to_numpy(), table.column("y").to_numpy()])
    views = [CameraView.from_camera(camera) for camera in layout.cameras]
    seen_by = np.array([view.sees(xy) for view in views])
    events = []
    for i in np.flatnonzero((ts % every_ms == 0) & seen_by.any(axis=0)):
        camera = views[int(np.argmax(seen_by[:, i]))].camera_id
        point = {"camera_id": camera, "track_id": f"trk-{ids[i]}", "x": xy[i, 0], "y": xy[i, 1]}
        events.append(event("vision.track", int(ts[i]), point))
    for ms in np.unique(ts[ts % occupancy_ms == 0]):
        here = (ts == ms) & seen_by.any(axis=0)
        for zone in layout.zones:
            count = sum(zone.contains((float(x), float(y))) for x, y in xy[here])
            occupancy = {"zone_id": zone.id, "count": count}
            events.append(event("vision.occupancy", int(ms), occupancy))
    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    for visit in truth["visits"]:
        # a perfect door counter stamps the moment on the line, where the truth has it
        visit = {**visit, "enter": visit.get("door_in") or visit["enter"]}
        visit["exit"] = visit.get("door_out") or visit["exit"]
        for key, direction in (("enter", "in"), ("exit", "out")):
            ms = round(datetime.fromisoformat(visit[key]).timestamp() * 1000)
            crossing = {"line_id": "door", "track_id": f"trk-{visit['track_id']}"}
            events.append(event("vision.line_crossed", ms, {**crossing, "direction": direction}))
        enter, exit_ = (datetime.fromisoformat(visit[k]) for k in ("enter", "exit"))
        door_to_door = {
            "visit_id": f"trk-{visit['track_id']}/1",
            "started_at": visit["enter"],
            "dwell_s": (exit_ - enter).total_seconds(),
            "entered_by": "door",
            "left_by": "door",
        }
        events.append(event("vision.visit", round(exit_.timestamp() * 1000), door_to_door))
    return sorted(events, key=lambda e: e["ts"])


@pytest.fixture(scope="module")
def perfect(run_dir: Path, layout: StoreLayout) -> list[dict[str, Any]]:
    return perfect_events(run_dir, layout)


def score(run_dir: Path, events: Iterable[dict[str, Any]], **options: Any) -> VisionScore:
    window = {"start": T0, "end": T0 + timedelta(seconds=60)}
    return evaluate(run_dir, list(events), **{**window, **options})


def assert_perfect(result: VisionScore) -> None:
    assert result.tracking is not None
    assert result.tracking.mota == pytest.approx(1.0)
    assert result.tracking.idf1 == pytest.approx(1.0)
    assert result.tracking.hota == pytest.approx(1.0)
    assert result.entries.accuracy == 1.0
    assert result.exits.accuracy == 1.0
    assert result.dwell.median_abs_rel_error == 0.0
    assert result.dwell.unmatched_truth == result.dwell.unmatched_predicted == 0
    assert result.occupancy_overall is not None
    assert result.occupancy_overall.max_abs_error == 0


def test_perfect_events_score_perfectly(run_dir: Path, perfect: list[dict[str, Any]]) -> None:
    result = score(run_dir, perfect)
    assert_perfect(result)
    assert result.entries == CountScore(3, 3)
    assert result.dwell.matched == 3
    assert result.tracking is not None
    assert result.tracking.instants == 60
    # v3 sits deep in the seating, which only the seating camera sees.
    seen = {e["payload"]["track_id"] for e in perfect if e["type"] == "vision.track"}
    assert seen == {"trk-v1", "trk-v2", "trk-v3", "trk-s1"}
    assert set(result.occupancy) == {zone.id for zone in load_layout(default_layout_path()).zones}


def test_events_from_a_file_score_the_same(
    run_dir: Path, perfect: list[dict[str, Any]], tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n\n" for e in perfect), encoding="utf-8")
    assert evaluate(run_dir / "truth.json", path) == evaluate(run_dir, perfect)


def test_an_id_switch_costs_identity_not_detection(
    run_dir: Path, perfect: list[dict[str, Any]]
) -> None:
    switched = []
    for e in perfect:
        payload = e["payload"]
        if payload.get("track_id") == "trk-v1" and e["ts"] >= iso(MS0 + 20_000):
            e = {**e, "payload": {**payload, "track_id": "trk-v1-again"}}
        switched.append(e)
    result = score(run_dir, switched)
    assert result.tracking is not None
    assert result.tracking.id_switches == 1
    assert result.tracking.mota == pytest.approx(1 - 1 / result.tracking.truth_points)
    assert result.tracking.idf1 < 0.95
    assert result.tracking.hota < 0.97


def test_a_far_away_ghost_is_a_false_positive_per_sample(
    run_dir: Path, perfect: list[dict[str, Any]]
) -> None:
    ghost = [
        event("vision.track", MS0 + k * 1000, {"camera_id": "cam-entrance", "track_id": "g",
                                               "x": 1.0, "y": 8.0})
        for k in range(10)
    ]  # fmt: skip
    result = score(run_dir, perfect + ghost)
    assert result.tracking is not None
    assert result.tracking.false_positives == 10
    assert result.tracking.mota == pytest.approx(1 - 10 / result.tracking.truth_points)
    truth_points = result.tracking.truth_points
    near = [
        {**e, "payload": {**e["payload"], "x": e["payload"]["x"] + 0.9}}
        if e["type"] == "vision.track" else e
        for e in perfect
    ]  # fmt: skip
    assert score(run_dir, near).tracking.mota == pytest.approx(1.0)  # type: ignore[union-attr]
    shifted = score(run_dir, near, match_distance_m=0.5).tracking
    assert shifted is not None
    assert shifted.misses == shifted.false_positives == truth_points


def test_a_missed_entry_costs_exactly_one_over_true(
    run_dir: Path, perfect: list[dict[str, Any]]
) -> None:
    first_in = next(
        i for i, e in enumerate(perfect)
        if e["type"] == "vision.line_crossed" and e["payload"]["direction"] == "in"
    )  # fmt: skip
    result = score(run_dir, perfect[:first_in] + perfect[first_in + 1 :])
    assert result.entries == CountScore(3, 2)
    assert result.entries.accuracy == pytest.approx(1 - 1 / 3)
    assert result.exits.accuracy == 1.0
    assert result.dwell.matched == 3  # the visit falls back to its first sighting


def test_a_visit_that_ended_out_of_sight_of_the_door_is_scored_as_it_ended(
    run_dir: Path, perfect: list[dict[str, Any]]
) -> None:
    """v1's exit was never seen: the pipeline ends its visit at the last sighting (39 s
    against a 40 s exit, 1 s of 39 s of dwell) with no exit line."""
    kept = []
    for e in perfect:
        payload = e["payload"]
        if (
            e["type"] == "vision.line_crossed"
            and payload["track_id"] == "trk-v1"
            and (payload["direction"] == "out")
        ):
            continue
        if e["type"] == "vision.visit" and payload["visit_id"] == "trk-v1/1":
            payload = {**payload, "left_by": None, "dwell_s": payload["dwell_s"] - 1}
            e = {**e, "ts": iso(MS0 + 39_000), "payload": payload}
        kept.append(e)
    result = score(run_dir, kept)
    assert result.exits == CountScore(3, 2)
    assert result.dwell.matched == 3
    assert result.dwell.median_abs_error_s == 0.0
    errors = sorted([0.0, 0.0, 1.0 / 39.0])
    assert result.dwell.median_abs_rel_error == pytest.approx(errors[1])
    far = score(run_dir, kept, dwell_match_cap_s=0.5)
    assert far.dwell.matched == 2
    assert far.dwell.unmatched_truth == far.dwell.unmatched_predicted == 1


def test_only_visits_through_a_scored_line_count_for_dwell(
    run_dir: Path, perfect: list[dict[str, Any]]
) -> None:
    elsewhere = [
        {**e, "payload": {**e["payload"], "entered_by": "back-door", "left_by": None}}
        if e["type"] == "vision.visit" and e["payload"]["visit_id"] == "trk-v2/1"
        else e
        for e in perfect
    ]
    assert score(run_dir, elsewhere).dwell.predicted_visits == 3
    scored = score(run_dir, elsewhere, line_ids=["door"]).dwell
    assert (scored.predicted_visits, scored.matched, scored.unmatched_truth) == (2, 2, 1)


def test_occupancy_off_by_one_once_shows_in_the_max(
    run_dir: Path, perfect: list[dict[str, Any]]
) -> None:
    target = next(
        i for i, e in enumerate(perfect)
        if e["type"] == "vision.occupancy" and e["payload"]["zone_id"] == "queue"
    )  # fmt: skip
    off = [dict(e) for e in perfect]
    off[target] = {**off[target], "payload": {**off[target]["payload"], "count": 7}}
    true_count = perfect[target]["payload"]["count"]
    result = score(run_dir, off)
    queue = result.occupancy["queue"]
    assert queue.max_abs_error == abs(7 - true_count) > 0
    assert queue.samples == 12
    assert queue.bias == pytest.approx((7 - true_count) / 12)
    assert result.occupancy["seating"].max_abs_error == 0
    assert result.occupancy_overall is not None
    assert result.occupancy_overall.max_abs_error == queue.max_abs_error


def test_staff_stay_in_unless_excluded(run_dir: Path, perfect: list[dict[str, Any]]) -> None:
    no_staff = [e for e in perfect if e["payload"].get("track_id") != "trk-s1"]
    kept = score(run_dir, no_staff).tracking
    assert kept is not None
    assert kept.misses == 60  # the barista, sampled every second, seen but never reported
    dropped = score(run_dir, no_staff, exclude_staff=True).tracking
    assert dropped is not None
    assert dropped.mota == pytest.approx(1.0)
    assert dropped.truth_points == kept.truth_points - 60
    # Reporting the barista anyway is not held against a pipeline told to leave staff out.
    assert score(run_dir, perfect, exclude_staff=True).tracking == dropped


def test_cameras_limit_what_truth_expects(
    run_dir: Path, perfect: list[dict[str, Any]], layout: StoreLayout
) -> None:
    counter = CameraView.from_camera(layout.camera("cam-counter"))
    counter_only = [
        {**e, "payload": {**e["payload"], "camera_id": "cam-counter"}}
        for e in perfect
        if e["type"] == "vision.track" and counter.sees([(e["payload"]["x"], e["payload"]["y"])])[0]
    ]
    result = score(run_dir, counter_only, camera_ids=["cam-counter"])
    assert result.camera_ids == ("cam-counter",)
    assert result.tracking is not None
    assert result.tracking.misses == 0
    everyone = score(run_dir, perfect).tracking
    assert everyone is not None
    assert result.tracking.truth_points < everyone.truth_points


def test_the_window_limits_every_metric(run_dir: Path, perfect: list[dict[str, Any]]) -> None:
    result = score(run_dir, perfect, end=T0 + timedelta(seconds=8))
    assert result.entries == CountScore(2, 2)  # v1 and v2 came in; v3 only at 10 s
    assert result.exits == CountScore(0, 0)
    assert result.exits.accuracy is None
    # Both visits are still under way at the window's end: paired on entry, no dwell error.
    assert result.dwell.matched == result.dwell.open_visits == 2
    assert result.dwell.median_abs_error_s is None
    assert result.tracking is not None and result.tracking.instants == 8
    # By default the window is the span of the events.
    assert evaluate(run_dir, perfect).end == T0 + timedelta(seconds=59, milliseconds=1)


def test_score_reports_as_json_and_table(run_dir: Path, perfect: list[dict[str, Any]]) -> None:
    result = score(run_dir, perfect)
    record = json.loads(json.dumps(result.to_json()))
    assert record["tracking"]["mota"] == pytest.approx(1.0)
    assert record["entries"] == {"true": 3, "predicted": 3, "accuracy": 1.0}
    assert record["dwell"]["unmatched_truth"] == 0
    rows = dict(result.table())
    assert rows["MOTA"] == "1.000"
    assert rows["entries accuracy"] == "100.0%"
    out = io.StringIO()
    print_score(result, Console(file=out, width=120))
    assert "IDF1" in out.getvalue()
    assert "occupancy error: queue" in out.getvalue()


def test_bad_input_says_what_is_wrong(
    run_dir: Path, perfect: list[dict[str, Any]], tmp_path: Path, layout: StoreLayout
) -> None:
    with pytest.raises(FileNotFoundError, match="no truth file"):
        evaluate(tmp_path / "nowhere", perfect)
    (tmp_path / "truth.json").write_text("{}", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="--positions-fps"):
        evaluate(tmp_path, perfect)
    with pytest.raises(FileNotFoundError, match="no events file"):
        evaluate(run_dir, tmp_path / "events.jsonl")
    with pytest.raises(ValueError, match=r"no vision events for store 'cafe-01'$"):
        evaluate(run_dir, [])
    elsewhere = [{**e, "store_id": "cafe-02"} for e in perfect]
    with pytest.raises(ValueError, match=r"found vision events of \['cafe-02'\]"):
        evaluate(run_dir, elsewhere)
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_text(json.dumps(perfect[0]) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not JSON"):
        evaluate(run_dir, bad_line)
    broken = {**perfect[0], "payload": {"camera_id": "cam-entrance", "x": 1, "y": 2}}
    with pytest.raises(ValueError, match=r"event 0: vision\.track track_id: Field required"):
        evaluate(run_dir, [broken])
    with pytest.raises(ValueError, match="time zone"):
        evaluate(run_dir, [{**perfect[0], "ts": "2026-11-02T09:00:00"}])
    with pytest.raises(ValueError, match="not an event"):
        evaluate(run_dir, [["vision.track"]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="no cameras \\['cam-x'\\]"):
        evaluate(run_dir, perfect, camera_ids=["cam-x"])
    ghost_zone = event("vision.occupancy", MS0, {"zone_id": "roof", "count": 1})
    with pytest.raises(ValueError, match="unknown zone 'roof'"):
        evaluate(run_dir, [*perfect, ghost_zone])
    with pytest.raises(ValueError, match="match_distance_m"):
        evaluate(run_dir, perfect, match_distance_m=0)
    with pytest.raises(ValueError, match="window is empty"):
        evaluate(run_dir, perfect, start=T0, end=T0)
    other = layout.model_copy(update={"store_id": "cafe-02"})
    with pytest.raises(ValueError, match="layout is for 'cafe-02'"):
        evaluate(run_dir, perfect, layout=other)


def test_a_short_simulated_morning(tmp_path: Path, layout: StoreLayout) -> None:
    """Real simulator files end to end: perfect events score perfectly; the simulator's
    own track samples carry true ids, so they never switch and never miss an id."""
    config = SimConfig(
        closes=time(8, 0),
        weekday_profile=(8, 10),
        weekend_profile=(3, 4),
        weekday_visits=30,
        baristas=(BaristaPlan("barista-ana", 1.0, time(6, 45), time(8, 15), time(7, 30), 10),),
        track_interval_s=5.0,
    )
    summary = run_simulation(
        default_layout_path(), days=1, seed=11, out_dir=tmp_path, positions_fps=5, config=config
    )
    start, end = T0.replace(hour=6, minute=20), T0.replace(hour=6, minute=40)
    result = evaluate(tmp_path, perfect_events(tmp_path, layout), start=start, end=end)
    assert_perfect(result)
    assert result.entries.true > 0
    own = evaluate(tmp_path, summary.events_path, start=start, end=end)
    assert own.tracking is not None
    assert own.tracking.id_switches == 0
    sampled = [
        line for line in summary.events_path.read_text(encoding="utf-8").splitlines()
        if '"vision.track"' in line and ("T06:2" in line or "T06:3" in line)
    ]  # fmt: skip
    assert own.tracking.predicted_points == len(sampled)


def test_true_visits_run_door_to_door_where_the_truth_knows_the_door() -> None:
    """The simulator's people appear on the street a few steps before the door; a door
    counter's visit starts on the line, so truth is taken from the line too."""
    visits = [
        {"enter": iso(MS0), "exit": iso(MS0 + 60_000), "door_in": iso(MS0 + 2_000),
         "door_out": iso(MS0 + 57_000)},
        {"enter": iso(MS0 + 5_000), "exit": iso(MS0 + 9_000), "door_in": None, "door_out": None},
    ]  # fmt: skip
    found, exits = truth_visits({"visits": visits}, MS0, MS0 + 58_000)
    assert found == [(MS0 + 2_000, MS0 + 57_000), (MS0 + 5_000, MS0 + 9_000)]
    assert exits == 2
