"""``storelens vision``: run cameras through the pipeline, simulate it, render, score it.

Heavy parts (OpenCV, onnxruntime, the tracker) load inside the commands, so ``storelens
--help`` stays quick on a small edge box.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from storelens.core.errors import StorelensError

if TYPE_CHECKING:
    from storelens.core.layout import StoreLayout
    from storelens.vision.outputs import EventWriter
    from storelens.vision.pipeline import PipelineUpdates, VisionPipeline

__all__ = ["vision_app"]

vision_app = typer.Typer(
    help="Camera video to anonymous floor tracks, footfall, occupancy, dwell and heatmaps.",
    no_args_is_help=True,
)

LayoutOption = Annotated[
    Path | None, typer.Option("--layout", help="store layout .toml (default: the sample café)")
]
CameraOption = Annotated[
    list[str], typer.Option("--camera", help="camera id from the layout; repeat for several")
]
StartOption = Annotated[
    str | None, typer.Option(help="ISO time; without an offset it is the store's local time")
]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="write DIR/events.jsonl and DIR/heatmap.png")
]
StitchOption = Annotated[
    bool,
    typer.Option(
        "--stitch/--no-stitch",
        help="repair tracker id switches on the floor: stitch tracks, chain visits door to door",
    ),
]


def _console() -> Console:
    return Console(width=120, log_path=False)  # per call: CliRunner swaps stdout


def _fail(message: str, code: int = 2) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _layout(path: Path | None) -> StoreLayout:
    from storelens.core.layout import load_layout
    from storelens.sim.run import default_layout_path

    target = path or default_layout_path()
    if not target.is_file():
        raise _fail(f"no layout file at {target}")
    try:
        return load_layout(target)
    except StorelensError as exc:
        raise _fail(str(exc)) from exc


def _check_cameras(layout: StoreLayout, cameras: list[str]) -> None:
    known = [camera.id for camera in layout.cameras]
    if not cameras:
        raise _fail(f"name a camera with --camera; {layout.store_id} has {known}")
    if unknown := [c for c in cameras if c not in known]:
        raise _fail(f"unknown camera {', '.join(unknown)}; {layout.store_id} has {known}")


def _moment(text: str | None, layout: StoreLayout, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"--{name} {text!r} is not an ISO time such as 2026-11-02T08:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(layout.timezone))


def _one_destination(out: Path | None, server: str | None, outbox: Path | None) -> None:
    if sum(v is not None for v in (out, server, outbox)) != 1:
        raise _fail("choose one of --out DIR, --server URL or --outbox FILE")


def _writer(
    layout: StoreLayout,
    out: Path | None,
    server: str | None,
    api_key: str | None,
    outbox: Path | None,
) -> EventWriter:
    from storelens.vision.outputs import ApiWriter, JsonlWriter, OutboxWriter

    _one_destination(out, server, outbox)
    try:
        if out is not None:
            return JsonlWriter(out, layout)
        if server is not None:
            return ApiWriter(server, api_key or "")
        assert outbox is not None
        return OutboxWriter(outbox)
    except (ValueError, OSError, StorelensError) as exc:
        raise _fail(str(exc)) from exc


def _drive(
    pipeline: VisionPipeline,
    updates: Iterable[PipelineUpdates],
    writer: EventWriter,
    total: int | None = None,
) -> None:
    """Write events as they come, with a progress bar in frames per second."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from storelens.vision.outputs import VisionEvents

    builder = VisionEvents(pipeline.layout.store_id, pipeline.occupancy_camera)
    console = _console()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    began = time.perf_counter()
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("frames", total=total, rate="")
            for update in updates:
                writer.write(builder.events(update))
                elapsed = time.perf_counter() - began
                rate = f"{pipeline.frames:,} frames, {pipeline.frames / max(elapsed, 1e-9):,.0f}/s"
                progress.update(task, completed=pipeline.frames, rate=rate)
    finally:
        writer.close()
    counts = ", ".join(f"{n:,} {t}" for t, n in sorted(builder.counts.items()))
    console.print(f"{pipeline.frames:,} frames in {time.perf_counter() - began:.1f} s: {counts}")
    heatmap = getattr(writer, "heatmap_path", None)
    path = getattr(writer, "path", None)
    if path is not None:
        console.print(f"wrote {path}" + (f" and {heatmap}" if heatmap else ""))


@vision_app.command("run")
def run_command(
    camera: CameraOption,
    source: Annotated[
        list[str] | None,
        typer.Option(
            help="per --camera, in order: a video file, rtsp://… URL or webcam index "
            "(default: the camera's source in the layout)"
        ),
    ] = None,
    layout: LayoutOption = None,
    detector: Annotated[str, typer.Option(help="ssdlite-person, onnx or motion")] = (
        "ssdlite-person"
    ),
    model: Annotated[Path | None, typer.Option(help="ONNX model for --detector onnx")] = None,
    tiles: Annotated[
        str,
        typer.Option(help="CNN tiles: auto, none or COLSxROWS (3x2 finds people far away)"),
    ] = "auto",
    fps: Annotated[float | None, typer.Option(min=0.1, max=60, help="frames per second")] = None,
    start: StartOption = None,
    out: OutOption = None,
    server: Annotated[str | None, typer.Option(help="post events to this storelens API")] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="STORELENS_API_KEY", help="device key for --server")
    ] = None,
    outbox: Annotated[Path | None, typer.Option(help="queue events in this edge outbox")] = None,
    stitch: StitchOption = True,
    max_frames: Annotated[int | None, typer.Option(min=1, help="stop after this many")] = None,
    debug_clip: Annotated[
        Path | None,
        typer.Option(
            help="also write DIR/<camera>-<hour>.avi (owner-only) of the analysed frames with "
            "every detected person blurred, labelled with track and zone; off by default"
        ),
    ] = None,
    debug_retention_hours: Annotated[
        float, typer.Option(min=0.01, help="delete debug clips older than this")
    ] = 24.0,
) -> None:
    """Analyse camera video: people → tracks on the floor plan → vision.* events.

    Frames stay in memory; only anonymous positions, counts and heat leave the process
    (and, with --debug-clip, a blurred video that is deleted after the retention).
    Example: storelens vision run --camera cam-entrance --source door.mp4 --out runs/door
    """
    from storelens.vision.debugclip import DebugClips
    from storelens.vision.detectors import detector_factory
    from storelens.vision.pipeline import VisionPipeline, repairs
    from storelens.vision.sources import open_source

    store = _layout(layout)
    _check_cameras(store, camera)
    specs = source or [store.camera(c).source for c in camera]
    if len(specs) != len(camera):
        raise _fail(f"{len(specs)} --source for {len(camera)} --camera; give one per camera")
    _one_destination(out, server, outbox)
    begin = _moment(start, store, "start")
    try:
        factory = detector_factory(store, detector, model, tiles)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    rate = fps or max(store.camera(c).fps for c in camera)
    try:
        clips = None
        if debug_clip is not None:
            hours = debug_retention_hours
            clips = DebugClips(debug_clip, store, camera, fps=rate, retention_hours=hours)
        opened = {
            c: open_source(s, fps=rate, start=begin) for c, s in zip(camera, specs, strict=True)
        }
        pipeline = VisionPipeline(
            store, camera, factory, fps=rate, on_frame=clips, **repairs(stitch)
        )
    except (ValueError, OSError, StorelensError) as exc:
        raise _fail(str(exc)) from exc
    writer = _writer(store, out, server, api_key, outbox)

    try:
        sources = {c: islice(s, max_frames) for c, s in opened.items()}
        _drive(pipeline, pipeline.run(sources), writer)
    except (RuntimeError, StorelensError) as exc:
        raise _fail(str(exc), 1) from exc
    finally:
        for s in opened.values():
            s.close()
        if clips is not None:
            clips.close()


@vision_app.command("simulate")
def simulate_command(
    truth_dir: Annotated[Path, typer.Option(help="a `storelens sim run` folder with positions")],
    camera: CameraOption,
    out: Annotated[Path, typer.Option(help="write DIR/events.jsonl and DIR/heatmap.png")],
    layout: LayoutOption = None,
    start: StartOption = None,
    end: StartOption = None,
    miss_rate: Annotated[float, typer.Option(min=0, max=0.99)] = 0.10,
    false_positives: Annotated[float, typer.Option(min=0, help="false alarms per frame")] = 0.1,
    jitter: Annotated[float, typer.Option(min=0, max=0.5, help="box edge wobble")] = 0.04,
    id_switches_per_min: Annotated[float, typer.Option(min=0)] = 1.0,
    seed: int = 0,
    stitch: StitchOption = True,
) -> None:
    """Run the simulator's people through the pipeline as noisy detections, without video.

    This is how accuracy is measured: score the result with `storelens vision eval`.
    """
    from storelens.sim.detections import DetectionNoise, IdSwitches, SyntheticDetections
    from storelens.vision.pipeline import VisionPipeline, merge_by_time, renaming_hook, repairs

    store = _layout(layout)
    _check_cameras(store, camera)
    positions = truth_dir / "positions.parquet"
    if not positions.is_file():
        raise _fail(
            f"no positions.parquet in {truth_dir}; run `storelens sim run --positions-fps 5`"
        )
    lo, hi = _moment(start, store, "start"), _moment(end, store, "end")
    noise = DetectionNoise(miss_rate, false_positives, jitter, seed=seed)
    switches = {c: IdSwitches(id_switches_per_min, seed + i) for i, c in enumerate(camera)}
    try:
        cams = [SyntheticDetections(positions, store, c, noise, start=lo, end=hi) for c in camera]
        pipeline = VisionPipeline(
            store,
            camera,
            after_tracking=renaming_hook(switches),
            rng_seed=seed,
            **repairs(stitch),
        )
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    streams = {c: ((f.ts, f) for f in det) for c, det in zip(camera, cams, strict=True)}
    frames = ((c, f.ts, f.detections) for c, f in merge_by_time(streams))
    total = None
    if lo is not None and hi is not None:
        total = len(camera) * int((hi - lo) / timedelta(milliseconds=cams[0].step_ms))
    _drive(pipeline, pipeline.run_detections(frames), _writer(store, out, None, None, None), total)


@vision_app.command("eval")
def eval_command(
    truth: Annotated[Path, typer.Option(help="truth.json, or the sim run folder holding it")],
    events: Annotated[Path, typer.Option(help="the pipeline's events.jsonl")],
    camera: Annotated[
        list[str] | None, typer.Option(help="score only what these cameras see (default: all)")
    ] = None,
    layout: LayoutOption = None,
    line: Annotated[list[str] | None, typer.Option(help="count lines for footfall")] = None,
    exclude_staff: Annotated[bool, typer.Option(help="drop staff from truth")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the score")] = None,
) -> None:
    """Score events against simulator truth: MOTA, IDF1, HOTA, footfall, dwell, occupancy."""
    import json

    from storelens.vision.evaluate import evaluate, print_score

    try:
        score = evaluate(
            truth,
            events,
            camera_ids=camera or None,
            layout=layout,
            line_ids=line or None,
            exclude_staff=exclude_staff,
        )
    except (ValueError, FileNotFoundError, StorelensError) as exc:
        raise _fail(str(exc)) from exc
    print_score(score, _console())
    if json_out is not None:
        json_out.write_text(json.dumps(score.to_json(), indent=2) + "\n", encoding="utf-8")


@vision_app.command("render")
def render_command(
    truth_dir: Annotated[Path, typer.Option(help="a `storelens sim run` folder with positions")],
    camera: Annotated[str, typer.Option(help="camera id from the layout")],
    out: Annotated[Path, typer.Option(help="video file to write (.mp4 or .avi)")],
    layout: LayoutOption = None,
    start: StartOption = None,
    minutes: Annotated[float, typer.Option(min=0.05, max=24 * 60)] = 1.0,
    mode: Annotated[str, typer.Option(help="figures or photos")] = "figures",
    fps: Annotated[float | None, typer.Option(min=0.1, max=60)] = None,
) -> None:
    """Film the simulator's people with one camera (for demos and `vision run`)."""
    store = _layout(layout)
    _check_cameras(store, [camera])
    positions = truth_dir / "positions.parquet"
    if not positions.is_file():
        raise _fail(
            f"no positions.parquet in {truth_dir}; run `storelens sim run --positions-fps 5`"
        )
    if mode not in ("figures", "photos"):
        raise _fail(f"--mode must be figures or photos, not {mode!r}")
    if out.suffix.lower() not in (".mp4", ".avi"):
        raise _fail(f"{out} must end in .mp4 or .avi")
    lo = _moment(start, store, "start") or _first_position(positions)
    count = _write_video(store, positions, camera, out, lo, minutes, mode, fps)
    _console().print(f"wrote {count:,} frames to {out}")


def _first_position(positions: Path) -> datetime:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    first = pc.min(pq.read_table(positions, columns=["ts"]).column("ts")).as_py()
    if first is None:
        raise _fail(f"{positions} holds no positions")
    return first  # type: ignore[no-any-return]


def _write_video(
    store: StoreLayout,
    positions: Path,
    camera: str,
    out: Path,
    lo: datetime,
    minutes: float,
    mode: str,
    fps: float | None,
) -> int:
    import cv2

    from storelens.sim.render import render_camera

    rate = fps or store.camera(camera).fps
    width, height = store.camera(camera).resolution or (1280, 720)
    fourcc = cv2.VideoWriter.fourcc(*("mp4v" if out.suffix.lower() == ".mp4" else "MJPG"))
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), fourcc, rate, (width, height))
    if not writer.isOpened():
        raise _fail(f"cannot write video to {out}")
    count = 0
    try:
        hi = lo + timedelta(minutes=minutes)
        for frame in render_camera(positions, store, camera, fps=rate, start=lo, end=hi, mode=mode):  # type: ignore[arg-type]
            writer.write(frame.image)
            count += 1
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    finally:
        writer.release()
    return count
