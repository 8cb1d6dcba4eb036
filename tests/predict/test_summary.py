"""Calibration/holdout summaries: hand-checked on a tiny log, and equal to lifetimes' on CDNOW."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from storelens.predict.cdnow import CALIBRATION_END, HOLDOUT_END, load_cdnow
from storelens.predict.summary import calibration_summary, summarise
from storelens.predict.transactions import TransactionFileError


def _tx(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def test_counts_days_in_weeks_and_splits_at_the_calibration_end() -> None:
    tx = _tx(
        [
            ("a", "2024-01-01", 10.0),
            ("a", "2024-01-01", 5.0),  # same day: one purchase of 15
            ("a", "2024-01-15", 20.0),
            ("a", "2024-01-29", 40.0),  # the calibration end day is inside calibration
            ("a", "2024-02-05", 7.0),  # holdout
            ("a", "2024-02-05", 3.0),  # same holdout day
            ("a", "2024-03-01", 99.0),  # after the holdout: ignored
            ("b", "2024-01-22", 8.0),
            ("c", "2024-02-10", 50.0),  # first bought in the holdout: not in the cohort
        ]
    )
    out = summarise(tx, date(2024, 1, 29), date(2024, 2, 26))
    assert out.index.tolist() == ["a", "b"]
    a, b = out.loc["a"], out.loc["b"]
    assert (a["frequency"], a["recency"], a["T"], a["monetary"]) == (2.0, 4.0, 4.0, 30.0)
    assert (a["purchases"], a["spend"]) == (1.0, 10.0)
    assert (b["frequency"], b["recency"], b["T"], b["monetary"]) == (0.0, 0.0, 1.0, 0.0)
    assert (b["purchases"], b["spend"]) == (0.0, 0.0)


def test_nobody_before_the_calibration_end_is_an_error() -> None:
    tx = _tx([("a", "2024-03-01", 1.0)])
    with pytest.raises(TransactionFileError) as caught:
        summarise(tx, date(2024, 2, 1), date(2024, 4, 1))
    assert caught.value.column == "--calibration-end"


@pytest.mark.parametrize(
    ("calibration_end", "holdout_end", "option", "says"),
    [
        # A holdout two years past the data read as a 478 % over-forecast (a review).
        (date(2024, 1, 31), date(2026, 6, 30), "--holdout-end", "end the holdout on 2024-03-01"),
        # One wholly after it read as "nothing happened".
        (date(2024, 6, 1), date(2024, 12, 1), "--calibration-end", "holds nothing"),
    ],
)
def test_a_holdout_past_the_end_of_the_file_is_refused(
    calibration_end: date, holdout_end: date, option: str, says: str
) -> None:
    tx = _tx([("a", "2024-01-01", 1.0), ("a", "2024-03-01", 2.0)])
    with pytest.raises(TransactionFileError) as caught:
        summarise(tx, calibration_end, holdout_end)
    assert caught.value.column == option and says in str(caught.value)


def test_a_quiet_last_week_is_not_a_file_that_stops_early() -> None:
    tx = _tx([("a", "2024-01-01", 1.0), ("a", "2024-03-01", 2.0)])
    out = summarise(tx, date(2024, 1, 31), date(2024, 3, 8))  # 7 days without a purchase
    assert out.loc["a", "purchases"] == 1.0


def test_equals_lifetimes_calibration_and_holdout_data_on_cdnow() -> None:
    from lifetimes.utils import calibration_and_holdout_data

    tx = load_cdnow("sample")
    ours = summarise(tx, CALIBRATION_END, HOLDOUT_END)
    theirs = calibration_and_holdout_data(
        tx,
        "customer_id",
        "date",
        calibration_period_end=str(CALIBRATION_END),
        observation_period_end=str(HOLDOUT_END),
        freq="D",
        freq_multiplier=7,
        monetary_value_col="amount",
    )
    assert ours.index.tolist() == theirs.index.tolist()
    assert len(ours) == 2357
    for mine, its in [
        ("frequency", "frequency_cal"),
        ("recency", "recency_cal"),
        ("T", "T_cal"),
        ("monetary", "monetary_value_cal"),
        ("purchases", "frequency_holdout"),
    ]:
        np.testing.assert_allclose(ours[mine], theirs[its], rtol=1e-12, err_msg=mine)
    # lifetimes keeps the holdout's mean spend per transaction row; ours keeps the total.
    window = tx[
        (tx["date"] > pd.Timestamp(CALIBRATION_END)) & (tx["date"] <= pd.Timestamp(HOLDOUT_END))
    ]
    spent = window.groupby("customer_id")["amount"].sum().reindex(ours.index, fill_value=0.0)
    np.testing.assert_allclose(ours["spend"], spent, rtol=1e-12)
    assert ours["spend"].sum() == pytest.approx(70976.39)


def test_a_first_purchase_centuries_before_the_cut_is_counted_in_days() -> None:
    """1700 and 2026 are both dates pandas holds, but the nanoseconds between them are
    not: the difference overflowed with a traceback (a review). Days do not."""
    tx = pd.DataFrame(
        {
            "customer_id": ["old", "old", "new"],
            "date": pd.to_datetime(["1700-01-01", "2026-03-01", "2026-02-01"]),
            "amount": [10.0, 5.0, 7.0],
        }
    )
    summary = calibration_summary(tx, date(2026, 6, 30))
    days = (date(2026, 6, 30) - date(1700, 1, 1)).days
    assert summary.loc["old", "T"] == pytest.approx(days / 7)
    assert summary.loc["old", "recency"] == pytest.approx((days - 121) / 7)
    assert summary.loc["new", "T"] == pytest.approx(149 / 7)
