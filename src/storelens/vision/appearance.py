"""Who is who when a crowd parts: a colour descriptor per tracked person.

A motion detector sees two people standing close (at the pickup, in the queue) as one
blob. ByteTrack keeps one track on the blob and loses or drifts the other, and when
the two part it decides who is who by box overlap alone, which is a coin toss: the two
leave with each other's ids, and a seated customer's visit ends at another customer's
exit. Box geometry cannot settle it; clothing can. People wear different colours, and
the colours of a person's pixels do not change when they stand next to someone.

So each tracked person carries a colour descriptor: a hue/saturation/value histogram
of their pixels (the detector's foreground inside the box where the detector has one,
the whole box otherwise), averaged with momentum over the frames where their box
touches nobody else's. When boxes touch, their people are marked as in contact and
their descriptors stop learning (who is in which box is then uncertain). When every
visible member of a contact group stands apart again, the group's people are matched
to its boxes by colour (Hungarian method on Hellinger distances) and the ids are
reassigned if that pairing is clearly better than the tracker's (``swap_margin``).
A member lost inside the group may come back as a newborn track beside it; newborns
born touching a group join it, so the lost person's id can go to them.

Off by default (``AppearanceConfig(enabled=True)`` turns it on): on the seed-7 busy
JuPedSim clip it raised IDF1 (0.58 to 0.59-0.67 over settings) but also the scored id
switches, left the zone over-counts as they were, and some settings broke door counts;
docs/vision.md has the figures.

Nothing here is kept beyond the camera-day, nor written anywhere: descriptors are
coarse colour counts of the current tracks, not biometric templates, and are dropped
with the track (see ``storelens.vision.tracking`` for the id policy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from storelens.vision.frames import check_settings

__all__ = ["AppearanceConfig", "AppearanceLedger", "colour_descriptors", "hellinger"]

FloatArray = npt.NDArray[np.float64]
_BINS = (8, 4, 4)  # hue, saturation, value
_RANGES = [0, 180, 0, 256, 0, 256]
_UNSEEN = 1e6  # cost of a pairing that may not happen
_ASKED_MAX = 4096  # group questions remembered (each asked once while its answer holds)


@dataclass(frozen=True, slots=True)
class AppearanceConfig:
    """When colour may overrule the tracker.

    ``momentum``: weight of the running descriptor at each clear sighting.
    ``min_sightings``: clear sightings before a person's descriptor is trusted.
    ``touch_margin``: boxes widened by this fraction of their size count as touching.
    ``contact_s``: how long after the last touch a group may still be resolved (a member
    lost in the group may be reborn within it). ``swap_margin``: how much lower (summed
    Hellinger distance) the colour pairing must be than the tracker's to overrule it.
    ``newcomer_cost``: the distance charged for leaving a newborn box its own fresh id.
    ``reach_per_s``: how far (person heights a second) someone may have moved since
    their last box; a box beyond is not theirs, whatever its colour.
    ``learn_every``: a trusted person's descriptor learns from one clear frame in this
    many (colours change slowly; describing every box every frame was most of the cost).
    """

    enabled: bool = False
    momentum: float = 0.8
    min_sightings: int = 3
    touch_margin: float = 0.0
    contact_s: float = 10.0
    swap_margin: float = 0.15
    newcomer_cost: float = 0.5
    learn_every: int = 5
    reach_per_s: float = 0.7

    def __post_init__(self) -> None:
        check_settings(
            self, "touch_margin", "contact_s", "swap_margin", "newcomer_cost", "reach_per_s"
        )
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be within [0, 1), got {self.momentum}")
        for name in ("min_sightings", "learn_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def hellinger(a: FloatArray, b: FloatArray) -> float:
    """Distance between two normalised histograms: 0 the same, 1 nothing in common."""
    return float(np.sqrt(max(0.0, 1.0 - float(np.sqrt(a * b).sum()))))


def colour_descriptors(
    image: npt.NDArray[np.uint8],
    xyxy: FloatArray,
    foreground: npt.NDArray[np.uint8] | None = None,
    scale: float = 0.5,
) -> list[FloatArray | None]:
    """One normalised HSV histogram per box, of the box's person pixels.

    ``foreground`` (the detector's mask at ``scale`` of the frame) picks the person's
    pixels from the box; the image is sampled on the mask's grid, so the cost is that of
    the analysis frame. ``None`` for a box with no pixels in view.
    """
    import cv2

    height, width = image.shape[:2]
    step = max(1, round(1 / scale)) if foreground is not None else 2
    out: list[FloatArray | None] = []
    for x1, y1, x2, y2 in np.asarray(xyxy, np.float64).reshape(-1, 4).tolist():
        left, top = max(0, int(x1) // step), max(0, int(y1) // step)
        right = min(-(-width // step), int(np.ceil(x2)) // step)
        bottom = min(-(-height // step), int(np.ceil(y2)) // step)
        if right <= left or bottom <= top:
            out.append(None)
            continue
        crop = image[top * step : bottom * step : step, left * step : right * step : step]
        mask = None
        if foreground is not None:
            mask = foreground[top:bottom, left:right]
            rows, cols = min(len(mask), len(crop)), min(mask.shape[1], crop.shape[1])
            crop, mask = crop[:rows, :cols], np.ascontiguousarray(mask[:rows, :cols])
            if not mask.any():
                out.append(None)
                continue
        hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], mask, list(_BINS), _RANGES).ravel()
        total = float(hist.sum())
        out.append(None if total <= 0 else (hist / total).astype(np.float64))
    return out


class _FrameColours:
    """The frame's box descriptors, computed only for the boxes asked about (most
    frames need a few: newcomers, parted groups, and everyone once a ``learn_every``)."""

    def __init__(
        self,
        image: npt.NDArray[np.uint8],
        boxes: FloatArray,
        foreground: npt.NDArray[np.uint8] | None,
        scale: float,
    ) -> None:
        self._image, self.boxes, self._foreground, self._scale = image, boxes, foreground, scale
        self._known: dict[int, FloatArray | None] = {}

    def of(self, indices: list[int]) -> dict[int, FloatArray | None]:
        missing = [i for i in indices if i not in self._known]
        if missing:
            found = colour_descriptors(
                self._image, self.boxes[missing], self._foreground, self._scale
            )
            self._known.update(zip(missing, found, strict=True))
        return {i: self._known[i] for i in indices}


@dataclass(slots=True)
class _Person:
    """What the ledger knows of one person id: its colours, and where it was last."""

    descriptor: FloatArray | None = None
    sightings: int = 0
    last_seen: float = 0.0
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    born: float = 0.0
    contacts: dict[str, float] = field(default_factory=dict)  # partner -> last touch (s)


class AppearanceLedger:
    """One camera's colour descriptors and contact groups; see the module notes.

    `update` takes a frame's tracked boxes and person ids and returns the person ids to
    use (the same ones unless a parted group was re-paired by colour).
    """

    def __init__(self, config: AppearanceConfig | None = None) -> None:
        self.config = config or AppearanceConfig()
        self.reassigned = 0
        """Boxes whose person id colour changed (for diagnostics)."""
        self._people: dict[str, _Person] = {}
        self._last_t: float | None = None
        self._frames = 0
        self._now = 0.0
        self._asked: set[tuple[frozenset[str], frozenset[str]]] = set()

    def reset(self) -> None:
        """Forget everyone (a new camera-day)."""
        self._people.clear()
        self._last_t = None
        self._frames = 0
        self._asked.clear()
        self.reassigned = 0

    def update(
        self,
        t: float,
        person_ids: list[str],
        xyxy: FloatArray,
        image: npt.NDArray[np.uint8],
        foreground: npt.NDArray[np.uint8] | None = None,
        scale: float = 0.5,
    ) -> list[str]:
        """One frame: ``t`` in seconds, the tracker's ids and boxes (full-frame pixels)."""
        cfg = self.config
        boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
        if len(boxes) != len(person_ids):
            raise ValueError(f"{len(person_ids)} person ids but {len(boxes)} boxes")
        if not cfg.enabled or not person_ids:
            return list(person_ids)
        touching = _touching(boxes, cfg.touch_margin)
        people = self._people
        self._now = t
        if self._last_t is not None:  # lost since the last frame inside someone's box:
            present = set(person_ids)  # merged into them (one blob for two people)
            for pid, person in people.items():
                if person.last_seen == self._last_t and pid not in present:
                    hits = np.flatnonzero(_overlapping(np.asarray(person.box), boxes))
                    for hit in hits.tolist():
                        self._contact(pid, person_ids[hit], t)
        for i, pid in enumerate(person_ids):
            if pid not in people:
                people[pid] = self._newcomer(pid, t, boxes[i], set(person_ids))
        for i, j in zip(*np.nonzero(np.triu(touching, 1)), strict=True):
            self._contact(person_ids[int(i)], person_ids[int(j)], t)
        self._expire(t)
        alone: npt.NDArray[np.bool_] = np.asarray(~touching.any(axis=1))
        colours = _FrameColours(image, boxes, foreground, scale)
        ids = self._resolve(list(person_ids), alone, colours)
        learning = self._frames % cfg.learn_every == 0
        self._frames += 1
        clear: list[int] = []
        for i, pid in enumerate(ids):
            person = people.setdefault(pid, _Person(born=t))
            person.last_seen, person.box = t, _box(boxes[i])
            fresh = person.sightings < cfg.min_sightings
            if alone[i] and not person.contacts and (learning or fresh):
                clear.append(i)
        for i, colour in colours.of(clear).items():
            if colour is not None:
                self._learn(people[ids[i]], colour)
        self._last_t = t
        return ids

    def colours(self, person_ids: list[str]) -> list[FloatArray | None]:
        """Each person's running colour descriptor, ``None`` before a clear sighting."""
        people = self._people
        return [people[p].descriptor if p in people else None for p in person_ids]

    def _reachable(self, pid: str, box: FloatArray) -> bool:
        """Whether the person could be in ``box`` now: within half their height of their
        last box, plus ``reach_per_s`` heights for each second since it was seen."""
        person = self._people[pid]
        x1, y1, x2, y2 = person.box
        height = max(y2 - y1, 1.0)
        gap = max(0.0, self._now - person.last_seen)
        dx = (box[0] + box[2] - x1 - x2) / 2
        dy = (box[1] + box[3] - y1 - y2) / 2
        return bool(np.hypot(dx, dy) <= height * (0.5 + self.config.reach_per_s * gap))

    def _contact(self, a: str, b: str, t: float) -> None:
        if a != b and a in self._people and b in self._people:
            self._people[a].contacts[b] = self._people[b].contacts[a] = t

    def _newcomer(self, pid: str, t: float, box: FloatArray, present: set[str]) -> _Person:
        """A person id seen for the first time. Born beside someone lost in the last
        seconds, or beside a contact group's member, it may be the lost person reborn:
        it joins their group."""
        person = _Person(last_seen=t, born=t, box=_box(box))
        grown = _widen(box[None, :], 0.5)[0]
        for other_id, other in self._people.items():
            lost = other_id not in present
            if t - other.last_seen > self.config.contact_s or not (lost or other.contacts):
                continue
            if _overlap(grown, np.asarray(other.box)):
                person.contacts[other_id] = t
                other.contacts[pid] = t
        return person

    def _learn(self, person: _Person, colour: FloatArray) -> None:
        m = self.config.momentum
        if person.descriptor is None:
            person.descriptor = colour
        else:
            person.descriptor = m * person.descriptor + (1 - m) * colour
        person.sightings += 1

    def _trusted(self, pid: str) -> FloatArray | None:
        """The person's descriptor once seen clearly often enough, else ``None``."""
        person = self._people[pid]
        return person.descriptor if person.sightings >= self.config.min_sightings else None

    def _expire(self, t: float) -> None:
        horizon = self.config.contact_s
        if len(self._asked) > _ASKED_MAX:
            self._asked.clear()
        for pid in list(self._people):
            person = self._people[pid]
            if person.contacts:
                stale = [p for p, seen in person.contacts.items() if t - seen > horizon]
                for p in stale:
                    del person.contacts[p]
            if t - person.last_seen > horizon and not person.contacts:
                del self._people[pid]

    def _resolve(
        self,
        ids: list[str],
        alone: npt.NDArray[np.bool_],
        colours: _FrameColours,
    ) -> list[str]:
        """Re-pair contact groups by colour where their members stand apart; returns
        the frame's person ids. Members still touching someone keep their ids for now."""
        slot_of = {pid: i for i, pid in enumerate(ids)}
        done: set[str] = set()
        for pid in list(ids):
            if pid in done or not self._people[pid].contacts:
                continue
            group = self._group(pid)
            done |= group
            apart = [slot_of[m] for m in group if m in slot_of and alone[slot_of[m]]]
            asked = (frozenset(group), frozenset(ids[s] for s in apart))
            if not apart or asked in self._asked:
                continue  # nobody apart, or the same question as before: the same answer
            self._asked.add(asked)
            seen = colours.of(apart)
            slots = sorted(s for s in apart if seen[s] is not None)
            if not slots:
                continue
            free = {ids[s] for s in slots}
            members = sorted(
                m for m in group if self._trusted(m) is not None and (m not in slot_of or m in free)
            )
            if not members:
                continue
            new = self._pairing(members, slots, ids, seen, colours.boxes)
            if new is not None:
                for s, member in new.items():
                    if ids[s] != member:
                        ids[s] = member
                        self.reassigned += 1
            parted = [ids[s] for s in slots]
            for a in parted:  # pairs seen apart are settled
                contacts = self._people[a].contacts
                for b in [b for b in contacts if b in parted]:
                    del contacts[b]
        return ids

    def _group(self, start: str) -> set[str]:
        group, todo = {start}, [start]
        while todo:
            person = self._people.get(todo.pop())
            if person is None:
                continue
            for partner in person.contacts:
                if partner not in group and partner in self._people:
                    group.add(partner)
                    todo.append(partner)
        return group

    def _pairing(
        self,
        members: list[str],
        slots: list[int],
        ids: list[str],
        colours: dict[int, Any],
        boxes: FloatArray,
    ) -> dict[int, str] | None:
        """The colour pairing of members to slots, if clearly better than the tracker's."""
        from scipy.optimize import linear_sum_assignment

        cfg = self.config
        own = [ids[s] for s in slots]
        rows = members + [pid for pid in own if pid not in members]  # untrusted keep own
        cost = np.full((len(rows), len(slots)), _UNSEEN)
        for r, pid in enumerate(rows):
            descriptor = self._trusted(pid)
            for c, s in enumerate(slots):
                if descriptor is not None and (pid == ids[s] or self._reachable(pid, boxes[s])):
                    cost[r, c] = hellinger(descriptor, colours[s])
                elif pid == ids[s]:
                    cost[r, c] = cfg.newcomer_cost
        current = sum(cost[rows.index(pid), c] for c, pid in enumerate(own))
        r_idx, c_idx = linear_sum_assignment(cost)
        best = float(cost[r_idx, c_idx].sum())
        if best >= _UNSEEN or current - best < cfg.swap_margin:
            return None
        return {slots[c]: rows[r] for r, c in zip(r_idx.tolist(), c_idx.tolist(), strict=True)}


def _box(row: FloatArray) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in row[:4])
    return x1, y1, x2, y2


def _widen(boxes: FloatArray, margin: float) -> FloatArray:
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1) * margin
    return np.concatenate([boxes[:, :2] - size, boxes[:, 2:] + size], axis=1)


def _overlap(a: FloatArray, b: FloatArray) -> bool:
    return bool(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


def _overlapping(box: FloatArray, boxes: FloatArray) -> npt.NDArray[np.bool_]:
    """Which of ``boxes`` overlap ``box``."""
    hit = (boxes[:, 0] < box[2]) & (box[0] < boxes[:, 2])
    hit &= (boxes[:, 1] < box[3]) & (box[1] < boxes[:, 3])
    return np.asarray(hit)


def _touching(boxes: FloatArray, margin: float) -> npt.NDArray[np.bool_]:
    """Which boxes, widened by ``margin`` of their size, overlap each other."""
    grown = _widen(boxes, margin)
    x1, y1, x2, y2 = (grown[:, k] for k in range(4))
    touch = (x1[:, None] < x2[None, :]) & (x1[None, :] < x2[:, None])
    touch &= (y1[:, None] < y2[None, :]) & (y1[None, :] < y2[:, None])
    np.fill_diagonal(touch, False)
    return np.asarray(touch)
