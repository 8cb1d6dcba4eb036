"""Person detection with an ONNX model in onnxruntime, on the CPU.

Two output layouts are understood: YOLOv8/11 exports (one ``[1, 4 + classes, N]``
tensor of centre boxes and class scores, float input letterboxed to a fixed size) and
TensorFlow Object Detection SSD graphs (uint8 image in, ``num_detections``, ``scores``,
normalised ``[ymin, xmin, ymax, xmax]`` boxes and 1-based ``classes`` out, NMS inside).

Small models squeeze a wide 1280x720 frame into 300x300 and lose the people at the back,
so the frame can be cut into overlapping tiles (`storelens.vision.detectors.tiling`, which
also merges their boxes). The decoding and letterbox steps are pure numpy functions so
they can be checked without a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from storelens.core.errors import MissingExtra
from storelens.vision.detectors.tiling import (
    Boxes,
    auto_grid,
    cut_flags,
    merge_tiles,
    nms,
    tile_grid,
)
from storelens.vision.frames import PERSON_CLASS_ID

if TYPE_CHECKING:
    import supervision as sv

__all__ = [
    "Boxes",
    "OnnxDetector",
    "auto_grid",
    "decode_ssd",
    "decode_yolo",
    "letterbox",
    "merge_tiles",
    "nms",
    "ssdlite_person",
    "tile_grid",
    "unletterbox",
]

Layout = Literal["auto", "yolo", "ssd"]
Tiles = tuple[int, int] | Literal["auto"] | None

COCO_PERSON = 0
"""YOLO exports number COCO classes from 0; person is the first."""
TF_PERSON_LABEL = 1
"""TF Object Detection labels start at 1; person is 1 in COCO and in one-class person models."""
SSD_INPUT = 300


def _empty() -> tuple[Boxes, npt.NDArray[np.float32]]:
    return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def decode_yolo(
    output: npt.NDArray[np.floating[Any]],
    *,
    score_threshold: float,
    class_id: int = COCO_PERSON,
) -> tuple[Boxes, npt.NDArray[np.float32]]:
    """Boxes (in model input pixels) whose best class is ``class_id`` and clears the threshold.

    Accepts ``[1, 4 + C, N]`` as exported and its transpose ``[1, N, 4 + C]``.
    """
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3 and out.shape[0] == 1:
        out = out[0]
    if out.ndim == 2 and out.shape[0] > out.shape[1]:  # [N, 4+C]: anchors outnumber channels
        out = out.T
    if out.ndim != 2 or out.shape[0] < 5:
        raise ValueError(f"expected a YOLO output of shape [1, 4+classes, N], got {output.shape}")
    if class_id >= out.shape[0] - 4:
        raise ValueError(f"class {class_id} is not among the model's {out.shape[0] - 4} classes")
    scores = out[4:]
    best = scores.argmax(axis=0)
    conf = scores[class_id]
    keep = (best == class_id) & (conf >= score_threshold)
    if not keep.any():
        return _empty()
    cx, cy, w, h = out[:4, keep]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return xyxy.astype(np.float32), conf[keep].astype(np.float32)


def decode_ssd(
    num: npt.NDArray[Any],
    scores: npt.NDArray[Any],
    boxes: npt.NDArray[Any],
    classes: npt.NDArray[Any],
    *,
    width: int,
    height: int,
    score_threshold: float,
    label: int = TF_PERSON_LABEL,
) -> tuple[Boxes, npt.NDArray[np.float32]]:
    """Pixel boxes for ``label`` from the four TF Object Detection outputs of one image."""
    n = int(np.asarray(num).reshape(-1)[0])
    s = np.asarray(scores, np.float32).reshape(-1)[:n]
    c = np.rint(np.asarray(classes).reshape(-1)[:n]).astype(np.int64)
    b = np.asarray(boxes, np.float32).reshape(-1, 4)[:n]
    if not (len(s) == len(c) == len(b) == n):
        raise ValueError(f"SSD outputs disagree: {n} detections, {len(s)} scores, {len(b)} boxes")
    keep = (c == label) & (s >= score_threshold)
    if not keep.any():
        return _empty()
    ymin, xmin, ymax, xmax = np.clip(b[keep], 0.0, 1.0).T
    xyxy = np.stack([xmin * width, ymin * height, xmax * width, ymax * height], axis=1)
    return xyxy.astype(np.float32), s[keep]


def letterbox(
    image: npt.NDArray[np.uint8], size: tuple[int, int], fill: int = 114
) -> tuple[npt.NDArray[np.uint8], float, tuple[float, float]]:
    """Fit ``image`` into ``size`` (width, height) keeping its aspect; returns scale and padding."""
    import cv2

    h, w = image.shape[:2]
    tw, th = size
    scale = min(tw / w, th / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(
        image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    px, py = (tw - nw) / 2, (th - nh) / 2
    out = np.full((th, tw, image.shape[2]), fill, np.uint8)
    top, left = round(py - 0.1), round(px - 0.1)
    out[top : top + nh, left : left + nw] = resized
    return out, scale, (float(left), float(top))


def unletterbox(xyxy: Boxes, scale: float, pad: tuple[float, float]) -> Boxes:
    """Boxes from letterboxed model pixels back to the original image's pixels."""
    offset = np.array([pad[0], pad[1], pad[0], pad[1]], np.float32)
    return ((xyxy - offset) / np.float32(scale)).astype(np.float32)


_SSD_OUTPUTS = ("num_detections", "detection_scores", "detection_boxes", "detection_classes")


def _ssd_names(outputs: list[str]) -> list[str] | None:
    found = [
        next((o for o in outputs if o.split(":")[0].endswith(key)), None) for key in _SSD_OUTPUTS
    ]
    return None if None in found else [o for o in found if o is not None]


def _is_grid(tiles: object) -> bool:
    return (
        isinstance(tiles, tuple)
        and len(tiles) == 2
        and all(isinstance(t, int) and t >= 1 for t in tiles)
    )


class OnnxDetector:
    """A person detector over any YOLOv8/11 or TF-OD SSD ONNX export (see the module doc)."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        layout: Layout = "auto",
        score_threshold: float = 0.4,
        nms_iou: float = 0.5,
        tiles: Tiles = None,
        tile_overlap: float = 0.15,
        threads: int = 2,
        input_size: int | None = None,
        name: str | None = None,
    ) -> None:
        _require(layout in ("auto", "yolo", "ssd"), f"layout must be auto, yolo or ssd: {layout!r}")
        _require(0 <= score_threshold <= 1, f"score_threshold must be in [0, 1]: {score_threshold}")
        _require(0 <= nms_iou <= 1, f"nms_iou must be in [0, 1]: {nms_iou}")
        _require(0 <= tile_overlap < 0.5, f"tile_overlap must be in [0, 0.5): {tile_overlap}")
        ok = tiles is None or tiles == "auto" or _is_grid(tiles)
        _require(ok, f"tiles must be None, 'auto' or (cols, rows) >= 1: {tiles!r}")
        _require(threads >= 1, f"threads must be at least 1: {threads}")
        _require(input_size is None or input_size >= 1, f"input_size must be >= 1: {input_size}")
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX model at {path}")
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingExtra("onnxruntime", "vision") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own pybind types for a bad file
            raise ValueError(f"{path} is not a model onnxruntime can load: {exc}") from exc
        self._session, self.name = session, name or f"onnx:{path.stem}"
        self.score_threshold, self.nms_iou = score_threshold, nms_iou
        self.tiles, self.tile_overlap = tiles, tile_overlap
        inp, outputs = session.get_inputs()[0], [o.name for o in session.get_outputs()]
        self._input, ssd = inp.name, _ssd_names(outputs)
        yolo = len(outputs) == 1 and len(session.get_outputs()[0].shape) == 3
        if layout == "auto":
            _require(ssd is not None or yolo, f"{path}: unknown layout of {outputs}; pass layout=")
            layout = "ssd" if ssd is not None else "yolo"
        self.layout: Literal["yolo", "ssd"] = layout
        self._half = "float16" in inp.type
        if layout == "ssd":
            _require(ssd is not None, f"{path}: SSD layout needs {_SSD_OUTPUTS}, has {outputs}")
            self._outputs = ssd or []
            self.input_size: tuple[int, int] = (input_size or SSD_INPUT,) * 2
        else:
            _require(yolo, f"{path}: YOLO layout needs one [1, 4+C, N] output, has {outputs}")
            self._outputs = outputs
            h, w = list(inp.shape)[2:4] if len(inp.shape) == 4 else (None, None)
            side = input_size or 640
            self.input_size = (w if isinstance(w, int) else side, h if isinstance(h, int) else side)

    def grid(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """The tiles one frame of this size is cut into (one tile when tiling is off)."""
        if self.tiles is None:
            return [(0, 0, width, height)]
        if self.tiles == "auto":
            cols, rows = auto_grid(width, height, max(self.input_size), self.tile_overlap)
        else:
            cols, rows = self.tiles
        return tile_grid(width, height, cols, rows, self.tile_overlap)

    def detect(self, image: npt.NDArray[np.uint8]) -> sv.Detections:
        """People in a BGR frame, as pixel boxes in the full frame."""
        try:
            import supervision as sv
        except ImportError:
            raise MissingExtra("supervision", "vision") from None
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            kind = getattr(image, "dtype", type(image))
            raise TypeError(f"expected a uint8 numpy image, got {kind}")
        if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 2:
            raise ValueError(f"expected a BGR image of shape (height, width, 3), got {image.shape}")
        height, width = image.shape[:2]
        tiles = self.grid(width, height)
        boxes, scores, owner, cut = [], [], [], []
        for k, tile in enumerate(tiles):
            x1, y1, x2, y2 = tile
            found, conf = self._infer(image[y1:y2, x1:x2])
            found += np.array([x1, y1, x1, y1], np.float32)
            boxes.append(found)
            scores.append(conf)
            owner.append(np.full(len(conf), k, np.intp))
            cut.append(cut_flags(found, tile, width, height) & (len(tiles) > 1))
        conf = np.concatenate(scores)
        keep, merged = merge_tiles(
            np.concatenate(boxes), conf, np.concatenate(owner), np.concatenate(cut), self.nms_iou
        )
        np.clip(merged, 0, [width, height, width, height], out=merged)
        return sv.Detections(
            xyxy=merged.astype(np.float32),
            confidence=conf[keep].astype(np.float32),
            class_id=np.full(len(keep), PERSON_CLASS_ID, dtype=int),
        )

    def _infer(self, bgr: npt.NDArray[np.uint8]) -> tuple[Boxes, npt.NDArray[np.float32]]:
        import cv2

        h, w = bgr.shape[:2]
        if self.layout == "ssd":
            # The graph squeezes any input to its square; area-averaging first is kinder
            # to small people than the graph's bilinear resize, and cheaper. The models
            # want RGB: swapping channels after shrinking costs almost nothing.
            small = cv2.resize(bgr, self.input_size, interpolation=cv2.INTER_AREA)
            small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
            out = self._session.run(self._outputs, {self._input: small[None]})
            return decode_ssd(*out, width=w, height=h, score_threshold=self.score_threshold)
        boxed, scale, pad = letterbox(bgr, self.input_size)
        rgb = cv2.cvtColor(boxed, cv2.COLOR_BGR2RGB)
        blob = rgb.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255)
        if self._half:
            blob = blob.astype(np.float16)
        (out,) = self._session.run(self._outputs, {self._input: blob})
        xyxy, conf = decode_yolo(out, score_threshold=self.score_threshold)
        return unletterbox(xyxy, scale, pad), conf


def ssdlite_person(*, cache_dir: str | Path | None = None, **kwargs: Any) -> OnnxDetector:
    """The default CPU person detector, from the model cache (``storelens models install``)."""
    from storelens.vision.models import model_path, spec

    model = spec("ssdlite-person")
    options: dict[str, Any] = {"layout": model.layout, "tiles": "auto", "name": model.name}
    options |= {"input_size": model.input_size, **kwargs}
    return OnnxDetector(model_path(model.name, cache_dir), **options)
