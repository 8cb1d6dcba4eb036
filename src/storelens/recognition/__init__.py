"""Returning-customer recognition, for customers who enrolled with biometric consent only.

Everyone else stays an anonymous track: a face that matches no member is dropped in
the frame it was seen in, and nothing of it is stored or logged. Importing this package
imports no face code: dlib and the model files load on first use (the ``faces`` extra),
and a store whose recognition switch is off never reaches them.

::

    enrollment.py   photos + consent -> embeddings (photos discarded)   ─┐
    keyring.py      AES-256-GCM at rest, key file, rotation              ├─ store.py (tables)
    faces.py        dlib: HOG/CNN detection, 5 landmarks, 128-d vectors  │
    quality.py      size, blur, pose gates (pure numpy)                  │
    matcher.py      k of n frames of one track under the threshold ──▶ ArrivalSink
    entrance.py     a store's camera: switch checked, gallery loaded, frames in
    evaluate.py     FMR / FNMR and threshold choice (pure)
"""

from __future__ import annotations

__all__: list[str] = []
