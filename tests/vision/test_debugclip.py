"""The opt-in debug clip: people blurred beyond recognition, the background untouched,
owner-only files deleted after the retention, and nothing visual on disk when it is off."""

from __future__ import annotations

import os
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import supervision as sv
from typer.testing import CliRunner

from storelens.cli import app
from storelens.core.camera import CameraView
from storelens.core.layout import StoreLayout, load_layout
from storelens.sim.render import CameraScene
from storelens.sim.run import default_layout_path
from storelens.vision.debugclip import DebugClip, DebugClips, blur_people, purge_debug_clips
from storelens.vision.frames import Frame
from storelens.vision.pipeline import VisionPipeline
from storelens.vision.tracking import PERSON_ID_KEY

CAMERA = "cam-entrance"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SPOT = np.array([[3.0, 5.0]])  # in the middle of the entrance camera's view
Image = npt.NDArray[np.uint8]


@pytest.fixture(scope="module")
def layout() -> StoreLayout:
    return load_layout(default_layout_path())


@pytest.fixture(scope="module")
def scene(layout: StoreLayout) -> CameraScene:
    return CameraScene(CameraView.from_camera(layout.camera(CAMERA)), mode="photos", layout=layout)


@pytest.fixture(scope="module")
def box(scene: CameraScene) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = scene.view.person_boxes(SPOT)[0]
    return round(x1), round(y1), round(x2), round(y2)


def detail(image: Image) -> float:
    """Edge energy: the variance of the Laplacian of the grey picture."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def tracked(xyxy: npt.ArrayLike, ids: list[str]) -> sv.Detections:
    found = sv.Detections(
        xyxy=np.asarray(xyxy, np.float32).reshape(-1, 4),
        confidence=np.full(len(ids), 0.9, np.float32),
        class_id=np.zeros(len(ids), int),
        tracker_id=np.arange(1, len(ids) + 1),
    )
    found.data[PERSON_ID_KEY] = np.array(ids)
    return found


def outside(
    shape: tuple[int, ...], box: tuple[int, int, int, int], grow: int
) -> npt.NDArray[np.bool_]:
    mask = np.ones(shape[:2], bool)
    x1, y1, x2, y2 = box
    mask[max(0, y1 - grow) : y2 + grow, max(0, x1 - grow) : x2 + grow] = False
    return mask


def test_blur_hides_the_person_and_leaves_the_background_exactly(
    scene: CameraScene, box: tuple[int, int, int, int]
) -> None:
    image = scene.draw(SPOT, ["p1"])
    x1, y1, x2, y2 = box
    assert detail(image[y1:y2, x1:x2]) > 5 * detail(scene.background[y1:y2, x1:x2])  # a person
    blurred = blur_people(image, [box])
    assert detail(blurred[y1:y2, x1:x2]) < 0.02 * detail(image[y1:y2, x1:x2])
    h, w = y2 - y1, x2 - x1
    grow = max(w, h) * 0.15 + 2
    mask = outside(image.shape, box, round(grow))
    assert np.array_equal(blurred[mask], image[mask])
    assert np.array_equal(blur_people(image, np.zeros((0, 4))), image)  # nobody: untouched
    assert blurred is not image and not np.array_equal(image, blurred)


def test_clip_frame_is_blurred_labelled_and_owner_only(
    layout: StoreLayout, scene: CameraScene, box: tuple[int, int, int, int], tmp_path: Path
) -> None:
    image = scene.draw(SPOT, ["p1"])
    folder = tmp_path / "debug"
    with DebugClip(folder, CAMERA, fps=5, layout=layout) as clip:
        for i in range(3):
            path = clip.write(
                Frame(i, T0 + timedelta(seconds=i), image), tracked([box], ["cam-entrance:abc123"])
            )
    assert path.name == "cam-entrance-20261102T09Z.avi" and clip.frames == 3
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    capture = cv2.VideoCapture(str(path))
    ok, picture = capture.read()
    written = np.asarray(picture, np.uint8)
    count = 1 + sum(1 for _ in iter(lambda: capture.read()[0], False))
    capture.release()
    assert ok and written.shape == image.shape and count == 3
    x1, y1, x2, y2 = box
    inner = (slice(y1 + 20, y2 - 4), slice(x1 + 4, x2 - 4))  # clear of the label and outline
    assert detail(written[inner]) < 0.05 * detail(image[inner])
    mask = outside(image.shape, box, 60)
    background_change = np.abs(written.astype(int) - image.astype(int))[mask].mean()
    person_change = np.abs(written.astype(int) - image.astype(int))[inner].mean()
    assert background_change < 3 and person_change > 10 * background_change  # JPEG noise only


def test_a_new_hour_starts_a_new_file_and_restarts_never_overwrite(
    scene: CameraScene, box: tuple[int, int, int, int], tmp_path: Path
) -> None:
    image = scene.draw(SPOT, ["p1"])
    with DebugClip(tmp_path, CAMERA, fps=5, labels=False) as clip:
        first = clip.write(Frame(0, T0 + timedelta(minutes=59), image), tracked([box], ["a"]))
        second = clip.write(Frame(1, T0 + timedelta(minutes=61), image), tracked([box], ["a"]))
    with DebugClip(tmp_path, CAMERA, fps=5) as again:
        third = again.write(Frame(0, T0 + timedelta(minutes=62), image), tracked([], []))
    names = [p.name for p in (first, second, third)]
    assert names == [
        "cam-entrance-20261102T09Z.avi",
        "cam-entrance-20261102T10Z.avi",
        "cam-entrance-20261102T10Z-2.avi",
    ]
    assert all(p.stat().st_size > 0 for p in (first, second, third))


def test_retention_deletes_old_clips_only(
    scene: CameraScene, box: tuple[int, int, int, int], tmp_path: Path
) -> None:
    old, fresh = (
        tmp_path / "cam-entrance-20261030T08Z.avi",
        tmp_path / "cam-counter-20261102T08Z-2.avi",
    )
    keep = [
        tmp_path / "notes.avi",
        tmp_path / "cam-entrance-20261030T08Z.mp4",
        tmp_path / "readme.txt",
    ]
    for path in [old, fresh, *keep]:
        path.write_bytes(b"x")
    two_days_ago = time.time() - 48 * 3600
    for path in [old, *keep]:
        os.utime(path, (two_days_ago, two_days_ago))
    with DebugClip(tmp_path, CAMERA, fps=5, retention_hours=24) as clip:
        assert not old.exists() and fresh.exists()  # purged when the clip opened
        assert all(p.exists() for p in keep)  # not ours: never deleted
        os.utime(fresh, (two_days_ago, two_days_ago))
        written = clip.write(Frame(0, T0, scene.draw(SPOT, ["p1"])), tracked([box], ["a"]))
        assert not fresh.exists() and written.exists()  # purged when the hour's file opened
    later = time.time() + 25 * 3600
    assert purge_debug_clips(tmp_path, 24, now=later) == [written]
    assert purge_debug_clips(tmp_path / "missing", 24) == []


def test_the_pipeline_hook_writes_one_clip_per_camera(layout: StoreLayout, tmp_path: Path) -> None:
    cameras = ["cam-entrance", "cam-counter"]
    views = {c: CameraView.from_camera(layout.camera(c)) for c in cameras}

    class Exact:
        name = "exact"

        def __init__(self, camera_id: str) -> None:
            self.view = views[camera_id]

        def detect(self, image: Image) -> sv.Detections:
            boxes = self.view.person_boxes(SPOT)
            return sv.Detections(xyxy=boxes, confidence=np.array([0.9]), class_id=np.array([0]))

    clips = DebugClips(tmp_path, layout, cameras, fps=5)
    pipeline = VisionPipeline(layout, cameras, Exact, on_frame=clips, rng_seed=1)
    blank = np.zeros((720, 1280, 3), np.uint8)
    sources = {
        c: [Frame(i, T0 + i * timedelta(milliseconds=200), blank) for i in range(6)]
        for c in cameras
    }
    list(pipeline.run(sources))
    clips.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cam-counter-20261102T09Z.avi",
        "cam-entrance-20261102T09Z.avi",
    ]
    assert {c: clip.frames for c, clip in clips.clips.items()} == {c: 6 for c in cameras}
    with pytest.raises(ValueError, match="no debug clip for camera"):
        clips("cam-roof", Frame(0, T0, blank), tracked([], []))


def write_clip(path: Path, scene: CameraScene, frames: int = 8) -> None:
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*"MJPG"), 5, (scene.width, scene.height)
    )
    for i in range(frames):
        writer.write(scene.draw(SPOT + np.array([[0.1 * i, 0.0]]), ["p1"], number=i))
    writer.release()


def test_run_writes_nothing_visual_unless_asked(
    scene: CameraScene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = tmp_path / "in" / "door.avi"
    video.parent.mkdir()
    write_clip(video, scene)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    base = ["vision", "run", "--camera", CAMERA, "--source", str(video), "--detector", "motion"]
    base += ["--start", "2026-11-02T10:00"]
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "plain")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["events.jsonl", "heatmap.png"]
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "plain", "work"]

    debug = tmp_path / "debug"
    args = [*base, "--out", str(tmp_path / "with"), "--debug-clip", str(debug)]
    result = CliRunner().invoke(app, [*args, "--debug-retention-hours", "2"])
    assert result.exit_code == 0, result.output
    (clip,) = debug.iterdir()
    assert clip.name == "cam-entrance-20261102T09Z.avi"  # 10:00 Berlin is 09:00 UTC
    assert stat.S_IMODE(clip.stat().st_mode) == 0o600
    capture = cv2.VideoCapture(str(clip))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    capture.release()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"camera_id": "../etc"}, "cannot name a file"),
        ({"camera_id": ""}, "cannot name a file"),
        ({"fps": 0}, "fps must be"),
        ({"fps": float("nan")}, "fps must be"),
        ({"retention_hours": 0}, "retention_hours must be"),
        ({"retention_hours": float("inf")}, "retention_hours must be"),
        ({"blur_kernel": 30}, "odd number"),
        ({"blur_kernel": 1}, "odd number"),
        ({"enlarge": -0.1}, "enlarge must be"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], message: str, tmp_path: Path) -> None:
    settings: dict[str, object] = {"camera_id": CAMERA, "fps": 5.0} | kwargs
    camera = settings.pop("camera_id")
    with pytest.raises(ValueError, match=message):
        DebugClip(tmp_path, camera, **settings)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_bad_frames_and_folders_are_refused(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        DebugClip(not_a_folder, CAMERA, fps=5)
    with DebugClip(tmp_path / "d", CAMERA, fps=5) as clip:
        grey = np.zeros((48, 64), np.uint8)
        with pytest.raises(ValueError, match="BGR uint8"):
            clip.write(Frame(0, T0, grey), tracked([], []))
        naive = datetime(2026, 11, 2, 9, 0)
        with pytest.raises(ValueError, match="no timezone"):
            clip.write(Frame(0, naive, np.zeros((48, 64, 3), np.uint8)), tracked([], []))
    assert list((tmp_path / "d").iterdir()) == []
    with pytest.raises(ValueError, match="BGR uint8"):
        blur_people(np.zeros((4, 4, 3), np.float32), [[0, 0, 2, 2]])
    edge = blur_people(
        np.full((40, 40, 3), 9, np.uint8), np.array([[-50, -50, 5, np.nan], [30, 30, 500, 500]])
    )
    assert edge.shape == (40, 40, 3)  # off-image and non-finite boxes are clipped or skipped
