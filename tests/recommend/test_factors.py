"""ALS through ``implicit``: fitted quietly, with the BLAS threads it needs."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from storelens.recommend.factors import fit_als


def test_fitting_warns_nothing_about_blas_threads() -> None:
    """``implicit`` warns from the model's constructor when BLAS has several threads;
    ``fit_als`` limits them to one, so a user running ``recommend eval`` on a
    multi-core machine must not be told to set OPENBLAS_NUM_THREADS themselves."""
    user_items = sp.random(60, 40, density=0.15, format="csr", random_state=3)
    user_items.data[:] = 1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = fit_als(user_items, factors=8, regularization=0.1, iterations=3, seed=1)
    assert [str(w.message) for w in caught if "BLAS" in str(w.message)] == []
    assert np.asarray(model.user_factors).shape == (60, 8)
