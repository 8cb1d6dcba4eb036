"""`storelens vision recognise`: the pipeline's tracked boxes reach the entrance
recogniser with their anonymous ids (and only the entrance camera's), and a store with
recognition off is refused before any face code or server is touched."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest
import supervision as sv
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from storelens import accounts, stores
from storelens.cli import app
from storelens.cli_entrance import entrance_hook
from storelens.config import Settings
from storelens.privacy import audit
from storelens.recognition import store as face_store
from storelens.recognition.enrollment import BiometricConsent, enroll
from storelens.recognition.entrance import open_entrance
from storelens.recognition.matcher import Arrival
from storelens.storage.tables import users
from storelens.vision.frames import Frame
from storelens.vision.tracking import PERSON_ID_KEY

RGB = npt.NDArray[np.uint8]
T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
ADMIN = audit.Actor(name="boss", kind="user", role="admin")  # approved as recorded


@pytest.fixture(autouse=True)
def _published(consent_text: str) -> None:
    """Enrollment names a published consent text (conftest)."""


def _tracked(box: tuple[int, int, int, int], person: str) -> sv.Detections:
    return sv.Detections(
        xyxy=np.array([box], dtype=float),
        tracker_id=np.array([1]),
        data={PERSON_ID_KEY: np.array([person])},
    )


def test_the_hook_feeds_tracked_boxes_in_rgb_and_ignores_other_cameras(
    engine: Engine,
    settings: Settings,
    add_customer: Callable[[str], None],
    hopper: RGB,
    png: Callable[[RGB], bytes],
    entrance_frame: Callable[[RGB, int], tuple[RGB, tuple[int, int, int, int]]],
) -> None:
    add_customer("C-hopper")
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")
        face_store.set_recognition(conn, "cafe-01", True, by="admin", at=T0)
        accounts.create_user(conn, ADMIN.name, "correct horse battery staple", accounts.Role.admin)
        conn.execute(update(users).values(created_at=T0 - timedelta(days=1)))  # hired before
    consent = BiometricConsent(True, "2026-12", ("cafe-01",))
    enroll(engine, settings, "C-hopper", consent, [png(hopper)], recorded_by=ADMIN, now=T0)
    arrivals: list[Arrival] = []
    entrance = open_entrance(engine, settings, "cafe-01", arrivals.append)
    assert entrance is not None
    hook = entrance_hook(entrance, "cam-door")

    def frame(n: int) -> tuple[Frame, sv.Detections]:
        rgb, box = entrance_frame(hopper, n)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # as cameras deliver them
        return Frame(index=n, ts=T0 + timedelta(seconds=n / 5), image=bgr), _tracked(box, "p-7")

    for n in range(settings.faces_match_k):  # another camera's frames are not looked at
        hook("cam-counter", *frame(n))
    assert arrivals == []
    for n in range(settings.faces_match_k):
        hook("cam-door", *frame(n))
    assert [(a.customer_id, a.track_id) for a in arrivals] == [("C-hopper", "p-7")]


def test_a_store_with_recognition_off_is_refused(db_url: str, engine: Engine) -> None:
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")
    result = CliRunner().invoke(
        app,
        [
            "vision", "recognise", "--camera", "cam-entrance", "--source", "missing.mp4",
            "--server", "http://127.0.0.1:9", "--api-key", "k", "--database-url", db_url,
        ],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "switched off" in result.output


@pytest.mark.parametrize("cameras", [[], ["cam-entrance", "cam-counter"]])
def test_exactly_one_camera_is_required(db_url: str, cameras: list[str]) -> None:
    args = [a for c in cameras for a in ("--camera", c)]
    result = CliRunner().invoke(
        app,
        ["vision", "recognise", *args, "--source", "x.mp4", "--server", "http://127.0.0.1:9",
         "--api-key", "k", "--database-url", db_url],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
