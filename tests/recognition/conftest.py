"""Real faces for the recognition tests, from images that ship in installed wheels.

scikit-image's ``astronaut`` (Eileen Collins, NASA, public domain) and matplotlib's
``grace_hopper.jpg`` (US Navy, public domain) are two people we did not make. They are
cropped around the face so each detection costs milliseconds, not seconds.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import Engine

from storelens.storage.tables import customers

RGB = npt.NDArray[np.uint8]


def _png(rgb: RGB) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


def _hopper_path() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.fixture(scope="session")
def astronaut() -> RGB:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[10:250, 100:340])


@pytest.fixture(scope="session")
def hopper() -> RGB:
    from PIL import Image

    with Image.open(_hopper_path()) as img:
        face = img.convert("RGB").crop((110, 70, 440, 400)).resize((240, 240))
        return np.asarray(face, dtype=np.uint8).copy()


@pytest.fixture(scope="session")
def cat() -> RGB:
    from skimage import data

    return np.ascontiguousarray(data.chelsea())


@pytest.fixture(scope="session")
def two_people(astronaut: RGB, hopper: RGB) -> RGB:
    return np.ascontiguousarray(np.concatenate([astronaut, hopper], axis=1))


def _entrance_frame(face: RGB, frame_no: int) -> tuple[RGB, tuple[int, int, int, int]]:
    """A 480x640 entrance frame with the person at a slightly different place and light
    in each frame; returns the frame and the person's track box."""
    canvas = np.full((480, 640, 3), 90, dtype=np.uint8)
    h, w = face.shape[:2]
    x, y = 180 + 7 * (frame_no % 5), 60 + 3 * (frame_no % 3)
    light = 0.9 + 0.05 * (frame_no % 4)
    canvas[y : y + h, x : x + w] = np.clip(face.astype(np.float32) * light, 0, 255).astype(np.uint8)
    return canvas, (x - 20, y - 20, x + w + 20, min(480, y + h + 150))


def _add_customer(engine: Engine, customer_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            customers.insert().values(
                source_system="crm",
                source_record_id=customer_id,
                customer_id=customer_id,
                first_name="Test",
                created_at=datetime.now().astimezone(),
                updated_at=datetime.now().astimezone(),
            )
        )


@pytest.fixture
def png() -> Callable[[RGB], bytes]:
    return _png


@pytest.fixture
def entrance_frame() -> Callable[[RGB, int], tuple[RGB, tuple[int, int, int, int]]]:
    return _entrance_frame


@pytest.fixture
def add_customer(engine: Engine) -> Callable[[str], None]:
    return lambda customer_id: _add_customer(engine, customer_id)


CONSENT_TEXT_VERSION = "2026-12"
CONSENT_WORDS = (
    "I agree that this store keeps a digital template of my face, made from photos taken "
    "here today, so that staff are told when I come in. I can withdraw at any time, at "
    "the counter or by asking for erasure, and the template is deleted at once."
)


@pytest.fixture
def consent_text(engine: Engine) -> str:
    """The consent text enrollments name, published by an admin; its version."""
    from storelens.privacy import audit
    from storelens.recognition.consent_texts import publish

    with engine.begin() as conn:
        publish(
            conn, CONSENT_TEXT_VERSION, CONSENT_WORDS, actor=audit.SYSTEM,
            at=datetime(2026, 11, 30).astimezone(),
        )  # fmt: skip
    return CONSENT_TEXT_VERSION
