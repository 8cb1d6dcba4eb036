"""``storelens vision simulate`` and ``storelens vision render``: the simulator's people
fed to the vision pipeline, as noisy detections or as filmed video.

They register themselves on :data:`storelens.vision.cli.vision_app` (``storelens.cli``
imports this module), so the commands stay under ``storelens vision`` while vision itself
never imports the simulator. Like ``storelens.cli`` this is the top layer, the one that
may use both. Import-time cost is Typer only; the simulator and OpenCV load when a
command runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from storelens.vision.cli import (
    CameraOption,
    LayoutOption,
    StartOption,
    StitchOption,
    check_cameras,
    cli_console,
    drive,
    event_writer,
    fail,
    open_layout,
    parse_moment,
    vision_app,
)

if TYPE_CHECKING:
    from storelens.core.layout import StoreLayout

__all__ = ["render_command", "simulate_command"]


@vision_app.command("simulate")
def simulate_command(
    truth_dir: Annotated[Path, typer.Option(help="a `storelens sim run` folder with positions")],
    camera: CameraOption,
    out: Annotated[Path, typer.Option(help="write DIR/events.jsonl and DIR/heatmap.png")],
    layout: LayoutOption = None,
    start: StartOption = None,
    end: StartOption = None,
    miss_rate: Annotated[
        float, typer.Option(min=0, max=0.99, help="share of detections missed")
    ] = 0.10,
    false_positives: Annotated[float, typer.Option(min=0, help="false alarms per frame")] = 0.1,
    jitter: Annotated[float, typer.Option(min=0, max=0.5, help="box edge wobble")] = 0.04,
    id_switches_per_min: Annotated[
        float, typer.Option(min=0, help="forced track-id switches per minute per camera")
    ] = 1.0,
    seed: int = 0,
    stitch: StitchOption = True,
    fps: Annotated[
        float | None,
        typer.Option(min=0.1, max=60, help="frames per second (default: the cameras')"),
    ] = None,
) -> None:
    """Run the simulator's people through the pipeline as noisy detections, without video.

    This is how accuracy is measured: score the result with `storelens vision eval`.
    """
    from storelens.sim.detections import DetectionNoise, IdSwitches, SyntheticDetections
    from storelens.vision.pipeline import VisionPipeline, merge_by_time, renaming_hook, repairs

    store = open_layout(layout)
    check_cameras(store, camera)
    positions = truth_dir / "positions.parquet"
    if not positions.is_file():
        raise fail(
            f"no positions.parquet in {truth_dir}; run `storelens sim run --positions-fps 5`"
        )
    lo, hi = parse_moment(start, store, "start"), parse_moment(end, store, "end")
    noise = DetectionNoise(miss_rate, false_positives, jitter, seed=seed)
    switches = {c: IdSwitches(id_switches_per_min, seed + i) for i, c in enumerate(camera)}
    try:
        cams = [
            SyntheticDetections(positions, store, c, noise, fps=fps, start=lo, end=hi)
            for c in camera
        ]
        pipeline = VisionPipeline(
            store,
            camera,
            after_tracking=renaming_hook(switches),
            fps=fps,
            rng_seed=seed,
            **repairs(stitch),
        )
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc
    streams = {c: ((f.ts, f) for f in det) for c, det in zip(camera, cams, strict=True)}
    frames = ((c, f.ts, f.detections) for c, f in merge_by_time(streams))
    total = None
    if lo is not None and hi is not None:
        total = len(camera) * int((hi - lo) / timedelta(milliseconds=cams[0].step_ms))
    writer = event_writer(store, out, None, None, None)
    try:
        drive(pipeline, pipeline.run_detections(frames), writer, total)
    except ValueError as exc:  # positions whose clock the frames cannot land on
        raise fail(str(exc)) from exc


@vision_app.command("render")
def render_command(
    truth_dir: Annotated[Path, typer.Option(help="a `storelens sim run` folder with positions")],
    camera: Annotated[str, typer.Option(help="camera id from the layout")],
    out: Annotated[Path, typer.Option(help="video file to write (.mp4 or .avi)")],
    layout: LayoutOption = None,
    start: StartOption = None,
    minutes: Annotated[
        float, typer.Option(min=0.05, max=24 * 60, help="how many minutes to film from --start")
    ] = 1.0,
    mode: Annotated[str, typer.Option(help="figures or photos")] = "figures",
    fps: Annotated[
        float | None,
        typer.Option(min=0.1, max=60, help="frames per second (default: the camera's)"),
    ] = None,
    empty_shop: Annotated[
        Path | None,
        typer.Option(
            help="also write this camera's view of the empty shop (.png), for "
            "`vision run --background`"
        ),
    ] = None,
) -> None:
    """Film the simulator's people with one camera (for demos and `vision run`)."""
    store = open_layout(layout)
    check_cameras(store, [camera])
    positions = truth_dir / "positions.parquet"
    if not positions.is_file():
        raise fail(
            f"no positions.parquet in {truth_dir}; run `storelens sim run --positions-fps 5`"
        )
    if mode not in ("figures", "photos"):
        raise fail(f"--mode must be figures or photos, not {mode!r}")
    if out.suffix.lower() not in (".mp4", ".avi"):
        raise fail(f"{out} must end in .mp4 or .avi")
    lo = parse_moment(start, store, "start") or _first_position(positions)
    count = _write_video(store, positions, camera, out, lo, minutes, mode, fps)
    cli_console().print(f"wrote {count:,} frames to {out}")
    if empty_shop is not None:
        _write_empty_shop(store, camera, empty_shop, mode)
        cli_console().print(f"wrote the empty shop to {empty_shop}")


def _write_empty_shop(store: StoreLayout, camera: str, out: Path, mode: str) -> None:
    import cv2
    import numpy as np

    from storelens.core.camera import CameraView
    from storelens.sim.render import CameraScene

    view = CameraView.from_camera(store.camera(camera))
    scene = CameraScene(view, mode=mode, layout=store)  # type: ignore[arg-type]
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), scene.draw(np.zeros((0, 2)))):
        raise fail(f"cannot write a picture to {out}")


def _first_position(positions: Path) -> datetime:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    first = pc.min(pq.read_table(positions, columns=["ts"]).column("ts")).as_py()
    if first is None:
        raise fail(f"{positions} holds no positions")
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
        raise fail(f"cannot write video to {out}")
    count = 0
    try:
        hi = lo + timedelta(minutes=minutes)
        for frame in render_camera(positions, store, camera, fps=rate, start=lo, end=hi, mode=mode):  # type: ignore[arg-type]
            writer.write(frame.image)
            count += 1
    except ValueError as exc:
        raise fail(str(exc)) from exc
    finally:
        writer.release()
    return count
