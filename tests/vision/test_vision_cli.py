"""``storelens vision`` and ``storelens models`` through Typer's CliRunner: a simulated
minute through simulate and eval, a rendered clip through run, and bad input refused
with a readable message and exit code 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from storelens.cli import app
from storelens.core.events import event_adapter
from storelens.sim.positions import POSITION_SCHEMA

runner = CliRunner()
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MS0 = round(T0.timestamp() * 1000)
# id: (enter s, exit s, start xy, end xy): one walks in through the door, one sits down.
PEOPLE = {
    "v1": (0.0, 20.0, (0.1, 4.5), (4.0, 6.0)),
    "v2": (4.0, 30.0, (3.0, 3.0), (4.5, 3.2)),
}


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """positions.parquet at 5 fps and truth.json for PEOPLE over half a minute."""
    folder = tmp_path_factory.mktemp("sim")
    rows = []
    for person, (enter, exit_, (ax, ay), (bx, by)) in PEOPLE.items():
        for ms in range(MS0 + round(enter * 1000), MS0 + round(exit_ * 1000), 200):
            share = (ms - MS0 - enter * 1000) / ((exit_ - enter) * 1000)
            rows.append((ms, person, ax + share * (bx - ax), ay + share * (by - ay), "x", False))
    rows.sort()
    columns = {name: [row[i] for row in rows] for i, name in enumerate(POSITION_SCHEMA.names)}
    ts = pa.array(columns["ts"], pa.int64()).cast(POSITION_SCHEMA.field("ts").type)
    pq.write_table(
        pa.table({**columns, "ts": ts}, schema=POSITION_SCHEMA), folder / "positions.parquet"
    )
    visits = [
        {"track_id": p, "enter": iso(MS0 + round(a * 1000)), "exit": iso(MS0 + round(b * 1000))}
        for p, (a, b, _, _) in PEOPLE.items()
    ]
    truth = {"store_id": "cafe-01", "layout": "cafe.toml", "visits": visits, "staff_tracks": []}
    (folder / "truth.json").write_text(json.dumps(truth), encoding="utf-8")
    return folder


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_simulate_then_eval(sim_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, text = invoke(
        "vision",
        "simulate",
        "--truth-dir",
        str(sim_run),
        "--camera",
        "cam-entrance",
        "--miss-rate",
        "0",
        "--false-positives",
        "0",
        "--id-switches-per-min",
        "0",
        "--out",
        str(out),
    )
    assert code == 0, text
    assert "frames" in text and (out / "events.jsonl").is_file() and (out / "heatmap.png").is_file()
    lines = (out / "events.jsonl").read_text(encoding="utf-8").splitlines()
    events = [event_adapter.validate_python(json.loads(line)) for line in lines]
    crossings = [e.payload.direction for e in events if e.type == "vision.line_crossed"]
    assert crossings == ["in"]
    code, text = invoke(
        "vision",
        "eval",
        "--truth",
        str(sim_run),
        "--events",
        str(out / "events.jsonl"),
        "--camera",
        "cam-entrance",
        "--json",
        str(tmp_path / "score.json"),
    )
    assert code == 0, text
    for metric in ("MOTA", "IDF1", "HOTA", "entries accuracy", "dwell", "occupancy error"):
        assert metric in text
    score = json.loads((tmp_path / "score.json").read_text(encoding="utf-8"))
    assert score["entries"] == {"true": 2, "predicted": 1, "accuracy": 0.5}  # v2 never crosses
    assert score["tracking"]["mota"] > 0.8


def test_simulate_names_its_fps_option_when_the_clock_does_not_fit(
    sim_run: Path, tmp_path: Path
) -> None:
    """Positions every 200 ms, frames every 333 ms: the hint names --fps, which exists
    (it used to suggest an fps option simulate lacked, after a traceback)."""
    args = ["vision", "simulate", "--truth-dir", str(sim_run), "--camera", "cam-entrance"]
    code, text = invoke(*args, "--fps", "3", "--out", str(tmp_path / "a"))
    assert code == 2, text
    said = " ".join(text.split())
    assert "sampled every 200 ms" in said and "(--fps)" in said and "Traceback" not in said
    code, text = invoke(*args, "--fps", "2.5", "--out", str(tmp_path / "b"))  # 400 ms fits
    assert code == 0, text
    assert (tmp_path / "b" / "events.jsonl").is_file()


def test_render_then_run_with_the_motion_detector(sim_run: Path, tmp_path: Path) -> None:
    clip = tmp_path / "door.avi"
    code, text = invoke(
        "vision",
        "render",
        "--truth-dir",
        str(sim_run),
        "--camera",
        "cam-entrance",
        "--minutes",
        "0.25",
        "--out",
        str(clip),
    )
    assert code == 0, text
    assert "wrote 75 frames" in text and clip.stat().st_size > 10_000
    out = tmp_path / "run"
    code, text = invoke(
        "vision",
        "run",
        "--camera",
        "cam-entrance",
        "--source",
        str(clip),
        "--detector",
        "motion",
        "--start",
        "2026-11-02T10:00",
        "--out",
        str(out),
    )
    assert code == 0, text
    lines = (out / "events.jsonl").read_text(encoding="utf-8").splitlines()
    events = [event_adapter.validate_python(json.loads(line)) for line in lines]
    assert any(e.type == "vision.track" for e in events)
    assert min(e.ts for e in events) >= T0  # 10:00 Berlin is 09:00 UTC


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--camera", "cam-roof", "--source", "x.mp4", "--out", "o"], "unknown camera"),
        (
            [
                "run",
                "--camera",
                "cam-entrance",
                "--source",
                "missing.mp4",
                "--detector",
                "motion",
                "--out",
                "o",
            ],
            "not found",
        ),
        (
            [
                "run",
                "--camera",
                "cam-entrance",
                "--source",
                "ftp://cam/1",
                "--detector",
                "motion",
                "--out",
                "o",
            ],
            "unsupported video source",
        ),
        (["run", "--camera", "cam-entrance", "--detector", "onnx", "--out", "o"], "--model"),
        (
            ["run", "--camera", "cam-entrance", "--detector", "yolo9", "--out", "o"],
            "unknown detector",
        ),
        (
            [
                "run",
                "--camera",
                "cam-entrance",
                "--camera",
                "cam-counter",
                "--source",
                "a.mp4",
                "--detector",
                "motion",
                "--out",
                "o",
            ],
            "one per camera",
        ),
        (["run", "--camera", "cam-entrance", "--start", "at nine", "--out", "o"], "ISO time"),
        (
            [
                "run",
                "--camera",
                "cam-entrance",
                "--detector",
                "motion",
                "--tiles",
                "3by2",
                "--out",
                "o",
            ],
            "COLSxROWS",
        ),
        (
            ["run", "--camera", "cam-entrance", "--layout", "nowhere.toml", "--out", "o"],
            "no layout",
        ),
        (
            ["simulate", "--truth-dir", "nowhere", "--camera", "cam-entrance", "--out", "o"],
            "positions.parquet",
        ),
        (["eval", "--truth", "nowhere", "--events", "e.jsonl"], "no truth file"),
        (
            ["render", "--truth-dir", "nowhere", "--camera", "cam-entrance", "--out", "c.gif"],
            "positions.parquet",
        ),
    ],
)
def test_bad_input_is_refused(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, text = invoke("vision", *args)
    assert code == 2, text
    assert message in " ".join(text.split())


def test_one_destination_and_a_key_for_the_server(
    sim_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORELENS_API_KEY", raising=False)
    clip = tmp_path / "clip.avi"
    code, text = invoke(
        "vision",
        "render",
        "--truth-dir",
        str(sim_run),
        "--camera",
        "cam-entrance",
        "--minutes",
        "0.05",
        "--out",
        str(clip),
    )
    assert code == 0, text
    base = [
        "vision",
        "run",
        "--camera",
        "cam-entrance",
        "--detector",
        "motion",
        "--source",
        str(clip),
    ]
    code, text = invoke(*base, "--out", str(tmp_path / "a"), "--server", "http://x")
    assert code == 2 and "choose one" in text
    code, text = invoke(*base)
    assert code == 2 and "choose one" in text
    code, text = invoke(*base, "--server", "http://127.0.0.1:9")
    assert code == 2 and "API key" in text
    code, text = invoke(*base[:-1], str(sim_run / "truth.json"), "--out", str(tmp_path / "b"))
    assert code == 2 and "cannot decode" in " ".join(text.split())
    code, text = invoke(
        "vision", "eval", "--truth", str(sim_run), "--events", str(sim_run / "truth.json")
    )
    assert code == 2 and "not an event" in " ".join(text.split())


def test_models_are_mounted(tmp_path: Path) -> None:
    code, text = invoke("models", "list", "--cache-dir", str(tmp_path))
    assert code == 0, text
    assert "ssdlite-person" in text and "not installed" in text


def test_an_empty_shop_picture_lets_run_start_on_people(sim_run: Path, tmp_path: Path) -> None:
    clip, empty = tmp_path / "door.avi", tmp_path / "empty.png"
    code, text = invoke(
        "vision", "render", "--truth-dir", str(sim_run), "--camera", "cam-entrance",
        "--minutes", "0.1", "--out", str(clip), "--empty-shop", str(empty),
    )  # fmt: skip
    assert code == 0, text
    assert "wrote the empty shop" in text and empty.stat().st_size > 10_000
    run = ("vision", "run", "--camera", "cam-entrance", "--source", str(clip),
           "--detector", "motion", "--start", "2026-11-02T10:00")  # fmt: skip
    code, text = invoke(*run, "--background", str(empty), "--out", str(tmp_path / "run"))
    assert code == 0, text
    code, text = invoke(*run, "--background", str(empty), "--background", str(empty),
                        "--out", str(tmp_path / "two"))  # fmt: skip
    assert code == 2 and "2 --background for 1 --camera" in text
    code, text = invoke(*run, "--background", str(tmp_path / "none.png"),
                        "--out", str(tmp_path / "none"))  # fmt: skip
    assert code == 2 and "no empty-shop picture" in text
    (tmp_path / "text.png").write_text("not a picture", encoding="utf-8")
    code, text = invoke(*run, "--background", str(tmp_path / "text.png"),
                        "--out", str(tmp_path / "text"))  # fmt: skip
    assert code == 2 and "not a picture" in text
