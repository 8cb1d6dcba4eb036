"""The ONNX person detector: pure decoding and tiling steps, tiny hand-built models, the real one.

The tiny models are written byte by byte below (the ``onnx`` package is not a storelens
dependency): graphs that ignore their image and return fixed tensors, so the letterbox
and tile arithmetic around a real onnxruntime session can be checked exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storelens.vision.detectors import parse_tiles
from storelens.vision.detectors.onnx import (
    OnnxDetector,
    auto_grid,
    decode_ssd,
    decode_yolo,
    letterbox,
    merge_tiles,
    nms,
    ssdlite_person,
    tile_grid,
    unletterbox,
)
from storelens.vision.detectors.tiling import cut_flags
from storelens.vision.frames import PERSON_CLASS_ID

# --- a minimal ONNX writer (protobuf wire format) ----------------------------------------

FLOAT, UINT8 = 1, 2


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _int(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def _msg(num: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, elem: int, dims: list[int | str]) -> bytes:
    shape = b"".join(_msg(1, _int(1, d) if isinstance(d, int) else _msg(2, d)) for d in dims)
    return _msg(1, name) + _msg(2, _msg(1, _int(1, elem) + _msg(2, shape)))


def _tensor(name: str, array: np.ndarray) -> bytes:
    dims = b"".join(_int(1, d) for d in array.shape)
    return dims + _int(2, FLOAT) + _msg(8, name) + _msg(9, array.astype("<f4").tobytes())


def write_constant_model(
    path: Path, image: tuple[int, list[int | str]], outputs: dict[str, np.ndarray]
) -> Path:
    """A model with one image input that returns ``outputs`` whatever the image is."""
    elem, dims = image
    graph = _msg(2, "constant")
    graph += _msg(11, _value_info("image", elem, dims))
    for k, (name, value) in enumerate(outputs.items()):
        graph += _msg(5, _tensor(f"c{k}", value))
        graph += _msg(1, _msg(1, f"c{k}") + _msg(2, name) + _msg(4, "Identity"))
        graph += _msg(12, _value_info(name, FLOAT, list(value.shape)))
    model = _int(1, 8) + _msg(8, _msg(1, "") + _int(2, 13)) + _msg(7, graph)
    path.write_bytes(model)
    return path


def yolo_output(rows: list[tuple[float, float, float, float, float, float]]) -> np.ndarray:
    """``[1, 6, N]``: cx, cy, w, h, person score, other-class score per anchor.

    Padded with empty anchors to at least 8, as real exports have thousands of anchors
    (that is how the decoder tells ``[1, 4+C, N]`` from its transpose).
    """
    padded = rows + [(0.0,) * 6] * max(0, 8 - len(rows))
    return np.array(padded, np.float32).T[None]


def ssd_outputs(
    boxes: list[list[float]], scores: list[float], classes: list[float]
) -> dict[str, np.ndarray]:
    n = len(scores)
    return {
        "num_detections:0": np.array([n], np.float32),
        "detection_scores:0": np.array([scores], np.float32),
        "detection_boxes:0": np.array([boxes], np.float32).reshape(1, n, 4),
        "detection_classes:0": np.array([classes], np.float32),
    }


def iou(a: np.ndarray, b: np.ndarray) -> float:
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(rb - lt, 0, None)))
    area = lambda r: float((r[2] - r[0]) * (r[3] - r[1]))  # noqa: E731
    return inter / (area(a) + area(b) - inter)


# --- decoding ----------------------------------------------------------------------------


def test_decode_yolo_keeps_people_above_threshold_that_are_their_best_class() -> None:
    out = yolo_output(
        [
            (50, 40, 20, 30, 0.9, 0.1),  # person
            (10, 10, 4, 4, 0.3, 0.0),  # person, too weak
            (80, 80, 10, 10, 0.6, 0.8),  # more likely the other class
            (30, 60, 10, 20, 0.5, 0.2),  # person
        ]
    )
    xyxy, conf = decode_yolo(out, score_threshold=0.4)
    np.testing.assert_allclose(xyxy, [[40, 25, 60, 55], [25, 50, 35, 70]])
    np.testing.assert_allclose(conf, [0.9, 0.5], rtol=1e-6)
    assert xyxy.dtype == np.float32 and conf.dtype == np.float32
    # the [1, N, 4+C] transpose some exporters write decodes the same
    t_xyxy, _ = decode_yolo(out.transpose(0, 2, 1), score_threshold=0.4)
    np.testing.assert_allclose(t_xyxy, xyxy)


def test_decode_yolo_empty_and_bad_shapes() -> None:
    xyxy, conf = decode_yolo(yolo_output([(5, 5, 2, 2, 0.1, 0.0)]), score_threshold=0.4)
    assert xyxy.shape == (0, 4) and conf.shape == (0,)
    with pytest.raises(ValueError, match="YOLO output"):
        decode_yolo(np.zeros((1, 3, 10), np.float32), score_threshold=0.4)
    with pytest.raises(ValueError, match="YOLO output"):
        decode_yolo(np.zeros((6, 10, 2), np.float32), score_threshold=0.4)
    with pytest.raises(ValueError, match="class 5"):
        decode_yolo(np.zeros((1, 6, 10), np.float32), score_threshold=0.4, class_id=5)


def test_decode_ssd_reads_normalised_yx_boxes_and_stops_at_num_detections() -> None:
    out = ssd_outputs(
        boxes=[[0.1, 0.2, 0.5, 0.4], [0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.9, 1.2], [0, 0, 1, 1]],
        scores=[0.8, 0.9, 0.6, 0.99],
        classes=[1, 2, 1, 1],
    )
    out["num_detections:0"] = np.array([3], np.float32)  # the fourth slot is padding
    xyxy, conf = decode_ssd(*out.values(), width=200, height=100, score_threshold=0.5)
    # class 2 is not a person; the box past 1.0 is clipped to the image
    np.testing.assert_allclose(xyxy, [[40, 10, 80, 50], [100, 50, 200, 90]], rtol=1e-6)
    np.testing.assert_allclose(conf, [0.8, 0.6], rtol=1e-6)
    xyxy, _ = decode_ssd(*out.values(), width=200, height=100, score_threshold=0.7)
    assert len(xyxy) == 1


def test_decode_ssd_rejects_outputs_that_disagree() -> None:
    out = ssd_outputs([[0, 0, 1, 1]], [0.9], [1])
    out["num_detections:0"] = np.array([2], np.float32)
    with pytest.raises(ValueError, match="disagree"):
        decode_ssd(*out.values(), width=10, height=10, score_threshold=0.5)


# --- letterbox, NMS, tiles -----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(100, 200), (300, 120), (64, 64), (7, 500)])
def test_letterbox_round_trip(shape: tuple[int, int]) -> None:
    h, w = shape
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    boxed, scale, (px, py) = letterbox(image, (64, 48))
    assert boxed.shape == (48, 64, 3) and boxed.dtype == np.uint8
    assert scale == pytest.approx(min(64 / w, 48 / h))
    # the picture sits centred; the bands around it are the fill colour
    assert px >= 0 and py >= 0 and (px == 0 or py == 0)
    if py >= 1:
        assert (boxed[: int(py)] == 114).all()
    if px >= 1:
        assert (boxed[:, : int(px)] == 114).all()
    original = np.array([[0, 0, w, h], [w * 0.25, h * 0.5, w * 0.5, h * 0.75]], np.float32)
    forward = original * np.float32(scale) + np.array([px, py, px, py], np.float32)
    np.testing.assert_allclose(unletterbox(forward, scale, (px, py)), original, atol=1e-3)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    xyxy = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.6, 0.9, 0.5, 0.2], np.float32)
    assert nms(xyxy, scores, 0.5).tolist() == [1, 2]
    assert sorted(nms(xyxy, scores, 0.9).tolist()) == [0, 1, 2]  # only the exact copy goes
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).shape == (0,)


def test_tile_grid_covers_the_frame_with_overlap() -> None:
    tiles = tile_grid(1280, 720, 2, 2, 0.15)
    assert len(tiles) == 4
    (ax1, ay1, ax2, ay2), (bx1, _, bx2, _), (_, cy1, _, cy2), _ = tiles
    assert (ax1, ay1) == (0, 0) and tiles[-1][2:] == (1280, 720)
    assert bx2 == 1280 and cy2 == 720
    width = ax2 - ax1
    assert bx2 - bx1 == pytest.approx(width, abs=1)
    assert ax2 - bx1 == pytest.approx(0.15 * width, abs=1)  # the shared strip
    assert ay2 - cy1 == pytest.approx(0.15 * (ay2 - ay1), abs=1)
    covered = np.zeros((720, 1280), bool)
    for x1, y1, x2, y2 in tiles:
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    assert tile_grid(640, 480, 1, 1, 0.15) == [(0, 0, 640, 480)]


@pytest.mark.parametrize("args", [(0, 1, 0.1), (2, -1, 0.1), (2, 2, 1.0), (2, 2, -0.1)])
def test_tile_grid_rejects_bad_arguments(args: tuple[int, int, float]) -> None:
    with pytest.raises(ValueError):
        tile_grid(100, 100, *args)


def test_auto_grid_keeps_tiles_within_the_ratio() -> None:
    assert auto_grid(1280, 720, 300, 0.15) == (2, 1)
    assert auto_grid(1280, 720, 640, 0.15) == (1, 1)
    cols, rows = auto_grid(3840, 2160, 300, 0.15)
    for x1, y1, x2, y2 in tile_grid(3840, 2160, cols, rows, 0.15):
        assert max(x2 - x1, y2 - y1) <= 2.5 * 300 + 1
    assert auto_grid(3840, 2160, 300, 0.15, ratio=10) == (2, 1)
    assert auto_grid(100, 100, 300, 0.15) == (1, 1)
    with pytest.raises(ValueError, match="bad input size"):
        auto_grid(1280, 720, 0, 0.15)


def test_merge_prefers_the_whole_box_over_one_cut_by_a_tile_edge() -> None:
    # A person at x 500..620 in a frame tiled at x=0..600 and 520..1120: the left tile
    # sees them cut at its edge (more confidently), the right tile sees them whole.
    xyxy = np.array([[500, 100, 600, 400], [502, 98, 620, 402]], np.float32)
    scores = np.array([0.95, 0.7], np.float32)
    keep, boxes = merge_tiles(xyxy, scores, np.array([0, 1]), np.array([True, False]), 0.5)
    assert keep.tolist() == [1]
    np.testing.assert_allclose(boxes, [[502, 98, 620, 402]])


def test_merge_joins_two_cut_halves_when_no_tile_held_the_person() -> None:
    xyxy = np.array([[400, 100, 600, 500], [520, 105, 700, 495]], np.float32)
    keep, boxes = merge_tiles(
        xyxy, np.array([0.8, 0.9], np.float32), np.array([0, 1]), np.array([True, True]), 0.5
    )
    assert keep.tolist() == [1]
    np.testing.assert_allclose(boxes, [[400, 100, 700, 500]])


def test_merge_keeps_two_cut_people_who_do_not_line_up() -> None:
    # Both touch the seam, but one is a child (half the height) and one pair does not overlap.
    xyxy = np.array([[400, 100, 600, 500], [520, 300, 700, 500], [900, 100, 1000, 500]], np.float32)
    keep, boxes = merge_tiles(
        xyxy,
        np.array([0.8, 0.9, 0.7], np.float32),
        np.array([0, 1, 1]),
        np.array([True, True, True]),
        0.5,
    )
    assert sorted(keep.tolist()) == [0, 1, 2]
    np.testing.assert_allclose(boxes[np.argsort(keep)], xyxy)


def test_cut_flags_mark_boxes_reaching_inner_tile_sides_only() -> None:
    tile = (588, 0, 1280, 389)  # top-right of a 2x2 grid: inner sides are left and bottom
    boxes = np.array(
        [
            [958, 207, 1180, 386],  # 3 px short of the bottom seam: the model's rounding
            [597, 50, 700, 200],  # 9 px from the left seam (2% of 692 is 13.8)
            [1100, 0, 1280, 200],  # on the frame's own top and right edges
            [700, 100, 900, 300],  # well inside
        ],
        np.float32,
    )
    assert cut_flags(boxes, tile, 1280, 720).tolist() == [True, True, False, False]
    assert not cut_flags(boxes, (0, 0, 1280, 720), 1280, 720).any()


def test_merge_leaves_a_small_person_inside_a_big_one_in_the_same_tile() -> None:
    # A child in front of an adult: containment only merges across tiles.
    xyxy = np.array([[100, 100, 300, 500], [150, 300, 230, 480]], np.float32)
    keep, _ = merge_tiles(
        xyxy, np.array([0.9, 0.8], np.float32), np.array([0, 0]), np.array([False, False]), 0.5
    )
    assert sorted(keep.tolist()) == [0, 1]


# --- the detector around a real onnxruntime session -----------------------------------------


@pytest.fixture
def yolo_model(tmp_path: Path) -> Path:
    out = yolo_output(
        [
            (32, 32, 20, 20, 0.9, 0.0),  # person in the middle of the 64x64 input
            (10, 40, 8, 8, 0.1, 0.95),  # not a person
        ]
    )
    return write_constant_model(tmp_path / "yolo.onnx", (FLOAT, [1, 3, 64, 64]), {"output0": out})


@pytest.fixture
def ssd_model(tmp_path: Path) -> Path:
    out = ssd_outputs([[0.2, 0.25, 0.8, 0.75], [0, 0, 0.1, 0.1]], [0.9, 0.8], [1, 3])
    return write_constant_model(tmp_path / "ssd.onnx", (UINT8, [1, "h", "w", 3]), out)


def test_yolo_model_boxes_come_back_in_frame_pixels(yolo_model: Path) -> None:
    det = OnnxDetector(yolo_model)
    assert det.layout == "yolo" and det.input_size == (64, 64) and det.name == "onnx:yolo"
    found = det.detect(np.zeros((64, 128, 3), np.uint8))  # scale 0.5, 16 px bands top and bottom
    np.testing.assert_allclose(found.xyxy, [[44, 12, 84, 52]])
    assert found.xyxy.dtype == np.float32 and found.confidence is not None
    assert found.class_id is not None and found.class_id.tolist() == [PERSON_CLASS_ID]


def test_ssd_model_with_tiles_maps_each_tile_back(ssd_model: Path) -> None:
    det = OnnxDetector(ssd_model, tiles=(2, 1), tile_overlap=0.0)
    assert det.layout == "ssd" and det.input_size == (300, 300)
    found = det.detect(np.zeros((100, 400, 3), np.uint8))
    order = np.argsort(found.xyxy[:, 0])
    # the same normalised box in each 200x100 tile; class 3 dropped in both
    np.testing.assert_allclose(found.xyxy[order], [[50, 20, 150, 80], [250, 20, 350, 80]])
    assert found.class_id is not None and set(found.class_id.tolist()) == {PERSON_CLASS_ID}
    assert OnnxDetector(ssd_model, tiles="auto").grid(1280, 720) == tile_grid(1280, 720, 2, 1, 0.15)


def test_detector_rejects_bad_models_and_settings(tmp_path: Path, ssd_model: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        OnnxDetector(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="onnxruntime can load"):
        OnnxDetector(garbage)
    with pytest.raises(ValueError, match="layout must be"):
        OnnxDetector(ssd_model, layout="detr")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="YOLO layout"):
        OnnxDetector(ssd_model, layout="yolo")
    for bad in ((0, 2), (2,), "many", (1.5, 2)):
        with pytest.raises(ValueError, match="tiles must be"):
            OnnxDetector(ssd_model, tiles=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="score_threshold"):
        OnnxDetector(ssd_model, score_threshold=1.5)
    with pytest.raises(ValueError, match="threads"):
        OnnxDetector(ssd_model, threads=0)
    with pytest.raises(ValueError, match="input_size"):
        OnnxDetector(ssd_model, input_size=0)
    two = write_constant_model(
        tmp_path / "two.onnx",
        (FLOAT, [1, 3, 8, 8]),
        {"a": np.zeros((1, 4), np.float32), "b": np.zeros((1, 4), np.float32)},
    )
    with pytest.raises(ValueError, match="unknown layout"):
        OnnxDetector(two)


def test_detect_rejects_images_that_are_not_bgr_uint8(ssd_model: Path) -> None:
    det = OnnxDetector(ssd_model)
    with pytest.raises(TypeError, match="uint8"):
        det.detect(np.zeros((10, 10, 3), np.float32))  # type: ignore[arg-type]
    for shape in [(10, 10), (10, 10, 4), (1, 10, 3)]:
        with pytest.raises(ValueError, match="BGR image"):
            det.detect(np.zeros(shape, np.uint8))


# --- the real default model ---------------------------------------------------------------


@pytest.mark.timeout(1800)
@pytest.mark.parametrize(
    ("image", "person"),
    [
        ("astronaut", (20, 15, 365, 512)),  # hand-checked: hair to the bottom edge, both arms
        ("camera", (0, 68, 330, 512)),  # hand-checked: head to the bottom, coat to the camera
    ],
)
def test_default_model_finds_the_person(
    person_model: Path, image: str, person: tuple[int, int, int, int]
) -> None:
    import skimage.data

    picture = getattr(skimage.data, image)()
    rgb = np.stack([picture] * 3, axis=-1) if picture.ndim == 2 else picture
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    found = ssdlite_person().detect(bgr)
    assert len(found) >= 1
    best = max(iou(box, np.array(person, np.float32)) for box in found.xyxy)
    assert best > 0.5
    assert found.confidence is not None and found.confidence.max() > 0.5
    assert found.xyxy.dtype == np.float32
    # a blank frame of the same size has nobody in it
    assert len(ssdlite_person().detect(np.full_like(bgr, 127))) == 0


@pytest.mark.parametrize(
    ("text", "grid"), [("auto", "auto"), ("None", None), ("3x2", (3, 2)), (" 1X1 ", (1, 1))]
)
def test_tiles_are_read_from_text(text: str, grid: object) -> None:
    assert parse_tiles(text) == grid


@pytest.mark.parametrize("text", ["", "3", "3x", "x2", "0x1", "17x1", "3x-2", "many"])
def test_bad_tiles_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="COLSxROWS"):
        parse_tiles(text)
