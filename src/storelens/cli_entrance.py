"""``storelens vision recognise``: an entrance camera announcing enrolled members.

Face recognition needs a camera at face height looking at the door, not the overhead
cameras that count and track, so it runs as its own process per entrance camera: the
vision pipeline finds and tracks people (anonymous ids), and
:mod:`storelens.recognition` looks for a face only inside each track's box and only when
the store has recognition switched on and has members who consented for it. A confirmed
member becomes a staff notice, posted to the server with a device key
(:class:`~storelens.recognition.notice_poster.NoticePoster`), so the edge box needs no
staff socket of its own. Nothing of a non-member leaves the frame loop.

This module is the top layer: it is the one place that may use both ``vision`` and
``recognition``, which are siblings and never import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Annotated

import typer

from storelens.storage.command_line import DbOption, open_database_or_exit
from storelens.vision.cli import (
    LayoutOption,
    StartOption,
    check_cameras,
    cli_console,
    fail,
    open_layout,
    parse_moment,
    vision_app,
)

if TYPE_CHECKING:
    import supervision as sv

    from storelens.recognition.entrance import EntranceCamera, TrackBox
    from storelens.vision.frames import Frame

__all__ = ["entrance_hook", "recognise_command"]


def entrance_hook(
    entrance: EntranceCamera, camera_id: str
) -> Callable[[str, Frame, sv.Detections], None]:
    """The pipeline's frame hook: each tracked person's box on ``camera_id`` frames goes
    to the entrance recogniser with its anonymous track id; other cameras are ignored."""
    from storelens.recognition.entrance import TrackBox
    from storelens.vision.tracking import PERSON_ID_KEY

    def on_frame(camera: str, frame: Frame, tracked: sv.Detections) -> None:
        if camera != camera_id or len(tracked) == 0:
            return
        found = tracked.data.get(PERSON_ID_KEY)
        if found is None:
            found = [] if tracked.tracker_id is None else tracked.tracker_id
        ids = list(found)
        boxes: list[TrackBox] = [
            TrackBox(str(pid), (int(x1), int(y1), int(x2), int(y2)))
            for pid, (x1, y1, x2, y2) in zip(ids, tracked.xyxy.tolist(), strict=True)
        ]
        rgb = frame.image[:, :, ::-1]  # frames are BGR; dlib wants RGB
        entrance.frame(rgb, boxes, frame.ts)

    return on_frame


@vision_app.command("recognise")
def recognise_command(
    camera: Annotated[
        list[str], typer.Option(help="the entrance camera's id from the layout; exactly one")
    ],
    source: Annotated[str, typer.Option(help="the entrance camera: a file, RTSP URL or device")],
    server: Annotated[str, typer.Option(help="the storelens API that raises the notices")],
    api_key: Annotated[
        str, typer.Option(envvar="STORELENS_API_KEY", help="device key for --server")
    ],
    layout: LayoutOption = None,
    database_url: DbOption = None,
    detector: Annotated[
        str, typer.Option(help="person detector: motion or ssdlite-person (models install)")
    ] = "motion",
    start: StartOption = None,
    max_frames: Annotated[int | None, typer.Option(min=1, help="stop after this many")] = None,
) -> None:
    """Recognise members who enrolled with biometric consent at an entrance camera and
    raise a staff notice for each (the `faces` extra).

    The store must have recognition switched on (`storelens faces switch --store S --on`);
    otherwise no face code runs and the command says so. Members' sealed embeddings are
    read from --database-url with the faces key; a track is a member when enough of its
    frames match (settings faces_match_k of faces_match_n). Example:
    storelens vision recognise --camera cam-door-face --source rtsp://… --server http://…
    """
    from storelens.ingest.client import IngestClient
    from storelens.recognition.entrance import open_entrance
    from storelens.recognition.notice_poster import NoticeCourier, NoticePoster
    from storelens.vision.detectors import detector_factory
    from storelens.vision.pipeline import VisionPipeline
    from storelens.vision.sources import open_source

    store = open_layout(layout)
    check_cameras(store, camera)
    if len(camera) != 1:
        raise fail("give exactly one --camera: the entrance camera that sees faces")
    if detector not in ("motion", "ssdlite-person"):
        raise fail(f"--detector must be motion or ssdlite-person, not {detector!r}")
    (camera_id,) = camera
    engine, settings = open_database_or_exit(database_url)
    try:
        client = IngestClient(server, api_key, user_agent="storelens-entrance")
    except ValueError as exc:
        raise fail(str(exc)) from exc
    sink = NoticeCourier(NoticePoster(client, retry_for_s=settings.faces_notice_retry_s))
    entrance = open_entrance(engine, settings, store.store_id, sink)
    if entrance is None:
        sink.close()
        raise fail(
            f"store {store.store_id!r} has recognition switched off; an admin turns it on "
            f"with `storelens faces switch --store {store.store_id} --on`"
        )
    begin: datetime | None = parse_moment(start, store, "start")
    rate = store.camera(camera_id).fps
    try:
        factory = detector_factory(store, detector)
        frames = open_source(source, fps=rate, start=begin)
        hook = entrance_hook(entrance, camera_id)
        pipeline = VisionPipeline(store, [camera_id], factory, fps=rate, on_frame=hook)
    except (ValueError, OSError) as exc:
        raise fail(str(exc)) from exc
    console = cli_console()
    try:
        for _ in pipeline.run({camera_id: islice(frames, max_frames)}):
            pass  # the counting events belong to `vision run`; this camera only recognises
    finally:
        frames.close()
        sink.close()  # what is still queued gets its remaining seconds
        client.close()
    console.print(
        f"{pipeline.frames:,} frames; {len(sink.sent):,} member arrival(s) announced, "
        f"{sink.given_up:,} not delivered"
    )
