"""The entrance camera end to end on real faces: members are recognised on k frames,
non-members leave no face data anywhere, and withdrawal, erasure or the switch stop
recognition at once. A store with recognition off never even imports face code."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import Engine, select, update

from storelens import accounts, stores
from storelens.config import Settings
from storelens.privacy import audit
from storelens.privacy.erasure import erase_customer
from storelens.recognition import store as face_store
from storelens.recognition.approval import approve, pending_approval
from storelens.recognition.enrollment import BiometricConsent, enroll
from storelens.recognition.entrance import EntranceCamera, TrackBox, open_entrance
from storelens.recognition.faces import FacePipeline
from storelens.recognition.matcher import Arrival
from storelens.storage.tables import metadata, users

RGB = npt.NDArray[np.uint8]
Frame = Callable[[RGB, int], tuple[RGB, tuple[int, int, int, int]]]
T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
STAFF = audit.Actor(name="staff-1", kind="user", role="staff")
BOSS = audit.Actor(name="boss", kind="user", role="admin")


@pytest.fixture(autouse=True)
def _published(consent_text: str) -> None:
    """Enrollment names a published consent text (conftest)."""


@pytest.fixture
def member(
    engine: Engine,
    settings: Settings,
    add_customer: Callable[[str], None],
    hopper: RGB,
    png: Callable[[RGB], bytes],
) -> str:
    """Grace Hopper, enrolled by staff with consent for cafe-01, which has recognition
    on, and approved by an admin."""
    add_customer("C-hopper")
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")
        face_store.set_recognition(conn, "cafe-01", True, by="admin", at=T0)
    done = enroll(
        engine,
        settings,
        "C-hopper",
        BiometricConsent(True, "2026-12", ("cafe-01",)),
        [png(hopper)],
        recorded_by=STAFF,
        now=T0,
    )
    with engine.begin() as conn:
        approve(conn, done.consent_id, actor=BOSS, at=T0)
    return "C-hopper"


def _walk_in(
    camera: EntranceCamera, face: RGB, frame: Frame, frames: int, track: str = "t1"
) -> list[int]:
    """Frame numbers at which an arrival was confirmed."""
    confirmed = []
    for i in range(frames):
        rgb, box = frame(face, i)
        if camera.frame(rgb, [TrackBox(track, box)], T0 + timedelta(seconds=i)):
            confirmed.append(i)
    return confirmed


def _database(engine: Engine) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        return {
            t.name: [tuple(r) for r in conn.execute(select(t)).all()]
            for t in metadata.sorted_tables
        }


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def test_a_member_is_recognised_on_the_kth_frame_of_their_track(
    engine: Engine, settings: Settings, member: str, hopper: RGB, entrance_frame: Frame
) -> None:
    arrivals: list[Arrival] = []
    camera = open_entrance(engine, settings, "cafe-01", arrivals.append)
    assert camera is not None
    assert _walk_in(camera, hopper, entrance_frame, 6) == [settings.faces_match_k - 1]
    assert [(a.customer_id, a.store_id, a.track_id) for a in arrivals] == [
        (member, "cafe-01", "t1")
    ]
    assert arrivals[0].distance < settings.faces_match_threshold


def test_a_non_member_walking_in_leaves_no_face_data_anywhere(
    engine: Engine,
    settings: Settings,
    member: str,
    astronaut: RGB,
    entrance_frame: Frame,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline = FacePipeline.from_settings(settings)
    probe = pipeline.find(entrance_frame(astronaut, 0)[0])
    assert len(probe) == 1 and probe[0].verdict.usable  # the camera does see her face
    her_vector = pipeline.embed(probe[0])
    before_db, before_files = _database(engine), _files(tmp_path)

    arrivals: list[Arrival] = []
    caplog.set_level(logging.DEBUG)
    camera = open_entrance(engine, settings, "cafe-01", arrivals.append, pipeline=pipeline)
    assert camera is not None
    assert _walk_in(camera, astronaut, entrance_frame, 6, track="anon-7") == []

    assert arrivals == []
    votes = list(camera.matcher._tracks["anon-7"].votes)
    assert votes == [None] * settings.faces_match_n  # seen, matched no one, nothing kept
    assert _database(engine) == before_db  # not one row written or changed, in any table
    assert _files(tmp_path) == before_files  # no crop, frame or vector file
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    for value in her_vector[:16]:
        for text in (f"{value:.3f}", f"{value:.6f}", repr(float(value))):
            assert text not in logged
    assert not any(
        isinstance(a, bytes | np.ndarray) for r in caplog.records for a in (r.args or ())
    )


def test_a_staff_enrollment_matches_no_one_until_an_admin_approves_it(
    engine: Engine,
    settings: Settings,
    add_customer: Callable[[str], None],
    hopper: RGB,
    png: Callable[[RGB], bytes],
    entrance_frame: Frame,
) -> None:
    """The attack this closes: staff enroll their own face under a customer's id, walk
    in, claim the notice and read the customer's history. Until an admin approves, the
    gallery holds nothing of the enrollment and the consent is not in force; a staff
    member replacing an approved member's photos starts waiting again."""
    add_customer("C-hopper")
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")
        face_store.set_recognition(conn, "cafe-01", True, by="admin", at=T0)
    consent = BiometricConsent(True, "2026-12", ("cafe-01",))
    done = enroll(engine, settings, "C-hopper", consent, [png(hopper)], recorded_by=STAFF, now=T0)
    assert done.approved is False
    arrivals: list[Arrival] = []
    camera = open_entrance(engine, settings, "cafe-01", arrivals.append)
    assert camera is not None
    assert _walk_in(camera, hopper, entrance_frame, 6) == []
    with engine.connect() as conn:
        assert not face_store.consent_active(conn, "C-hopper", "cafe-01")
        assert [r["id"] for r in pending_approval(conn, 10)] == [done.consent_id]

    with engine.begin() as conn:
        row = approve(conn, done.consent_id, actor=BOSS, at=T0 + timedelta(minutes=5))
    assert row["approved_by"] == "boss"
    camera.refresh(T0 + timedelta(minutes=5))
    assert _walk_in(camera, hopper, entrance_frame, 6, track="t2") == [settings.faces_match_k - 1]
    with engine.connect() as conn:
        assert face_store.consent_active(conn, "C-hopper", "cafe-01")
        assert pending_approval(conn, 10) == []

    enroll(engine, settings, "C-hopper", consent, [png(hopper)], recorded_by=STAFF, now=T0)
    with engine.connect() as conn:
        assert not face_store.consent_active(conn, "C-hopper", "cafe-01")
        assert len(face_store.load_gallery(conn, "cafe-01", camera.keyring)) == 0


def test_an_admins_enrollment_is_approved_as_it_is_recorded(
    engine: Engine,
    settings: Settings,
    add_customer: Callable[[str], None],
    hopper: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    add_customer("C-hopper")
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")
        face_store.set_recognition(conn, "cafe-01", True, by="admin", at=T0)
    admin = audit.Actor(name="boss", kind="user", role="admin")
    with engine.begin() as conn:  # an admin's own approval holds while they are one
        accounts.create_user(conn, "boss", "correct horse battery staple", accounts.Role.admin)
        conn.execute(update(users).values(created_at=T0 - timedelta(days=1)))  # hired before
    consent = BiometricConsent(True, "2026-12", None)
    done = enroll(engine, settings, "C-hopper", consent, [png(hopper)], recorded_by=admin, now=T0)
    assert done.approved is True
    with engine.connect() as conn:
        assert face_store.consent_active(conn, "C-hopper", "cafe-01")
        row = face_store.active_consent(conn, "C-hopper")
        assert row is not None and (row["approved_by"], row["approved_at"]) == ("boss", T0)


def test_withdrawal_stops_recognition_mid_track(
    engine: Engine, settings: Settings, member: str, hopper: RGB, entrance_frame: Frame
) -> None:
    arrivals: list[Arrival] = []
    camera = open_entrance(engine, settings, "cafe-01", arrivals.append)
    assert camera is not None
    assert _walk_in(camera, hopper, entrance_frame, settings.faces_match_k - 1) == []
    with engine.begin() as conn:  # the member withdraws at the counter (another process)
        assert face_store.withdraw(conn, member, by="staff-2", at=T0) == 1
    assert _walk_in(camera, hopper, entrance_frame, 6) == []
    assert arrivals == []
    assert member not in camera.matcher.gallery.members  # dropped, not only skipped


def test_erasing_the_customer_stops_recognition_and_leaves_no_face_rows(
    engine: Engine, settings: Settings, member: str, hopper: RGB, entrance_frame: Frame
) -> None:
    arrivals: list[Arrival] = []
    camera = open_entrance(engine, settings, "cafe-01", arrivals.append)
    assert camera is not None
    assert _walk_in(camera, hopper, entrance_frame, 1) == []
    erasure = erase_customer(engine, member, audit.SYSTEM, "test request")
    assert erasure.erased["faces"] == 2  # one embedding, one consent
    assert _database(engine)["face_embeddings"] == []
    assert _database(engine)["face_consents"] == []
    assert _walk_in(camera, hopper, entrance_frame, 6, track="t2") == []
    assert arrivals == []


def test_switching_the_store_off_stops_recognition(
    engine: Engine, settings: Settings, member: str, hopper: RGB, entrance_frame: Frame
) -> None:
    arrivals: list[Arrival] = []
    camera = open_entrance(engine, settings, "cafe-01", arrivals.append)
    assert camera is not None
    with engine.begin() as conn:
        face_store.set_recognition(conn, "cafe-01", False, by="admin", at=T0)
    assert _walk_in(camera, hopper, entrance_frame, 6) == []
    assert open_entrance(engine, settings, "cafe-01", arrivals.append) is None


def test_a_store_without_recognition_never_imports_face_code(db_url: str, engine: Engine) -> None:
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-02", "Café without recognition")
    script = textwrap.dedent(
        f"""
        import sys
        from storelens.api.app import create_app
        from storelens.config import Settings
        from storelens.recognition.entrance import open_entrance
        from storelens.storage.db import create_engine

        settings = Settings(database_url={db_url!r})
        engine = create_engine(settings.database_url)
        create_app(settings, engine=engine, run_projections=False)
        assert open_entrance(engine, settings, "cafe-02", print) is None
        loaded = sorted(m for m in sys.modules if m == "dlib" or m.startswith(("dlib.", "_dlib"))
                        or m in ("storelens.recognition.faces", "face_recognition_models", "PIL"))
        print("LOADED", loaded)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout
