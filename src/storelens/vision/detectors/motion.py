"""People as moving blobs, for fixed cameras: no model, no weights, a few ms a frame.

A ceiling camera that never moves sees an empty shop that changes slowly (light, a
moved chair) and people who change it quickly. A Gaussian-mixture background model
(OpenCV's MOG2) learns the first; what differs is foreground. Shadows are marked grey by
the model and thresholded away, morphology closes the holes between head, body and legs,
and each remaining blob is a person box. Confidence is how much of its box a blob fills:
a person fills most of theirs, a flicker of noise does not.

Two shoppers walking side by side make one wide blob. Given a `CameraView`, the detector
knows how wide a person is at that spot and cuts such blobs into that many people, at
the emptiest columns.

Two things break plain background subtraction in a café, and both are handled here:

* **A person who stands or sits still is learnt into the floor.** MOG2 counts a colour
  as background once its weight passes 10 %, so at a learning rate of 1/history a seated
  customer fades after about a tenth of ``history`` frames (3.5 minutes at 10 fps), and
  one seated visit breaks into many. The pipeline tells the detector where its tracked
  people are (`hold`); under those boxes the model does not learn: a learning frame is
  classified as it is, then learnt with the held boxes painted over by the model's own
  background. Light drift and moved furniture elsewhere are still learnt. That second
  pass is the only cost holding adds, so the model learns one frame in ``_LEARN_EVERY``
  (at that many times the rate, the same drift per minute) and the painting uses a
  background picture refreshed every ``_BACKGROUND_REFRESH`` learning frames (it moves
  by a few thousandths between them).
* **A camera that starts on a full room learns the people in view as floor.** Given an
  empty-shop picture (``background``: the camera's own view at closing time), the model
  starts from it and needs no warm-up, so the first frame already shows everyone.
  Without one, the first ``warmup_frames`` are learnt fast and report nothing, as before.
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from storelens.core.errors import MissingExtra
from storelens.vision.frames import PERSON_CLASS_ID
from storelens.vision.zones import ZoneMap

if TYPE_CHECKING:
    from collections.abc import Sequence

    import supervision as sv

    from storelens.core.camera import CameraView
    from storelens.core.layout import Zone

__all__ = ["MotionDetector", "split_wide_blob"]

_SHADOW_CUTOFF = 200  # MOG2 marks foreground 255 and shadows 127
_STACKED = 1.35  # a blob this many person heights tall holds two people, one behind
_STACKED_GAP = 0.15  # ... unless their feet would be closer than this (person heights)
_LINE_M = 1.5  # people further apart than this, one behind the other, are a line (a queue)
_SHOULDER_M = 0.5  # people side by side stand at least this far apart, centre to centre
_LEARN_EVERY = 32  # background learnt from one frame in this many (at this many times the rate)
_BACKGROUND_REFRESH = 4  # learning frames between fresh pictures of the background to paint
_SLIVER = 0.5  # a cut-off piece narrower than this many person widths is no one
_FULL_FILL = 0.75  # a solid ellipse fills π/4 of its box: count that as certain


def split_wide_blob(
    columns: npt.NDArray[np.int64],
    person_width: float,
    max_people: int = 8,
    spacing: float | None = None,
) -> list[tuple[int, int]]:
    """Cut a blob ``columns`` wide (foreground pixels per column) into people.

    Returns (start, stop) column ranges. People side by side stand at least ``spacing``
    pixels apart (a shoulder width on the floor, seen along the image rows; defaults to
    ``person_width``), so a blob ``person_width + (n - 1) * spacing`` wide holds n people.
    A blob up to half a spacing wider than one person stays whole; each cut is moved to
    the emptiest column within a quarter person of where even spacing would put it.
    """
    width = len(columns)
    step = person_width if spacing is None or spacing <= 0 else spacing
    if person_width <= 0 or width <= person_width + 0.5 * step:
        return [(0, width)]
    count = min(max_people, max(2, 1 + round((width - person_width) / step)))
    reach = max(1, round(person_width / 4))
    cuts = [0]
    for k in range(1, count):
        nominal = round(k * width / count)
        lo, hi = max(cuts[-1] + 1, nominal - reach), min(width - 1, nominal + reach)
        if lo >= hi:
            continue
        cuts.append(lo + int(np.argmin(columns[lo:hi])))
    cuts.append(width)
    return [(a, b) for a, b in pairwise(cuts) if b > a]


class MotionDetector:
    """Background subtraction for fixed cameras; see the module notes for its limits.

    ``min_area_px`` is in full-frame pixels; frames are analysed at ``scale`` of their
    size, which is faster and smooths sensor noise. Nothing is reported for the first
    ``warmup_frames`` while the background is learnt.
    """

    name = "motion"

    def __init__(
        self,
        *,
        min_area_px: float = 400.0,
        history: int = 20_000,
        var_threshold: float = 16.0,
        warmup_frames: int = 25,
        view: CameraView | None = None,
        scale: float = 0.5,
        shadows: bool = True,
        background: npt.NDArray[np.uint8] | None = None,
        hold_margin: float = 0.15,
        queue_spacing_m: float = 0.5,
        queues: Sequence[Zone] = (),
    ) -> None:
        if min_area_px < 0 or history < 1 or var_threshold <= 0 or warmup_frames < 0:
            raise ValueError(
                "need min_area_px >= 0, history >= 1, var_threshold > 0 and warmup_frames >= 0"
            )
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        if not (np.isfinite(queue_spacing_m) and queue_spacing_m > 0):
            raise ValueError(f"queue_spacing_m must be positive, got {queue_spacing_m}")
        if not 0 <= hold_margin <= 1:
            raise ValueError(f"hold_margin must be in [0, 1], got {hold_margin}")
        try:
            import cv2
        except ImportError:
            raise MissingExtra("opencv-python", "vision") from None
        self._cv2: Any = cv2
        self.min_area_px, self.warmup_frames, self.view, self.scale = (
            min_area_px, warmup_frames, view, scale,
        )  # fmt: skip
        self.history = history
        self._model = cv2.createBackgroundSubtractorMOG2(history, var_threshold, shadows)
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 11))
        self.frames_seen = 0
        self.hold_margin, self.queue_spacing_m = hold_margin, queue_spacing_m
        self._queues = ZoneMap(list(queues)) if queues else None
        self._size: tuple[int, int] | None = None
        self._held = np.zeros((0, 4), np.float64)
        self._plain: npt.NDArray[np.uint8] | None = None  # the background, to paint held boxes
        self._plain_age = 0  # learning frames since ``_plain`` was taken
        self.last_foreground: npt.NDArray[np.uint8] | None = None  # of the last frame
        if background is not None:
            self._learn_empty_shop(background)

    def _learn_empty_shop(self, background: npt.NDArray[np.uint8]) -> None:
        """Start the model from a picture of the empty shop: nothing to warm up."""
        small = self._analysis_frame(background)
        self._model.apply(small, learningRate=1.0)
        self.warmup_frames = 0

    def hold(self, xyxy: npt.ArrayLike) -> None:
        """Boxes (full-frame pixels) of the people being tracked: the background is not
        learnt under them in the frames that follow, so a still person stays foreground.
        Call with an empty array to release them all."""
        boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
        if not np.isfinite(boxes).all():
            raise ValueError("held boxes must be finite pixel coordinates")
        self._held = boxes

    def _held_boxes(self, shape: tuple[int, int]) -> list[tuple[slice, slice]]:
        """The held boxes widened by ``hold_margin``, as (rows, columns) of the analysis
        frame; boxes wholly outside it are left out."""
        height, width = shape
        boxes = self._held * self.scale
        pad_x = (boxes[:, 2] - boxes[:, 0]) * self.hold_margin
        pad_y = (boxes[:, 3] - boxes[:, 1]) * self.hold_margin
        out: list[tuple[slice, slice]] = []
        for (x1, y1, x2, y2), px, py in zip(boxes.tolist(), pad_x, pad_y, strict=True):
            left, top = max(0, int(x1 - px)), max(0, int(y1 - py))
            right, bottom = min(width, int(np.ceil(x2 + px))), min(height, int(np.ceil(y2 + py)))
            if right > left and bottom > top:
                out.append((slice(top, bottom), slice(left, right)))
        return out

    def _painted(self, small: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8] | None:
        """The frame with the held people painted over by the background (what is learnt),
        or ``None`` when nobody held is in view."""
        boxes = self._held_boxes(small.shape[:2]) if len(self._held) else []
        if not boxes:
            return None
        if self._plain is None or self._plain_age >= _BACKGROUND_REFRESH:
            self._plain = np.asarray(self._model.getBackgroundImage(), np.uint8)
            self._plain_age = 0
        self._plain_age += 1
        learn = small.copy()
        for rows, cols in boxes:  # slices, not a boolean mask: a few boxes, not every pixel
            learn[rows, cols] = self._plain[rows, cols]
        return learn

    def _analysis_frame(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        cv2 = self._cv2
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"expected a BGR uint8 image (h, w, 3), got {image.dtype} {image.shape}"
            )
        if self._size is None:
            self._size = (image.shape[1], image.shape[0])
        elif self._size != (image.shape[1], image.shape[0]):
            raise ValueError(f"frame size changed from {self._size} to {image.shape[1::-1]}")
        if self.scale >= 1:
            return image
        size = (
            max(1, round(image.shape[1] * self.scale)),
            max(1, round(image.shape[0] * self.scale)),
        )
        return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)

    def foreground(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """Learn from the frame and return its cleaned foreground mask (analysis scale)."""
        cv2 = self._cv2
        small = self._analysis_frame(image)
        # Learn fast while warming up, then at 1/history so people who pause stay visible;
        # after the warm-up, one frame in ``_LEARN_EVERY`` is learnt (at that many times
        # the rate): classifying alone is cheaper than classifying and learning, and a
        # frame with held people is passed twice (see the module notes).
        warming = self.frames_seen < self.warmup_frames
        if warming:
            mask = self._model.apply(small, learningRate=-1.0)
        elif (self.frames_seen - self.warmup_frames) % _LEARN_EVERY != _LEARN_EVERY - 1:
            mask = self._model.apply(small, learningRate=0.0)
        else:
            rate = min(1.0, _LEARN_EVERY / self.history)
            learn = self._painted(small)
            if learn is None:
                mask = self._model.apply(small, learningRate=rate)
            else:  # classify the frame as it is, learn it with the held people painted out
                mask = self._model.apply(small, learningRate=0.0)
                self._model.apply(learn, learningRate=rate)
        self.frames_seen += 1
        _, mask = cv2.threshold(mask, _SHADOW_CUTOFF, 255, cv2.THRESH_BINARY)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)
        return np.asarray(mask, np.uint8)

    def detect(self, image: npt.NDArray[np.uint8]) -> sv.Detections:
        import supervision as sv

        mask = self.foreground(image)
        self.last_foreground = mask  # the people's pixels, for their colour descriptors
        if self.frames_seen <= self.warmup_frames:
            return sv.Detections.empty()
        boxes, fills = self._blobs(mask)
        if not boxes:
            return sv.Detections.empty()
        xyxy = np.asarray(boxes, np.float32) / self.scale
        confidence = np.clip(np.asarray(fills, np.float32) / _FULL_FILL, 0.0, 1.0)
        return sv.Detections(
            xyxy=xyxy,
            confidence=confidence,
            class_id=np.full(len(xyxy), PERSON_CLASS_ID, dtype=int),
        )

    def _blobs(self, mask: npt.NDArray[np.uint8]) -> tuple[list[list[int]], list[float]]:
        cv2 = self._cv2
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        min_area = self.min_area_px * self.scale**2
        boxes: list[list[int]] = []
        fills: list[float] = []
        for label in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[label])
            if area < min_area:
                continue
            blob = labels[y : y + h, x : x + w] == label
            parts = [(0, w)]
            if self.view is not None:
                foot = (x + w / 2, y + h)
                one = self._person_width(*foot)
                parts = split_wide_blob(blob.sum(axis=0), one, spacing=self._spacing(*foot))
                if len(parts) > 1:  # a sliver between two cuts is an edge, not a person
                    parts = [(a, b) for a, b in parts if b - a >= _SLIVER * one]
            for a, b in parts:
                part = blob[:, a:b]
                rows = np.flatnonzero(part.any(axis=1))
                if not len(rows) or part.sum() < min_area / 2:
                    continue
                top, bottom = int(rows[0]), int(rows[-1]) + 1
                for upper, lower in self._stacked(x + a, x + b, y + top, y + bottom):
                    piece = part[upper - y : lower - y]
                    cols = np.flatnonzero(piece.any(axis=0))
                    if not len(cols):
                        continue
                    boxes.append([x + a + int(cols[0]), upper, x + a + int(cols[-1]) + 1, lower])
                    fills.append(float(piece.sum()))
        if self.view is not None:
            boxes, fills = self._join_stacked(boxes, fills)
        return boxes, [
            area / ((box[2] - box[0]) * (box[3] - box[1]))
            for box, area in zip(boxes, fills, strict=True)
        ]

    def _stacked(self, x1: int, x2: int, top: int, bottom: int) -> list[tuple[int, int]]:
        """Rows of the people in a blob: one, or more when it is much taller than a person
        with their feet at its bottom (people behind, in a queue or at a table, seen from
        above). The front person's feet are the blob's bottom; the last one's head is its
        top, so their feet are where a person that tall has them. People hidden between
        the two cannot be seen: in a line longer than ``_LINE_M`` that starts and ends in
        one of the layout's ``queues`` they are assumed ``queue_spacing_m`` apart on the
        floor, an estimate from the calibration (elsewhere a line would be guesswork)."""
        if self.view is None:
            return [(top, bottom)]
        centre = (x1 + x2) / 2
        front_top, width = self._person_reach(centre, bottom)
        tall = bottom - front_top
        if width <= 0 or tall <= 0 or bottom - top <= _STACKED * tall:
            return [(top, bottom)]
        foot = round(top + tall)
        for _ in range(3):  # the person behind is smaller: settle their height
            back_top, _ = self._person_reach(centre, foot)
            foot = min(bottom - 1, round(top + (foot - back_top)))
        if foot <= top or bottom - foot < _STACKED_GAP * tall:
            return [(top, bottom)]
        rows = [(max(top, round(front_top)), bottom), (top, foot)]
        ends = self.view.to_floor(np.array([[centre, bottom], [centre, foot]]) / self.scale)
        depth = float(np.linalg.norm(ends[1] - ends[0]))
        if not np.isfinite(depth) or depth < _LINE_M or self._queues is None:
            return rows
        if not self._queues.inside(ends).any(axis=1).all():
            return rows  # a line is a queue only where the layout has one
        hidden = round(depth / self.queue_spacing_m) - 1
        for k in range(1, hidden + 1):
            spot = ends[0] + (ends[1] - ends[0]) * k / (hidden + 1)
            foot_y = float(self.view.to_image(spot[None, :])[0, 1]) * self.scale
            upper, _ = self._person_reach(centre, foot_y)
            rows.append((max(top, round(upper)), min(bottom, round(foot_y))))
        return rows

    def _join_stacked(
        self, boxes: list[list[int]], areas: list[float]
    ) -> tuple[list[list[int]], list[float]]:
        """Join blobs stacked within one person's box (a shirt the colour of the floor cuts
        a person into head, body and legs); lowest first, since the feet anchor the box."""
        order = sorted(range(len(boxes)), key=lambda i: -boxes[i][3])
        people: list[list[int]] = []
        people_areas: list[float] = []
        reach: list[tuple[float, float]] = []  # expected top and width at each person's feet
        for i in order:
            x1, y1, x2, y2 = boxes[i]
            for k, person in enumerate(people):
                top, width = reach[k]
                overlap = min(x2, person[2]) - max(x1, person[0])
                narrow = min(x2 - x1, person[2] - person[0])
                if (
                    overlap >= 0.5 * narrow
                    and y1 >= top - 0.1 * width
                    and max(x2, person[2]) - min(x1, person[0]) <= 1.5 * width
                ):
                    people[k] = [
                        min(x1, person[0]),
                        min(y1, person[1]),
                        max(x2, person[2]),
                        person[3],
                    ]
                    people_areas[k] += areas[i]
                    break
            else:
                people.append([x1, y1, x2, y2])
                people_areas.append(areas[i])
                reach.append(self._person_reach((x1 + x2) / 2, y2))
        return people, people_areas

    def _person_reach(self, foot_x: float, foot_y: float) -> tuple[float, float]:
        """Expected top and width (analysis pixels) of a person with feet at this pixel."""
        assert self.view is not None
        foot = np.array([[foot_x / self.scale, foot_y / self.scale]])
        floor = self.view.to_floor(foot)
        if not np.isfinite(floor).all():
            return foot_y, 0.0
        box = self.view.person_boxes(floor)[0] * self.scale
        return float(box[1]), float(box[2] - box[0])

    def _person_width(self, foot_x: float, foot_y: float) -> float:
        return self._person_reach(foot_x, foot_y)[1]

    def _spacing(self, foot_x: float, foot_y: float) -> float:
        """Analysis pixels along the image row between two people standing shoulder to
        shoulder here (a person's width on the floor, measured across the row)."""
        assert self.view is not None
        pixels = np.array([[foot_x, foot_y], [foot_x + 1.0, foot_y]]) / self.scale
        spots = self.view.to_floor(pixels)
        metres_per_px = float(np.linalg.norm(spots[1] - spots[0]))  # per analysis pixel
        if not np.isfinite(metres_per_px) or metres_per_px <= 0:
            return self._person_width(foot_x, foot_y)
        return _SHOULDER_M / metres_per_px
