"""Cutting a wide frame into overlapping tiles and merging the boxes found in them.

Small detector models squeeze a 1280x720 frame into 300x300 and lose the people at the
back; tiles keep them big enough to find. A person cut by a tile edge shows up as a
partial box in one tile and, usually, a whole box in its neighbour: the merge keeps the
whole one, and joins two partial boxes when no tile held the whole person.

Everything here is pure numpy, so the geometry is checked without a model.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_TILE_RATIO",
    "Boxes",
    "auto_grid",
    "cut_flags",
    "merge_tiles",
    "nms",
    "tile_grid",
]

Boxes = npt.NDArray[np.float32]
"""``(n, 4)`` pixel boxes ``x1, y1, x2, y2``."""
MAX_TILE_RATIO = 2.5
"""A tile's longer side may be this many times the model's input side before we split."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def nms(xyxy: Boxes, scores: npt.NDArray[np.float32], iou: float) -> npt.NDArray[np.intp]:
    """Indices kept by greedy non-maximum suppression, best score first."""
    return merge_tiles(
        xyxy, scores, np.zeros(len(scores), np.intp), np.zeros(len(scores), bool), iou
    )[0]


def _areas(b: Boxes) -> npt.NDArray[np.float32]:
    return np.asarray(np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1), np.float32)


def _span_iou(a: Boxes, b: Boxes, axis: int) -> npt.NDArray[np.float32]:
    """1-D IoU of box ``a`` with each of ``b`` along x (axis 0) or y (axis 1)."""
    lo, hi = np.maximum(a[axis], b[:, axis]), np.minimum(a[axis + 2], b[:, axis + 2])
    inter = np.clip(hi - lo, 0, None)
    union = (a[axis + 2] - a[axis]) + (b[:, axis + 2] - b[:, axis]) - inter
    result: npt.NDArray[np.float32] = inter / np.maximum(union, 1e-6)
    return result


def merge_tiles(
    xyxy: Boxes,
    scores: npt.NDArray[np.float32],
    tile: npt.NDArray[np.intp],
    cut: npt.NDArray[np.bool_],
    iou: float,
    contain: float = 0.6,
    join: float = 0.7,
) -> tuple[npt.NDArray[np.intp], Boxes]:
    """NMS over boxes from several tiles; returns kept indices and their (possibly joined) boxes.

    Whole boxes outrank boxes cut by a tile edge whatever their scores. Besides the usual
    IoU test, a cut box from another tile is suppressed when most of it (``contain``) lies
    inside a kept box. When the kept box was cut too, cut boxes from other tiles that
    overlap it and share its extent across the seam (1-D IoU above ``join``) are halves of
    the same person and are joined into their union.
    """
    if len(xyxy) == 0:
        return np.zeros(0, np.intp), np.zeros((0, 4), np.float32)
    boxes = xyxy.astype(np.float32).copy()
    order = np.lexsort((-scores, cut.astype(np.int8)))
    areas = _areas(boxes)
    alive = np.ones(len(boxes), bool)
    kept: list[int] = []
    for i in order:
        if not alive[i]:
            continue
        kept.append(int(i))
        alive[i] = False
        rest = np.flatnonzero(alive)
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        union = areas[i] + areas[rest] - inter
        over = inter / np.maximum(union, 1e-6) > iou
        other = tile[rest] != tile[i]
        inside = inter / np.maximum(areas[rest], 1e-6) > contain
        partial = other & cut[rest] & inside
        if cut[i]:  # the kept box is partial too: a person no single tile held whole
            # Two halves overlap in the shared strip and agree along the seam's axis.
            span = np.maximum(
                _span_iou(boxes[i], boxes[rest], 0), _span_iou(boxes[i], boxes[rest], 1)
            )
            halves = other & cut[rest] & (inter > 0) & (span > join)
            joins = rest[halves]
            if len(joins):
                boxes[i, :2] = np.minimum(boxes[i, :2], boxes[joins, :2].min(axis=0))
                boxes[i, 2:] = np.maximum(boxes[i, 2:], boxes[joins, 2:].max(axis=0))
                areas[i] = _areas(boxes[i : i + 1])[0]
            partial |= halves
        alive[rest[over | partial]] = False
    idx = np.array(kept, np.intp)
    return idx, boxes[idx]


def tile_grid(
    width: int, height: int, cols: int, rows: int, overlap: float
) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles ``(x1, y1, x2, y2)`` covering the frame, neighbours sharing ``overlap``."""
    _require(cols >= 1 and rows >= 1, f"tiles must be at least 1x1, got {cols}x{rows}")
    _require(0 <= overlap < 1, f"tile overlap must be in [0, 1), got {overlap}")

    def spans(total: int, n: int) -> list[tuple[int, int]]:
        side = total / (n - (n - 1) * overlap)
        step = side * (1 - overlap)
        return [(round(k * step), min(total, round(k * step + side))) for k in range(n)]

    return [(x1, y1, x2, y2) for y1, y2 in spans(height, rows) for x1, x2 in spans(width, cols)]


def auto_grid(
    width: int, height: int, input_size: int, overlap: float, ratio: float = MAX_TILE_RATIO
) -> tuple[int, int]:
    """The fewest columns and rows that keep each tile's side within ``ratio`` x the input."""
    _require(input_size >= 1 and ratio > 0, f"bad input size or ratio: {input_size}, {ratio}")
    _require(0 <= overlap < 1, f"tile overlap must be in [0, 1), got {overlap}")
    # n tiles of side total / (n - (n - 1) * overlap) each; solve side <= limit for n.
    limit = ratio * input_size
    count = [
        max(1, math.ceil((t / limit - overlap) / (1 - overlap) - 1e-9)) for t in (width, height)
    ]
    return count[0], count[1]


def cut_flags(
    xyxy: Boxes, tile: tuple[int, int, int, int], width: int, height: int, margin: float = 0.02
) -> npt.NDArray[np.bool_]:
    """Boxes reaching a tile side that lies inside the frame (a side the frame does not end at).

    ``margin`` is a fraction of the tile's side: a model that sees the tile at 300 px puts
    a box edge a few frame pixels short of the tile edge it actually touches.
    """
    x1, y1, x2, y2 = tile
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    flags = np.zeros(len(xyxy), bool)
    if x1 > 0:
        flags |= xyxy[:, 0] <= x1 + mx
    if y1 > 0:
        flags |= xyxy[:, 1] <= y1 + my
    if x2 < width:
        flags |= xyxy[:, 2] >= x2 - mx
    if y2 < height:
        flags |= xyxy[:, 3] >= y2 - my
    return flags
