"""Video sources: file sampling by media time, and live cameras that drop and reconnect.

There is no RTSP server on this machine, so live cameras are played by `ScriptedCamera`,
a capture fed from memory that dies, refuses to reopen or stalls on cue: the accepted
stand-in for a flaky network camera. It is injected through ``open_source(opener=...)``.
"""

from __future__ import annotations

import gc
import os
import random
import threading
import time
import weakref
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from storelens.vision.frames import Frame
from storelens.vision.sources import (
    Backoff,
    FramesSource,
    LiveSource,
    SourceUnavailable,
    open_source,
)

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def write_avi(path: Path, frames: int = 50, fps: float = 25.0) -> None:
    """A small MJPG clip whose brightness tells which frame is which (5 levels apart)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i * 5, np.uint8))
    writer.release()


# --- files -------------------------------------------------------------------------------


def test_file_sampled_at_5_of_25_fps_by_media_time(tmp_path: Path) -> None:
    clip = tmp_path / "door.avi"
    write_avi(clip)
    with open_source(str(clip), fps=5, start=START) as source:
        frames = list(source)
    assert [f.index for f in frames] == list(range(10))
    assert [f.ts for f in frames] == [START + timedelta(milliseconds=200 * i) for i in range(10)]
    levels = [round(float(f.image.mean()) / 5) for f in frames]
    assert levels == list(range(0, 50, 5))  # every fifth picture of the file
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8
    stats = source.stats
    assert (stats.frames_read, stats.frames_emitted, stats.frames_dropped) == (50, 10, 40)


def test_file_start_defaults_to_mtime_less_duration(tmp_path: Path) -> None:
    clip = tmp_path / "door.avi"
    write_avi(clip, frames=50)
    finished = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)
    os.utime(clip, (finished.timestamp(), finished.timestamp()))
    with open_source(f"file://{clip}", fps=25) as source:
        first = next(source)
    assert first.ts == finished - timedelta(seconds=2)


def test_file_asked_for_more_fps_than_it_has_gives_every_frame(tmp_path: Path) -> None:
    clip = tmp_path / "door.avi"
    write_avi(clip, frames=10)
    with open_source(str(clip), fps=60, start=START) as source:
        frames = list(source)
    assert len(frames) == 10
    assert frames[1].ts - frames[0].ts == timedelta(milliseconds=40)


def test_closed_file_source_stops(tmp_path: Path) -> None:
    clip = tmp_path / "door.avi"
    write_avi(clip, frames=10)
    source = open_source(str(clip), fps=25, start=START)
    next(source)
    source.close()
    source.close()  # twice is harmless
    with pytest.raises(StopIteration):
        next(source)


# --- bad specs -----------------------------------------------------------------------------


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.mp4"):
        open_source(str(tmp_path / "nope.mp4"), fps=5)


def test_unknown_scheme_is_refused_without_leaking_the_password() -> None:
    with pytest.raises(ValueError, match="unsupported video source scheme 'ftp'") as info:
        open_source("ftp://admin:hunter2@cam/1", fps=5)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("fps", [-5, 0, float("nan"), float("inf")])
def test_fps_must_be_positive_and_finite(fps: float) -> None:
    with pytest.raises(ValueError, match="fps must be a positive number"):
        open_source("0", fps=fps, opener=lambda target: ScriptedCamera([]))


def test_naive_start_and_empty_spec_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        open_source("0", fps=5, start=datetime(2026, 11, 2, 9, 0))
    with pytest.raises(ValueError, match="empty video source"):
        open_source("  ", fps=5)


def test_file_that_is_not_video_is_unavailable(tmp_path: Path) -> None:
    notes = tmp_path / "notes.avi"
    notes.write_text("not a video")
    with pytest.raises(SourceUnavailable, match="cannot decode"):
        open_source(str(notes), fps=5)


# --- a scripted camera standing in for RTSP -------------------------------------------------


class ScriptedCamera:
    """One connection: opens or not, yields ``frames`` pictures, then dies or stalls."""

    def __init__(
        self,
        frames: list[np.ndarray],
        *,
        opens: bool = True,
        stall: threading.Event | None = None,
        pace_s: float = 0.0,
    ) -> None:
        self.frames, self.opens, self.stall, self.pace_s = frames, opens, stall, pace_s
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's spelling
        return self.opens

    def read(self) -> tuple[bool, Any]:
        if self.pace_s:
            time.sleep(self.pace_s)
        if self.frames:
            return True, self.frames.pop(0)
        if self.stall is not None:
            self.stall.wait(5.0)  # blocks like a frozen RTSP session
        return False, None

    def release(self) -> None:
        self.released = True

    def get(self, prop: int) -> float:
        return 0.0


class ScriptedOpener:
    """Hands out connections in order; records what was asked for."""

    def __init__(self, connections: list[ScriptedCamera]) -> None:
        self.connections = connections
        self.targets: list[str | int] = []

    def __call__(self, target: str | int) -> ScriptedCamera:
        self.targets.append(target)
        if len(self.connections) > 1:
            return self.connections.pop(0)
        return self.connections[0]


def pictures(n: int, value: int = 0) -> list[np.ndarray]:
    return [np.full((8, 8, 3), value, np.uint8) for _ in range(n)]


def take(source: Any, n: int, timeout_s: float = 5.0) -> list[Frame]:
    """Read ``n`` frames from a live source in a thread, so a bug cannot hang the suite."""
    got: list[Frame] = []
    failed: list[BaseException] = []

    def read() -> None:
        try:
            got.extend(next(source) for _ in range(n))
        except Exception as error:
            failed.append(error)

    worker = threading.Thread(target=read)
    worker.start()
    worker.join(timeout_s)
    assert not worker.is_alive(), f"got only {len(got)} of {n} frames in {timeout_s} s"
    if failed:
        raise failed[0]
    return got


def fast_backoff() -> Backoff:
    return Backoff(base_s=0.02, cap_s=1.0, rng=random.Random(1))


def test_stream_reconnects_with_growing_backoff_after_dying() -> None:
    opener = ScriptedOpener(
        [
            ScriptedCamera(pictures(3, 10)),
            ScriptedCamera([], opens=False),
            ScriptedCamera([], opens=False),
            ScriptedCamera(pictures(500, 200), pace_s=0.002),
        ]
    )
    source = open_source(
        "rtsp://cam:secret@10.0.0.21/1", fps=1000, opener=opener, backoff=fast_backoff()
    )
    try:
        assert isinstance(source, LiveSource)
        frames = take(source, 6)
        delays = list(source.stats.recent_backoffs_s)
        assert source.stats.reconnects == 1
        assert source.stats.failed_opens == 2
        assert len(delays) == 3
        assert delays[0] < delays[1] < delays[2]
        assert 0.01 <= delays[0] <= 0.02 and delays[2] <= 0.08
        assert frames[-1].image[0, 0, 0] == 200  # frames flow again from the new connection
        assert opener.targets == ["rtsp://cam:secret@10.0.0.21/1"] * 4
    finally:
        source.close()


def test_stream_that_stalls_is_reopened() -> None:
    frozen = threading.Event()
    opener = ScriptedOpener(
        [
            ScriptedCamera(pictures(2, 10), stall=frozen),
            ScriptedCamera(pictures(300, 90), pace_s=0.002),
        ]
    )
    source = open_source(
        "http://cam/mjpg", fps=1000, opener=opener, read_timeout_s=0.1, backoff=fast_backoff()
    )
    try:
        frames = take(source, 4)
        assert frames[-1].image[0, 0, 0] == 90
        assert source.stats.stalls == 1
        assert source.stats.reconnects == 1
    finally:
        frozen.set()
        source.close()


def test_slow_consumer_sees_only_the_newest_frame_and_memory_stays_one_frame() -> None:
    made: list[weakref.ref[np.ndarray]] = []

    class Firehose(ScriptedCamera):
        def read(self) -> tuple[bool, Any]:
            time.sleep(0.0005)
            picture = np.zeros((120, 160, 3), np.uint8)
            made.append(weakref.ref(picture))
            return True, picture

    source = open_source("0", fps=50, opener=ScriptedOpener([Firehose([])]))
    try:
        frames: list[Frame] = []
        alive_counts: list[int] = []
        for _ in range(8):
            frames.append(next(source))
            time.sleep(0.02)  # the pipeline is slower than the camera
            gc.collect()
            alive_counts.append(sum(ref() is not None for ref in made))
            del frames[:-1]  # the pipeline keeps only what it works on
        indices = [f.index for f in frames]
        assert len(made) > 40  # the camera produced far more than we took
        # slot + the reader's picture in hand + the frame the consumer holds
        assert max(alive_counts) <= 3
        assert source.stats.frames_dropped > 20
        assert source.stats.frames_emitted == 8
    finally:
        source.close()
    assert indices and indices[-1] > 8  # indices skip: old frames were dropped, not queued


def test_live_frames_keep_the_sampling_fps_by_skipping() -> None:
    fast = ScriptedCamera(pictures(2000), pace_s=0.001)
    source = open_source("rtsp://cam/1", fps=20, start=START, opener=ScriptedOpener([fast]))
    try:
        frames = take(source, 5)
    finally:
        source.close()
    gaps = [(b.ts - a.ts).total_seconds() for a, b in pairwise(frames)]
    assert all(gap >= 0.035 for gap in gaps)  # 50 ms period; generous for scheduling
    assert all(b.index - a.index > 1 for a, b in pairwise(frames))
    assert frames[0].ts >= START


def test_camera_down_at_start_is_unavailable_and_webcam_index_is_an_int() -> None:
    opener = ScriptedOpener([ScriptedCamera([], opens=False)])
    with pytest.raises(SourceUnavailable, match="cannot open camera '7'"):
        open_source("7", fps=5, opener=opener)
    assert opener.targets == [7]


def test_gives_up_after_max_retries() -> None:
    opener = ScriptedOpener([ScriptedCamera(pictures(1)), ScriptedCamera([], opens=False)])
    source = open_source(
        "rtsp://cam/1", fps=100, opener=opener, backoff=fast_backoff(), max_retries=2
    )
    try:
        assert take(source, 1)[0].index == 0
        with pytest.raises(SourceUnavailable, match="did not come back"):
            take(source, 1)
    finally:
        source.close()
    assert source.stats.failed_opens == 2


def test_close_unblocks_a_waiting_consumer() -> None:
    frozen = threading.Event()
    source = open_source(
        "rtsp://cam/1", fps=5, opener=ScriptedOpener([ScriptedCamera([], stall=frozen)])
    )
    threading.Timer(0.1, source.close).start()
    with pytest.raises(StopIteration):
        next(source)
    frozen.set()


def test_backoff_is_capped_and_resets() -> None:
    backoff = Backoff(base_s=1.0, cap_s=30.0, rng=random.Random(3))
    delays = [backoff.next_delay() for _ in range(10)]
    assert all(15.0 <= d <= 30.0 for d in delays[6:])
    assert delays == sorted(delays[:6]) + delays[6:]
    backoff.reset()
    assert 0.5 <= backoff.next_delay() <= 1.0
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s=0)


def test_frames_source_passes_frames_through_and_closes_generators() -> None:
    closed: list[bool] = []

    def scene() -> Any:
        try:
            for i in range(5):
                yield Frame(i, START + timedelta(seconds=i), np.zeros((2, 2, 3), np.uint8))
        finally:
            closed.append(True)

    with FramesSource(scene()) as source:
        assert [f.index for f in (next(source), next(source))] == [0, 1]
    assert closed == [True]
    assert source.stats.frames_emitted == 2
    with pytest.raises(StopIteration):
        next(source)
