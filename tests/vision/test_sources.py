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
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from storelens.core.retry import Backoff, ManualClock
from storelens.vision.frames import Frame
from storelens.vision.live import camera_backoff
from storelens.vision.sources import (
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
            self.stall.wait()  # blocks like a frozen RTSP session, until the test lets go
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


class GatedCamera(ScriptedCamera):
    """A camera that delivers a new picture (value = its number) only when the test
    allows one, so what the reader thread has seen is decided by the test, not by the
    scheduler."""

    def __init__(self) -> None:
        super().__init__([])
        self.allowed = threading.Semaphore(0)
        self.made: list[weakref.ref[np.ndarray]] = []
        self.closed = threading.Event()

    def allow(self, n: int) -> None:
        self.allowed.release(n)

    def read(self) -> tuple[bool, Any]:
        while not self.allowed.acquire(timeout=0.05):
            if self.closed.is_set():
                return False, None
        picture = np.full((120, 160, 3), len(self.made) % 256, np.uint8)
        self.made.append(weakref.ref(picture))
        return True, picture


def take(source: Any, n: int, timeout_s: float = 30.0) -> list[Frame]:
    """Read ``n`` frames from a live source in a thread, so a bug cannot hang the suite
    (the timeout only guards against a hang; no test depends on it)."""
    got: list[Frame] = []
    failed: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(n):
                got.append(next(source))
        except Exception as error:
            failed.append(error)

    worker = threading.Thread(target=read)
    worker.start()
    worker.join(timeout_s)
    assert not worker.is_alive(), f"got only {len(got)} of {n} frames in {timeout_s} s"
    if failed:
        raise failed[0]
    return got


def until(check: Any, what: str, timeout_s: float = 30.0) -> None:
    """Wait for a state another thread reaches (bounded, so a bug fails instead of hanging)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


class UpperBound(random.Random):
    """Makes jitter pick the top of its range: backoff waits become exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


def exact_backoff() -> Backoff:
    """The cameras' default schedule (0.5 s doubling to 30 s, equal jitter), made exact."""
    return Backoff(0.5, 30.0, jitter="equal", rng=UpperBound())


def test_stream_reconnects_with_growing_backoff_after_dying() -> None:
    dies, frozen = threading.Event(), threading.Event()
    opener = ScriptedOpener(
        [
            ScriptedCamera(pictures(1, 10), stall=dies),  # one frame, then it dies on cue
            ScriptedCamera([], opens=False),
            ScriptedCamera([], opens=False),
            ScriptedCamera(pictures(1, 200), stall=frozen),
        ]
    )
    clock = ManualClock()
    source = open_source(
        "rtsp://cam:secret@10.0.0.21/1",
        fps=1000,
        start=START,
        opener=opener,
        backoff=exact_backoff(),
        clock=clock,
    )
    try:
        assert isinstance(source, LiveSource)
        [first] = take(source, 1)
        dies.set()
        [second] = take(source, 1)
        assert (first.index, first.image[0, 0, 0]) == (0, 10)
        assert (second.index, second.image[0, 0, 0]) == (1, 200)  # from the new connection
        assert first.ts == START
        assert second.ts >= START + timedelta(seconds=3.5)  # after 0.5 + 1 + 2 s of waiting
        assert list(source.stats.recent_backoffs_s) == [0.5, 1.0, 2.0]
        assert (source.stats.reconnects, source.stats.failed_opens) == (1, 2)
        assert opener.targets == ["rtsp://cam:secret@10.0.0.21/1"] * 4
    finally:
        dies.set()
        frozen.set()
        source.close()


def test_reconnect_loop_survives_5000_attempts_without_sleeping() -> None:
    """A camera down for hours: 2.0 ** attempt once overflowed at attempt 1024, killed
    the reconnect thread and left the consumer waiting forever."""
    dies, frozen = threading.Event(), threading.Event()
    down = [ScriptedCamera([], opens=False) for _ in range(5_000)]
    opener = ScriptedOpener(
        [
            ScriptedCamera(pictures(1, 10), stall=dies),
            *down,
            ScriptedCamera(pictures(1, 99), stall=frozen),
        ]
    )
    clock = ManualClock()
    source = open_source(
        "rtsp://cam/1", fps=1000, opener=opener, backoff=exact_backoff(), clock=clock
    )
    try:
        frames = take(source, 1)
        dies.set()
        frames += take(source, 1, timeout_s=120)
        assert [int(f.image[0, 0, 0]) for f in frames] == [10, 99]
        assert source.stats.failed_opens == 5_000
        assert source.stats.reconnects == 1
        backoffs = [s for s in clock.sleeps if s >= 0.25]  # the consumer's pacing is < 1 ms
        assert len(backoffs) == 5_001
        assert backoffs[:7] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
        assert set(backoffs[6:]) == {30.0}  # capped for good, never an overflow
    finally:
        dies.set()
        frozen.set()
        source.close()


def test_an_unexpected_error_while_reconnecting_fails_the_source() -> None:
    calls = 0

    def opener(target: str | int) -> ScriptedCamera:
        nonlocal calls
        calls += 1
        if calls == 1:
            return ScriptedCamera(pictures(1))
        raise RuntimeError("capture driver crashed")

    source = open_source(
        "rtsp://cam/1", fps=1000, opener=opener, backoff=exact_backoff(), clock=ManualClock()
    )
    try:
        assert take(source, 1)[0].index == 0
        with pytest.raises(SourceUnavailable, match="failed: RuntimeError: capture driver"):
            take(source, 1)
    finally:
        source.close()


def test_stream_that_stalls_is_reopened() -> None:
    frozen, frozen_too = threading.Event(), threading.Event()
    opener = ScriptedOpener(
        [
            ScriptedCamera(pictures(1, 10), stall=frozen),
            ScriptedCamera(pictures(1, 90), stall=frozen_too),
        ]
    )
    clock = ManualClock()
    source = open_source(
        "http://cam/mjpg",
        fps=1000,
        opener=opener,
        read_timeout_s=10.0,
        backoff=exact_backoff(),
        clock=clock,
    )
    try:
        assert take(source, 1)[0].image[0, 0, 0] == 10
        clock.advance(9.9)
        assert source.stats.stalls == 0
        clock.advance(0.1)  # nothing for read_timeout_s: the stream is frozen
        [frame] = take(source, 1)
        assert frame.image[0, 0, 0] == 90
        assert (source.stats.stalls, source.stats.reconnects) == (1, 1)
    finally:
        frozen.set()
        frozen_too.set()
        source.close()


def test_slow_consumer_sees_only_the_newest_frame_and_memory_stays_one_frame() -> None:
    camera = GatedCamera()
    source = open_source("0", fps=50, opener=ScriptedOpener([camera]), clock=ManualClock())
    try:
        camera.allow(10)
        until(lambda: source.stats.frames_read == 10, "10 frames read")
        frame = next(source)
        assert (frame.index, int(frame.image[0, 0, 0])) == (9, 9)  # the newest, not the oldest
        assert source.stats.frames_dropped == 9
        camera.allow(5)
        until(lambda: source.stats.frames_read == 15, "15 frames read")
        del frame  # the pipeline keeps only what it works on
        frame = next(source)
        assert frame.index == 14
        gc.collect()
        # the frame in hand is the only picture alive: dropped ones were not queued
        assert sum(ref() is not None for ref in camera.made) == 1
        assert camera.made[14]() is frame.image
        assert (source.stats.frames_emitted, source.stats.frames_dropped) == (2, 13)
    finally:
        camera.closed.set()
        source.close()


def test_live_frames_keep_the_sampling_fps_by_skipping() -> None:
    camera = GatedCamera()
    clock = ManualClock()
    source = open_source(
        "rtsp://cam/1", fps=20, start=START, opener=ScriptedOpener([camera]), clock=clock
    )
    try:
        indices: list[int] = []
        for _ in range(3):
            camera.allow(3)
            until(lambda: source.stats.frames_read == 3 * (len(indices) + 1), "3 more frames")
            indices.append(next(source).index)
    finally:
        camera.closed.set()
        source.close()
    assert indices == [2, 5, 8]  # a faster camera is sampled, not queued
    assert clock.sleeps == [0.05, 0.05]  # each frame one 20 fps period after the last


def test_camera_down_at_start_is_unavailable_and_webcam_index_is_an_int() -> None:
    opener = ScriptedOpener([ScriptedCamera([], opens=False)])
    with pytest.raises(SourceUnavailable, match="cannot open camera '7'"):
        open_source("7", fps=5, opener=opener)
    assert opener.targets == [7]


def test_gives_up_after_max_retries() -> None:
    opener = ScriptedOpener([ScriptedCamera(pictures(1)), ScriptedCamera([], opens=False)])
    source = open_source(
        "rtsp://cam/1",
        fps=100,
        opener=opener,
        backoff=exact_backoff(),
        max_retries=2,
        clock=ManualClock(),
    )
    try:
        assert take(source, 1)[0].index == 0
        with pytest.raises(SourceUnavailable, match="did not come back"):
            take(source, 1)
    finally:
        source.close()
    assert source.stats.failed_opens == 2
    assert list(source.stats.recent_backoffs_s) == [0.5, 1.0]


def test_close_unblocks_a_waiting_consumer() -> None:
    frozen = threading.Event()
    source = open_source(
        "rtsp://cam/1", fps=5, opener=ScriptedOpener([ScriptedCamera([], stall=frozen)])
    )
    closer = threading.Thread(target=source.close)
    closer.start()  # before or while next() waits: either way it stops, never hangs
    with pytest.raises(StopIteration):
        take(source, 1)
    closer.join()
    frozen.set()


def test_cameras_back_off_with_equal_jitter_up_to_30_s() -> None:
    backoff = camera_backoff()
    delays = [backoff.next() for _ in range(10)]
    ceilings = [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert 0.25 <= backoff.next() <= 0.5


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


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("rtsp://cam:secret@10.0.0.21/1", "rtsp://***@10.0.0.21/1"),
        ("http://10.0.0.9/video.mjpg?user=admin&pwd=hunter2", "http://10.0.0.9/video.mjpg?***"),
        ("rtsp://10.0.0.21/1", "rtsp://10.0.0.21/1"),
        ("/srv/clips/door.mp4", "/srv/clips/door.mp4"),
        (0, "0"),
        # A security review: DVR credentials in the path, path parameters, a fragment,
        # and a URL urlsplit refuses (it made the layout a 500 for every non-admin).
        ("rtsp://10.0.0.21:554/user=admin&password=s3cret&channel=1", "rtsp://10.0.0.21:554/***"),
        ("http://10.0.0.22/cgi-bin/mjpg;user=viewer;pwd=s3cret", "http://10.0.0.22/cgi-bin/***"),
        ("http://10.0.0.22/video.mjpg#pwd=s3cret", "http://10.0.0.22/video.mjpg#***"),
        ("http://viewer:s3cret@[10.0.0.22/video", "***"),
        # No host part for urlsplit, a password all the same (a second review).
        ("rtsp:/admin:s3cret@10.0.0.21/live", "rtsp:***@10.0.0.21/live"),
        ("rtsp:admin:s3cret@10.0.0.21/live", "rtsp:***@10.0.0.21/live"),
        ("//admin:s3cret@10.0.0.21/live", "***@10.0.0.21/live"),
        # A path that is itself an access token (UniFi Protect's share links).
        ("rtsps://10.0.0.5:7441/Xk3mP9qLz2WvR7tY", "rtsps://10.0.0.5:7441/***"),
        ("rtsp://10.0.0.21/live/stream1", "rtsp://10.0.0.21/live/stream1"),
        (
            "rtsp://[fe80::1]:554/Streaming/Channels/101",
            "rtsp://[fe80::1]:554/Streaming/Channels/101",
        ),
    ],
)
def test_a_camera_source_is_logged_and_shown_without_its_secrets(
    source: str | int, shown: str
) -> None:
    """One rule for the camera loop's logs and the layout shown to non-admins; the
    query of an MJPEG camera (``?pwd=``) went into the logs whole before."""
    from storelens.vision.capture import redact

    assert redact(source) == shown
