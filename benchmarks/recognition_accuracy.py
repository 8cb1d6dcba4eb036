"""False match and false non-match rates of the face pipeline on real, labelled faces.

The faces are photos that ship inside PyPI packages, which we did not make:

* scikit-image ``astronaut`` (Eileen Collins) and matplotlib ``grace_hopper.jpg``
  (always there: both are in the ``dev`` install);
* with ``--extra-faces DIR`` (``make faces-eval-data`` fills ``.cache/faces``), the test
  photos of the ``face_recognition`` sdist: three photos of Barack Obama, two crops of
  one of them, and one of Joe Biden.

That is four people and seven photos: far too few to measure a false match rate a
store could rely on. Each photo is augmented (pose: rotation, mirror, perspective;
light: gamma, brightness, contrast; blur; crop and scale; JPEG; one to three of them
in a row) to make genuine pairs,
with one random draw for the validation split (where the threshold is chosen) and
another for the test split (where it is reported). Pairs of two edits of the same
photo are reported apart from pairs of two different photos of one person.

    python benchmarks/recognition_accuracy.py --extra-faces .cache/faces

Writes ``benchmarks/results/recognition_accuracy.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps
from rich.console import Console
from rich.progress import track
from rich.table import Table

from storelens.config import Settings
from storelens.recognition.evaluate import choose_threshold, pair_distances, rates_at
from storelens.recognition.faces import FacePipeline
from storelens.recognition.matcher import Arrival, EntranceMatcher, Gallery, MatchRule

RESULTS = Path(__file__).parent / "results" / "recognition_accuracy.json"
console = Console(width=150)
DLIB_LFW_THRESHOLD = 0.6  # dlib's published same-person boundary on LFW
MARGIN = 0.1
SWEEP = (0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75)


@dataclass(frozen=True)
class Source:
    person: str
    photo: str  # the original photo: crops of one photo share it
    image: Image.Image


def _sources(extra: Path | None) -> list[Source]:
    import matplotlib
    from skimage import data

    found = [
        Source("eileen-collins", "astronaut", Image.fromarray(data.astronaut())),
        Source(
            "grace-hopper",
            "grace_hopper",
            Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"),
        ),
    ]
    if extra is not None:
        for path in sorted(extra.glob("*.jpg")):
            person = re.match(r"[a-z]+", path.stem)
            if person is None:
                continue
            photo = "obama" if "partial_face" in path.stem else path.stem  # crops of obama.jpg
            found.append(Source(person.group(), photo, Image.open(path)))
    return [
        Source(s.person, s.photo, ImageOps.exif_transpose(s.image).convert("RGB")) for s in found
    ]


def _face_crop(pipeline: FacePipeline, img: Image.Image) -> Image.Image:
    """The face with a face-width margin, scaled so the face is about 160 px wide."""
    faces = pipeline.find(np.asarray(img))
    if len(faces) != 1:
        raise SystemExit(f"expected one face in a source photo, found {len(faces)}")
    x1, y1, x2, y2 = faces[0].box
    w = x2 - x1
    box = (max(0, x1 - w), max(0, y1 - w), min(img.width, x2 + w), min(img.height, y2 + w))
    crop = img.crop(box)
    scale = 160 / w
    return crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))))


def _augment(img: Image.Image, rng: np.random.Generator) -> tuple[str, Image.Image]:
    """One random edit of pose, light, blur, crop/scale or compression."""
    kind = str(rng.choice(["rotate", "mirror", "perspective", "gamma", "dim", "contrast",
                           "blur", "crop", "scale", "jpeg"]))  # fmt: skip
    w, h = img.size
    if kind == "rotate":
        out = img.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
    elif kind == "mirror":
        out = ImageOps.mirror(img)
    elif kind == "perspective":  # one side nearer the camera: a small turn of the head
        s = float(rng.uniform(0.05, 0.12)) * h
        coeffs = _perspective(w, h, s, left=bool(rng.integers(2)))
        out = img.transform((w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    elif kind == "gamma":
        g = float(rng.uniform(0.5, 1.8))
        out = Image.fromarray((255 * (np.asarray(img) / 255.0) ** g).astype(np.uint8))
    elif kind == "dim":
        out = ImageEnhance.Brightness(img).enhance(float(rng.uniform(0.45, 0.75)))
    elif kind == "contrast":
        out = ImageEnhance.Contrast(img).enhance(float(rng.uniform(0.5, 1.5)))
    elif kind == "blur":
        out = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.8, 2.0))))
    elif kind == "crop":
        dx, dy = (int(rng.uniform(0, 0.15) * v) for v in (w, h))
        out = img.crop((dx, dy, w - int(rng.uniform(0, 0.15) * w), h - dy))
    elif kind == "scale":  # a smaller, softer face: further from the camera
        f = float(rng.uniform(0.45, 0.7))
        out = img.resize((int(w * f), int(h * f))).resize((w, h))
    else:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(15, 40)))
        out = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return kind, out


def _edits(img: Image.Image, rng: np.random.Generator) -> tuple[str, Image.Image]:
    """One to three edits in a row: a dim, blurred, turned face is what doors see."""
    kinds = []
    for _ in range(int(rng.integers(1, 4))):
        kind, img = _augment(img, rng)
        kinds.append(kind)
    return "+".join(kinds), img


def _perspective(w: int, h: int, s: float, *, left: bool) -> list[float]:
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(0, s), (w, 0), (w, h), (0, h - s)] if left else [(0, 0), (w, s), (w, h - s), (0, h)]
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        a.append([u, v, 1, 0, 0, 0, -x * u, -x * v])
        a.append([0, 0, 0, u, v, 1, -y * u, -y * v])
        b += [x, y]
    return [float(c) for c in np.linalg.solve(np.array(a, float), np.array(b, float))]


def _embed_split(
    pipeline: FacePipeline, crops: list[tuple[Source, Image.Image]], per_photo: int, seed: int,
    originals: bool,
) -> dict[str, Any]:  # fmt: skip
    rng = np.random.default_rng(seed)
    vectors, people, photos, kinds = [], [], [], []
    originals_of: dict[str, np.ndarray] = {}
    refused: dict[str, int] = {}
    images = 0
    jobs = [(s, c, "original") for s, c in crops] if originals else []
    jobs += [(s, *_edits(c, rng)[::-1]) for s, c in crops for _ in range(per_photo)]
    for source, img, kind in track(jobs, description=f"split seed {seed}", console=console):
        images += 1
        faces = pipeline.find(np.asarray(img))
        usable = [f for f in faces if f.verdict.usable]
        if len(faces) != 1 or not usable:
            reason = "no face" if not faces else "several faces" if len(faces) > 1 else "quality"
            refused[reason] = refused.get(reason, 0) + 1
            continue
        vector = pipeline.embed(usable[0])
        if kind == "original" and source.person not in originals_of:
            originals_of[source.person] = vector
            continue  # the enrolled photo: the gallery's, not a probe
        vectors.append(vector)
        people.append(source.person)
        photos.append(source.photo)
        kinds.append(kind)
    return {
        "images": images,
        "embedded": len(vectors) + len(originals_of),  # the gallery's photos included
        "refused": refused,
        "vectors": np.array(vectors),
        "people": people,
        "photos": photos,
        "originals": originals_of,
    }


def _tracks(test: dict[str, Any], rule: MatchRule, per_person: int, seed: int) -> dict[str, int]:
    """Walk-ins through the k-of-n matcher, each person in turn the non-member.

    The gallery holds one embedding per member (their unedited photo); a track is ``n``
    random edited frames of one person. A member's track must give exactly their
    arrival; a non-member's track must give none.
    """
    rng = np.random.default_rng(seed)
    vectors, people = test["vectors"], np.asarray(test["people"])
    originals = test["originals"]
    counts = {"member_tracks": 0, "recognised": 0, "missed": 0, "wrong_member": 0,
              "stranger_tracks": 0, "stranger_recognised": 0}  # fmt: skip
    t0 = datetime(2026, 12, 4, tzinfo=UTC)
    for outsider in sorted(set(people)):
        members = [p for p in sorted(set(people)) if p != outsider]
        gallery = Gallery(np.stack([originals[p] for p in members]), members)
        for person in sorted(set(people)):
            pool = np.flatnonzero(people == person)
            for n in range(per_person):
                arrivals: list[Arrival] = []
                matcher = EntranceMatcher("bench", gallery, rule, arrivals.append)
                for i in rng.choice(pool, size=rule.n, replace=len(pool) < rule.n):
                    matcher.observe(f"{person}-{n}", t0, vectors[i])
                if person == outsider:
                    counts["stranger_tracks"] += 1
                    counts["stranger_recognised"] += len(arrivals)
                    continue
                counts["member_tracks"] += 1
                if not arrivals:
                    counts["missed"] += 1
                elif arrivals[0].customer_id == person:
                    counts["recognised"] += 1
                else:
                    counts["wrong_member"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra-faces", type=Path, default=None)
    parser.add_argument("--per-photo", type=int, default=12, help="augmentations per photo")
    args = parser.parse_args()
    settings = Settings()
    pipeline = FacePipeline.from_settings(settings)
    sources = _sources(args.extra_faces)
    crops = [(s, _face_crop(pipeline, s.image)) for s in sources]
    started = time.perf_counter()
    val = _embed_split(pipeline, crops, args.per_photo, seed=1, originals=False)
    test = _embed_split(pipeline, crops, args.per_photo, seed=2, originals=True)
    val_pairs = pair_distances(val["vectors"], val["people"])
    threshold = choose_threshold(val_pairs, margin=MARGIN, ceiling=DLIB_LFW_THRESHOLD)
    test_all = pair_distances(test["vectors"], test["people"])
    test_cross = pair_distances(test["vectors"], test["people"], groups=test["photos"])
    rows = {
        "validation (threshold chosen here)": rates_at(threshold, val_pairs),
        "test: all pairs": rates_at(threshold, test_all),
        "test: different photos only": rates_at(threshold, test_cross),
        "test, at the configured threshold": rates_at(settings.faces_match_threshold, test_all),
    }
    table = Table(title=f"Face pairs at threshold {threshold} (chosen on validation)")
    for col in ("split", "threshold", "genuine", "impostor", "false non-match", "FNMR",
                "false match", "FMR"):  # fmt: skip
        table.add_column(col, justify="right" if col != "split" else "left")
    for name, r in rows.items():
        table.add_row(name, f"{r.threshold:.3f}", str(r.genuine_pairs), str(r.impostor_pairs),
                      str(r.false_non_matches), f"{r.fnmr:.2%}", str(r.false_matches),
                      f"{r.fmr:.2%}")  # fmt: skip
    console.print(table)
    sweep = {t: rates_at(t, test_all) for t in SWEEP}
    curve = Table(title="Test split, all pairs, by threshold")
    for col in ("threshold", "false non-match", "FNMR", "false match", "FMR"):
        curve.add_column(col, justify="right")
    for t, r in sweep.items():
        curve.add_row(f"{t:.2f}", str(r.false_non_matches), f"{r.fnmr:.2%}",
                      str(r.false_matches), f"{r.fmr:.2%}")  # fmt: skip
    console.print(curve)
    rule = MatchRule(
        threshold=settings.faces_match_threshold,
        k=settings.faces_match_k,
        n=settings.faces_match_n,
        track_idle_s=settings.faces_track_idle_s,
    )
    walk_ins = _tracks(test, rule, per_person=25, seed=3)
    console.print(f"walk-ins at {rule.threshold}, {rule.k} of {rule.n} frames: {walk_ins}")
    coverage = {
        split: {"images": d["images"], "embedded": d["embedded"], "refused": d["refused"]}
        for split, d in (("validation", val), ("test", test))
    }
    console.print(f"coverage: {json.dumps(coverage)}")
    stats = {
        "genuine_max_validation": float(val_pairs.genuine.max()),
        "impostor_min_validation": float(val_pairs.impostor.min()),
        "genuine_p95_test": float(np.percentile(test_all.genuine, 95)),
        "impostor_min_test": float(test_all.impostor.min()),
    }
    console.print(stats)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "recognition_accuracy",
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": platform.machine(),
                "people": sorted({s.person for s in sources}),
                "photos": sorted({s.photo for s in sources}),
                "source_images": len(sources),
                "augmentations_per_photo": args.per_photo,
                "chosen_threshold": threshold,
                "configured_threshold": settings.faces_match_threshold,
                "rates": {k: v.as_dict() for k, v in rows.items()},
                "sweep_test_all_pairs": [r.as_dict() for r in sweep.values()],
                "walk_ins": {"threshold": rule.threshold, "k": rule.k, "n": rule.n, **walk_ins},
                "distances": stats,
                "coverage": coverage,
                "seconds": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
