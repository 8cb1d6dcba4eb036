"""A supervised churn classifier: gradient boosting on point-in-time features, calibrated.

BG/NBD's P(no purchase) knows only recency, frequency and tenure, and assumes every
customer follows one story. A classifier can use whatever the features hold (channel
mix, order value, regularity) and learn how churn actually happens in this shop, as
long as it is trained the honest way: features at a past cut-off (nothing after it),
the label from a known outcome window after it ("no purchase in the next N days"),
and scored on a *later* cut-off whose outcome it never saw.

Boosted trees are sharp but not calibrated: a score of 0.7 need not mean 70 %. So
the model is wrapped in scikit-learn's ``CalibratedClassifierCV`` (isotonic by default,
Platt's sigmoid for small data), fitted on held-out folds, and the report shows a
calibration table beside ROC AUC and PR AUC (:func:`storelens.predict.churn.churn_report`).
scikit-learn's ``HistGradientBoostingClassifier`` is used rather than lightgbm: it is
already a dependency, handles missing features natively (one-order customers have no
inter-purchase gap), and on these feature counts the two score alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from storelens.core.errors import MissingExtra
from storelens.predict.churn import ChurnReport, churn_report
from storelens.predict.features import FEATURE_COLUMNS, customer_features

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MIN_TRAINING_CUSTOMERS",
    "ChurnClassifier",
    "ChurnEvaluation",
    "churn_labels",
    "evaluate_churn_classifier",
    "fit_churn_classifier",
    "training_set",
]

Array = npt.NDArray[np.float64]
Calibration = Literal["isotonic", "sigmoid"]
_FOLDS = 3
_MIN_LEAF = 40
MIN_TRAINING_CUSTOMERS = -(-2 * _MIN_LEAF * _FOLDS // (_FOLDS - 1))
"""Below this, a calibration fold's training part cannot hold two leaves of
``_MIN_LEAF``: the booster makes no split and every customer gets the same risk (the
demo's 47 consenting customers all showed 10.6 %)."""


def churn_labels(orders: pd.DataFrame, customers: pd.Index, cutoff: datetime, days: int) -> Any:
    """True for each customer with no order in ``[cutoff, cutoff + days)``."""
    import pandas as pd

    cut = _naive_instant(cutoff)
    start, stop = pd.Timestamp(cut), pd.Timestamp(cut + timedelta(days=days))
    ts = _naive_utc(orders["ts"])
    bought = set(orders.loc[(ts >= start) & (ts < stop), "customer_id"].astype(str))
    return pd.Series([c not in bought for c in customers], index=customers, dtype=bool)


def _naive_instant(when: datetime) -> datetime:
    """An instant as naive UTC (how order times are compared here); naive means UTC."""
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _naive_utc(ts: pd.Series) -> pd.Series:
    import pandas as pd

    stamps = pd.to_datetime(ts)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps


def training_set(orders: pd.DataFrame, cutoff: datetime, days: int) -> tuple[Any, Any]:
    """Features as of ``cutoff`` and churn labels over the ``days`` after it."""
    features = customer_features(orders, cutoff)
    return features, churn_labels(orders, features.index, cutoff, days)


@dataclass(frozen=True, slots=True)
class ChurnClassifier:
    """A calibrated classifier and what it was trained on (for the model registry)."""

    model: Any
    columns: tuple[str, ...]
    """Features used: those with at least one value in training (no channel data: none)."""
    cutoff: datetime
    window_days: int
    calibration: Calibration
    customers: int
    churn_rate: float

    def predict(self, features: pd.DataFrame) -> Array:
        """P(no purchase in the window) for each row of :func:`customer_features` output."""
        proba = self.model.predict_proba(features[list(self.columns)].astype("float64"))
        result: Array = np.asarray(proba[:, 1], dtype=np.float64)
        return result

    def params(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "window_days": self.window_days,
            "calibration": self.calibration,
            "customers": self.customers,
            "churn_rate": round(self.churn_rate, 4),
            "features": list(self.columns),
        }


def fit_churn_classifier(
    features: pd.DataFrame,
    labels: pd.Series,
    *,
    cutoff: datetime,
    window_days: int,
    calibration: Calibration = "isotonic",
    seed: int = 0,
    threads: int | None = None,
) -> ChurnClassifier:
    """Gradient boosting on ``features`` for ``labels``, calibrated on held-out folds.

    ``threads`` caps OpenMP threads: on a machine shared with other work, boosting's
    threads fight for the cores and one thread is an order of magnitude faster.
    """
    try:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import threadpool_limits
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise MissingExtra("the churn classifier", "predict") from exc
    y = labels.reindex(features.index).to_numpy(dtype=bool)
    if len(y) < MIN_TRAINING_CUSTOMERS or y.all() or not y.any():
        raise ValueError(
            f"need at least {MIN_TRAINING_CUSTOMERS} customers with both churners and "
            f"stayers to train a churn classifier, got {len(y)} ({int(y.sum())} churned)"
        )
    booster = HistGradientBoostingClassifier(
        max_iter=200,
        learning_rate=0.05,
        max_leaf_nodes=15,
        min_samples_leaf=_MIN_LEAF,
        l2_regularization=1.0,
        random_state=seed,
    )
    columns = tuple(c for c in FEATURE_COLUMNS if features[c].notna().any())
    model = CalibratedClassifierCV(booster, method=calibration, cv=_FOLDS)
    x = features[list(columns)].astype("float64")
    with threadpool_limits(limits=threads):
        model.fit(x, y)
        spread = np.ptp(model.predict_proba(x)[:, 1])
    if spread == 0:  # nothing learned: one risk for all would read as a finding
        raise ValueError(f"the churn classifier found nothing to tell {len(y)} customers apart by")
    return ChurnClassifier(
        model=model,
        columns=columns,
        cutoff=cutoff,
        window_days=window_days,
        calibration=calibration,
        customers=len(y),
        churn_rate=float(y.mean()),
    )


@dataclass(frozen=True, slots=True)
class ChurnEvaluation:
    """A classifier trained at one cut-off and judged at the next, on unseen outcomes."""

    train_cutoff: datetime
    test_cutoff: datetime
    window_days: int
    classifier: ChurnClassifier
    report: ChurnReport
    predicted: Array
    churned: npt.NDArray[np.bool_]
    customers: pd.Index

    def as_json(self) -> dict[str, Any]:
        return {
            "train_cutoff": self.train_cutoff.isoformat(),
            "test_cutoff": self.test_cutoff.isoformat(),
            "window_days": self.window_days,
            "trained_on": self.classifier.customers,
            **self.report.as_json(),
        }


def evaluate_churn_classifier(
    orders: pd.DataFrame,
    test_cutoff: datetime,
    window_days: int,
    *,
    calibration: Calibration = "isotonic",
    seed: int = 0,
    threads: int | None = None,
) -> ChurnEvaluation:
    """Train at ``test_cutoff - window`` (labels end at ``test_cutoff``), test at ``test_cutoff``.

    Training reads only orders before ``test_cutoff``; the test labels come from the
    ``window_days`` after it, which must already be in ``orders``.
    """
    import pandas as pd

    train_cutoff = test_cutoff - timedelta(days=window_days)
    seen = orders[_naive_utc(orders["ts"]) < pd.Timestamp(_naive_instant(test_cutoff))]
    features, labels = training_set(seen, train_cutoff, window_days)
    classifier = fit_churn_classifier(
        features,
        labels,
        cutoff=train_cutoff,
        window_days=window_days,
        calibration=calibration,
        seed=seed,
        threads=threads,
    )
    test_features, test_labels = training_set(orders, test_cutoff, window_days)
    predicted = classifier.predict(test_features)
    churned = test_labels.to_numpy(dtype=bool)
    return ChurnEvaluation(
        train_cutoff=train_cutoff,
        test_cutoff=test_cutoff,
        window_days=window_days,
        classifier=classifier,
        report=churn_report(predicted, churned),
        predicted=predicted,
        churned=churned,
        customers=test_features.index,
    )
