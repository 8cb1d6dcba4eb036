"""The factor model: implicit-feedback ALS from the ``implicit`` library, loaded lazily.

``implicit`` (and its OpenBLAS threads) stays out of ``import storelens`` and of the
default install: it is the ``recommend`` extra, and asking for it without the extra
raises :class:`MissingExtra` naming the extra to install.
"""

from __future__ import annotations

from typing import Any

import scipy.sparse as sp

from storelens.core.errors import MissingExtra

__all__ = ["fit_als"]


def fit_als(
    user_items: sp.csr_matrix, factors: int, regularization: float, iterations: int, seed: int
) -> Any:
    """Fit ALS on BM25-weighted user x item counts; returns the ``implicit`` model."""
    try:
        from implicit.als import AlternatingLeastSquares
        from implicit.nearest_neighbours import bm25_weight
        from threadpoolctl import threadpool_limits
    except ImportError as exc:  # pragma: no cover - the dev install has the extra
        raise MissingExtra("implicit-feedback ALS", "recommend") from exc
    weighted = sp.csr_matrix(bm25_weight(user_items, K1=100, B=0.8))
    # One BLAS thread: implicit parallelises itself, and nested BLAS threads slow it down.
    # The model is built inside the limit too: its constructor checks the BLAS threads
    # and otherwise warns the user about a setting this function already takes care of.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            iterations=iterations,
            random_state=seed,
            use_gpu=False,
            calculate_training_loss=False,
        )
        model.fit(weighted, show_progress=False)
    return model
