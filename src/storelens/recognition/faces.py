"""The face pipeline: dlib detection, 5 landmarks, aligned chips, 128-d embeddings.

dlib comes from the ``dlib-bin`` wheel and its model files from
``face-recognition-models`` (the ``faces`` extra), both imported on first use only, so
``import storelens.recognition.faces`` costs nothing and a store without recognition
never loads them. dlib is called directly: the ``face_recognition`` wrapper needs
``pkg_resources`` (gone from current setuptools), and its 68-point landmark model may
not be used commercially, so the 5-point model aligns faces here.

Frames and photos live in memory only. Nothing in this module writes or logs pixels,
boxes or vectors; callers decide what (a member's embedding, under consent) is kept.
"""

from __future__ import annotations

import importlib.util
import io
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from storelens.config import Settings
from storelens.core.errors import FieldError, InvalidInput, MissingExtra
from storelens.recognition.quality import FaceGates, Verdict, judge

__all__ = [
    "CHIP_PX",
    "FacePipeline",
    "FoundFace",
    "decode_photo",
    "gates_from",
    "model_file",
]

CHIP_PX = 150  # the size dlib's ResNet was trained on
_CHIP_PADDING = 0.25
_MAX_SIDE_PX = 1600  # photos are scaled down to this first: detail beyond it costs time only

RGB = npt.NDArray[np.uint8]


def _dlib() -> Any:
    try:
        import dlib
    except ImportError as exc:
        raise MissingExtra("face recognition (dlib)", "faces") from exc
    return dlib


def model_file(name: str) -> Path:
    """A model file shipped in the ``face-recognition-models`` wheel, found without
    importing it (its ``__init__`` needs ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise MissingExtra("face models (face-recognition-models)", "faces")
    path = Path(spec.origin).parent / "models" / name
    if not path.is_file():
        raise MissingExtra(f"face model file {name}", "faces")
    return path


@dataclass(frozen=True, slots=True)
class _Models:
    detector: Any
    cnn: bool
    landmarks: Any
    encoder: Any


@lru_cache(maxsize=2)
def _models(kind: Literal["hog", "cnn"]) -> _Models:
    """Loaded once per process (the encoder alone is 22 MB)."""
    dlib = _dlib()
    detector = (
        dlib.cnn_face_detection_model_v1(str(model_file("mmod_human_face_detector.dat")))
        if kind == "cnn"
        else dlib.get_frontal_face_detector()
    )
    return _Models(
        detector=detector,
        cnn=kind == "cnn",
        landmarks=dlib.shape_predictor(str(model_file("shape_predictor_5_face_landmarks.dat"))),
        encoder=dlib.face_recognition_model_v1(
            str(model_file("dlib_face_recognition_resnet_model_v1.dat"))
        ),
    )


@dataclass(frozen=True, slots=True)
class FoundFace:
    """One face in an image: where, how sure, its landmarks, aligned chip and verdict."""

    box: tuple[int, int, int, int]  # left, top, right, bottom
    score: float
    points: npt.NDArray[np.float64]  # (5, 2)
    chip: RGB  # CHIP_PX square, aligned on the landmarks
    verdict: Verdict

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]


def gates_from(settings: Settings) -> FaceGates:
    return FaceGates(
        min_face_px=settings.faces_min_face_px,
        min_sharpness=settings.faces_min_sharpness,
        max_yaw=settings.faces_max_yaw,
        max_roll_deg=settings.faces_max_roll_deg,
    )


class FacePipeline:
    """Find faces, judge them, embed the usable ones; safe to share between threads."""

    def __init__(
        self,
        gates: FaceGates,
        *,
        detector: Literal["hog", "cnn"] = "hog",
        upsample: int = 1,
        min_score: float = 0.3,
    ) -> None:
        self.gates, self.upsample, self.min_score = gates, upsample, min_score
        self._kind: Literal["hog", "cnn"] = detector
        self._lock = threading.Lock()  # dlib's objects are not documented as thread-safe

    @classmethod
    def from_settings(cls, settings: Settings) -> FacePipeline:
        return cls(
            gates_from(settings),
            detector=settings.faces_detector,
            upsample=settings.faces_upsample,
            min_score=settings.faces_min_detection_score,
        )

    def find(self, rgb: RGB) -> list[FoundFace]:
        """Every face the detector is sure enough of, largest first, each judged."""
        image = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
        models = _models(self._kind)
        dlib = _dlib()
        with self._lock:
            if models.cnn:
                hits = [
                    (d.rect, float(d.confidence)) for d in models.detector(image, self.upsample)
                ]
            else:
                rects, scores, _ = models.detector.run(image, self.upsample, self.min_score)
                hits = list(zip(rects, (float(s) for s in scores), strict=True))
            faces = []
            for rect, score in hits:
                if score < self.min_score:
                    continue
                shape = models.landmarks(image, rect)
                points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
                chip = np.asarray(
                    dlib.get_face_chip(image, shape, size=CHIP_PX, padding=_CHIP_PADDING),
                    dtype=np.uint8,
                )
                box = (rect.left(), rect.top(), rect.right(), rect.bottom())
                verdict = judge(box[2] - box[0], chip, points, self.gates)
                faces.append(FoundFace(box, score, points, chip, verdict))
        return sorted(faces, key=lambda f: -f.width)

    def embed(self, face: FoundFace) -> npt.NDArray[np.float32]:
        """The 128-d embedding of an aligned face chip (unit-scale; distance 0.6 is
        dlib's published same-person boundary, ours is calibrated in the settings)."""
        models = _models(self._kind)
        with self._lock:
            vector = models.encoder.compute_face_descriptor(face.chip)
        return np.asarray(vector, dtype=np.float32)


def decode_photo(data: bytes, *, loc: tuple[str | int, ...], max_bytes: int) -> RGB:
    """An uploaded photo as RGB pixels (EXIF rotation applied, scaled to 1600 px at most).

    Refuses, as input errors at ``loc`` (in the body), anything that is empty, too large or not
    an image Pillow can read. The bytes are never written anywhere.
    """
    field = ".".join(str(p) for p in loc)
    if not data:
        raise InvalidInput(f"{field} is empty", _at(loc, "is empty"))
    if len(data) > max_bytes:
        raise InvalidInput(
            f"{field} is too large", _at(loc, f"is larger than {max_bytes // 2**20} MB")
        )
    try:
        from PIL import Image, ImageOps
    except ImportError as exc:  # pragma: no cover - the extra brings Pillow
        raise MissingExtra("photo decoding (Pillow)", "faces") from exc
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.thumbnail((_MAX_SIDE_PX, _MAX_SIDE_PX))
            rgb = ImageOps.exif_transpose(img).convert("RGB")
            return np.asarray(rgb, dtype=np.uint8).copy()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInput(f"{field} is not an image", _at(loc, "is not a readable image")) from exc


def _at(loc: tuple[str | int, ...], message: str) -> list[FieldError]:
    return [FieldError.at(("body", *loc), message, "photo_invalid")]
