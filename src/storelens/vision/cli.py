"""``storelens vision``: run cameras through the pipeline and score what it wrote.

``vision simulate`` and ``vision render`` feed it the simulator's people; they live in
:mod:`storelens.cli_vision` and register themselves here, because the simulator
depends on vision and never the reverse. The helpers in ``__all__`` are shared with them.

Heavy parts (OpenCV, onnxruntime, the tracker) load inside the commands, so ``storelens
--help`` stays quick on a small edge box.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape

from storelens.core.errors import StorelensError
from storelens.core.paths import unwritable, write_error

if TYPE_CHECKING:
    from storelens.core.layout import StoreLayout
    from storelens.vision.outputs import EventWriter
    from storelens.vision.pipeline import PipelineUpdates, VisionPipeline

__all__ = [
    "CameraOption",
    "LayoutOption",
    "StartOption",
    "StitchOption",
    "check_cameras",
    "cli_console",
    "drive",
    "event_writer",
    "fail",
    "open_layout",
    "parse_moment",
    "vision_app",
]

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


def cli_console() -> Console:
    return Console(width=120, log_path=False)  # per call: CliRunner swaps stdout


def fail(message: str, code: int = 2) -> typer.Exit:
    """The vision commands' error line, as ``storage.command_line.print_error`` writes
    it for the others (vision may not import storage: it runs on camera boxes)."""
    Console(stderr=True, soft_wrap=True, highlight=False).print(
        f"[red]error:[/red] {escape(message)}"
    )
    return typer.Exit(code)


def open_layout(path: Path | None) -> StoreLayout:
    """The ``--layout`` file, or the sample café's; a bad file exits with code 2."""
    from storelens.core.layout import load_layout
    from storelens.samples import sample_layout_path

    target = path or sample_layout_path()
    if not target.is_file():
        raise fail(f"no layout file at {target}")
    try:
        return load_layout(target)
    except StorelensError as exc:
        raise fail(str(exc)) from exc


def check_cameras(layout: StoreLayout, cameras: list[str]) -> None:
    known = [camera.id for camera in layout.cameras]
    if not cameras:
        raise fail(f"name a camera with --camera; {layout.store_id} has {known}")
    if unknown := [c for c in cameras if c not in known]:
        raise fail(f"unknown camera {', '.join(unknown)}; {layout.store_id} has {known}")


def parse_moment(text: str | None, layout: StoreLayout, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"--{name} {text!r} is not an ISO time such as 2026-11-02T08:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(layout.timezone))


def _one_destination(out: Path | None, server: str | None, outbox: Path | None) -> None:
    if sum(v is not None for v in (out, server, outbox)) != 1:
        raise fail("choose one of --out DIR, --server URL or --outbox FILE")


def event_writer(
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
        raise fail(str(exc)) from exc


def drive(
    pipeline: VisionPipeline,
    updates: Iterable[PipelineUpdates],
    writer: EventWriter,
    total: int | None = None,
) -> None:
    """Write events as they come, with a progress bar in frames per second."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from storelens.vision.outputs import VisionEvents

    builder = VisionEvents(pipeline.layout.store_id, pipeline.occupancy_camera)
    console = cli_console()
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
    background: Annotated[
        list[Path] | None,
        typer.Option(
            help="per --camera, in order: a picture of that camera's empty shop (motion only); "
            "the detector starts from it, so a camera may start on a full room"
        ),
    ] = None,
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

    store = open_layout(layout)
    check_cameras(store, camera)
    specs = source or [store.camera(c).source for c in camera]
    if len(specs) != len(camera):
        raise fail(f"{len(specs)} --source for {len(camera)} --camera; give one per camera")
    _one_destination(out, server, outbox)
    begin = parse_moment(start, store, "start")
    if background and len(background) != len(camera):
        raise fail(f"{len(background)} --background for {len(camera)} --camera; give one each")
    plates = dict(zip(camera, background, strict=True)) if background else None
    try:
        factory = detector_factory(store, detector, model, tiles, plates)
    except ValueError as exc:
        raise fail(str(exc)) from exc
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
        raise fail(str(exc)) from exc
    writer = event_writer(store, out, server, api_key, outbox)

    try:
        sources = {c: islice(s, max_frames) for c, s in opened.items()}
        drive(pipeline, pipeline.run(sources), writer)
    except (RuntimeError, StorelensError) as exc:
        raise fail(str(exc), 1) from exc
    finally:
        for s in opened.values():
            s.close()
        if clips is not None:
            clips.close()


@vision_app.command("eval")
def eval_command(
    truth: Annotated[Path, typer.Option(help="truth.json, or the sim run folder holding it")],
    events: Annotated[Path, typer.Option(help="the pipeline's events.jsonl")],
    camera: Annotated[
        list[str] | None, typer.Option(help="score only what these cameras see (default: all)")
    ] = None,
    layout: Annotated[
        Path | None,
        typer.Option(
            help="store layout .toml (default: the packaged layout truth.json names; "
            "pass your own when the simulation ran on it)"
        ),
    ] = None,
    line: Annotated[list[str] | None, typer.Option(help="count lines for footfall")] = None,
    exclude_staff: Annotated[bool, typer.Option(help="drop staff from truth")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the score")] = None,
) -> None:
    """Score events against simulator truth: MOTA, IDF1, HOTA, footfall, dwell, occupancy."""
    import json

    from storelens.vision.evaluate import evaluate, print_score

    if json_out is not None and (problem := unwritable("--json", json_out)):
        raise fail(problem)  # before the scoring, not after it
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
        raise fail(str(exc)) from exc
    print_score(score, cli_console())
    if json_out is not None:
        try:
            json_out.write_text(json.dumps(score.to_json(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise fail(write_error("--json", json_out, exc)) from None
