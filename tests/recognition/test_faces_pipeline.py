"""The dlib pipeline itself: both detectors, the gates on real faces, and the error a
missing ``faces`` extra gives."""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from storelens.config import Settings
from storelens.core.errors import InvalidInput, MissingExtra
from storelens.recognition import faces
from storelens.recognition.faces import CHIP_PX, FacePipeline, decode_photo

RGB = npt.NDArray[np.uint8]


@pytest.mark.parametrize(("detector", "upsample"), [("hog", 1), ("cnn", 0)])
def test_each_detector_finds_the_one_face_and_embeds_it(
    astronaut: RGB, cat: RGB, detector: str, upsample: int
) -> None:
    pipeline = FacePipeline.from_settings(
        Settings(faces_detector=detector, faces_upsample=upsample)
    )
    found = pipeline.find(astronaut)
    assert len(found) == 1
    face = found[0]
    assert face.verdict.usable, face.verdict.reasons
    assert face.chip.shape == (CHIP_PX, CHIP_PX, 3)
    assert face.points.shape == (5, 2)
    x1, y1, x2, _ = face.box
    assert 60 < x2 - x1 < 130 and 40 < x1 < 140 and 30 < y1 < 120  # her face, not the patch
    vector = pipeline.embed(face)
    assert vector.shape == (128,)
    assert 0.5 < float(np.linalg.norm(vector)) < 1.5
    assert pipeline.find(cat) == []


def test_two_photos_of_one_person_are_closer_than_two_people(astronaut: RGB, hopper: RGB) -> None:
    pipeline = FacePipeline.from_settings(Settings())
    settings = Settings()

    def embed(img: RGB) -> np.ndarray:
        return pipeline.embed(pipeline.find(img)[0])

    her = embed(astronaut)
    her_again = embed(np.ascontiguousarray(astronaut[:, ::-1]))  # mirrored: another view
    other = embed(hopper)
    assert np.linalg.norm(her - her_again) < settings.faces_match_threshold
    assert np.linalg.norm(her - other) > settings.faces_match_threshold


def test_a_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    faces._models.cache_clear()
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    with pytest.raises(MissingExtra, match=r"storelens\[faces\]"):
        FacePipeline.from_settings(Settings()).find(np.zeros((50, 50, 3), dtype=np.uint8))
    faces._models.cache_clear()
    with pytest.raises(MissingExtra, match=r"storelens\[faces\]"):
        faces.model_file("no_such_model.dat")


def test_photos_are_decoded_or_refused_by_position(png: Callable[[RGB], bytes], cat: RGB) -> None:
    rgb = decode_photo(png(cat), loc=("photos", 0), max_bytes=10**7)
    assert rgb.shape == cat.shape
    for data, message in ((b"", "is empty"), (b"\x89PNG broken", "not a readable image")):
        with pytest.raises(InvalidInput) as err:
            decode_photo(data, loc=("photos", 2), max_bytes=10**7)
        assert err.value.errors[0].path == ("body", "photos", 2)
        assert message in err.value.errors[0].msg
    with pytest.raises(InvalidInput, match="too large"):
        decode_photo(png(cat), loc=("photos", 0), max_bytes=100)
