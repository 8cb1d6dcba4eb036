"""Per-customer purchase summaries in the form BG/NBD and Gamma-Gamma are fitted on.

Period convention (the one Fader, Hardie and Lee used for CDNOW, and the one that
reproduces their r=0.243, alpha=4.414, a=0.793, b=2.426): purchases are counted once per
customer per **day** (two orders on one day are one purchase of their summed value),
and times are in **weeks** of seven days, fractional (``recency = days / 7``).

Written here on pandas rather than taken from ``lifetimes.utils.calibration_and_holdout_data``
for two reasons: that function fails on pandas 3 (checked in the house field notes),
and it carries the first purchase's per-day rows through several merges that cost
seconds at a million customers. ``tests/predict/test_summary.py`` checks that the two
agree to the last digit on CDNOW, so nothing is lost by owning these thirty lines.

The cohort is everyone with a purchase on or before the calibration end; customers
whose first purchase falls in the holdout are not in it (the model has nothing to
say about them), and purchases after the holdout end are ignored.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from storelens.predict.transactions import TransactionFileError, check_window

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DAYS_PER_PERIOD", "calibration_summary", "holdout_summary", "summarise"]

DAYS_PER_PERIOD = 7  # a period is a week; purchases are still counted per day


def _daily(tx: pd.DataFrame) -> pd.DataFrame:
    """One row per customer and day with the day's summed spend."""
    return tx.groupby(["customer_id", "date"], sort=True, observed=True, as_index=False)[
        "amount"
    ].sum()


def calibration_summary(tx: pd.DataFrame, end: date) -> pd.DataFrame:
    """``frequency``, ``recency``, ``T``, ``monetary`` per customer as of ``end`` (inclusive).

    ``frequency`` counts repeat purchase days, ``monetary`` is the mean of those repeat
    days' spend (0 for one-time buyers), as Gamma-Gamma expects.
    """
    import pandas as pd

    cut = pd.Timestamp(end)
    daily = _daily(tx[tx["date"] <= cut])
    grouped = daily.groupby("customer_id", sort=True)
    first = grouped["date"].min()
    last = grouped["date"].max()
    days = grouped["date"].size()
    total = grouped["amount"].sum()
    first_spend = grouped["amount"].first()  # rows are sorted by date within a customer
    frequency = (days - 1).astype("float64")
    repeat_spend = total - first_spend
    monetary = (repeat_spend / frequency.where(frequency > 0)).fillna(0.0)
    # In whole days, not nanoseconds: a gap of more than 292 years (two dates pandas reads
    # fine, 1700 and 2026) overflowed the nanosecond difference with a traceback (a review).
    first_day = first.to_numpy().astype("datetime64[D]")
    return pd.DataFrame(
        {
            "frequency": frequency,
            "recency": _days(last.to_numpy().astype("datetime64[D]") - first_day),
            "T": _days(np.datetime64(end, "D") - first_day),
            "monetary": monetary,
        },
        index=first.index,
    )


def _days(gap: npt.NDArray[np.timedelta64]) -> npt.NDArray[np.float64]:
    """Whole-day gaps as periods."""
    periods: npt.NDArray[np.float64] = gap.astype(np.int64).astype(np.float64) / DAYS_PER_PERIOD
    return periods


def holdout_summary(
    tx: pd.DataFrame, customers: pd.Index, calibration_end: date, holdout_end: date
) -> pd.DataFrame:
    """``purchases`` (days with a purchase) and ``spend`` in the holdout, per cohort customer."""
    import pandas as pd

    start, stop = pd.Timestamp(calibration_end), pd.Timestamp(holdout_end)
    window = tx[(tx["date"] > start) & (tx["date"] <= stop)]
    daily = _daily(window[window["customer_id"].isin(customers)])
    grouped = daily.groupby("customer_id", sort=True)
    out = pd.DataFrame(
        {
            "purchases": grouped["date"].size().astype("float64"),
            "spend": grouped["amount"].sum(),
        }
    )
    return out.reindex(customers, fill_value=0.0)


def summarise(tx: pd.DataFrame, calibration_end: date, holdout_end: date) -> pd.DataFrame:
    """Calibration columns joined to holdout ``purchases`` and ``spend``, one row a customer.

    Raises :class:`TransactionFileError` when the window is backwards or nobody bought
    anything by the calibration end.
    """
    check_window(calibration_end, holdout_end)
    cal = calibration_summary(tx, calibration_end)
    if cal.empty:
        raise TransactionFileError(
            f"no purchases on or before {calibration_end}: nothing to fit on",
            column="--calibration-end",
        )
    _check_recorded_through(tx, calibration_end, holdout_end)
    hold = holdout_summary(tx, cal.index, calibration_end, holdout_end)
    return cal.join(hold)


QUIET_DAYS = 7
"""Days without a purchase at the end of a holdout that still read as a quiet week,
not as a file that stops early."""


def _check_recorded_through(tx: pd.DataFrame, calibration_end: date, holdout_end: date) -> None:
    """The file must run to the holdout's end: purchases after its last day were never
    recorded, and the holdout would count them as not made. A holdout two years past the
    data read as a 478 % over-forecast, one wholly after it as "nothing happened" (a
    review)."""
    last = tx["date"].max().date()
    if last <= calibration_end:
        raise TransactionFileError(
            f"the file's last purchase is on {last}, not after the calibration end: the "
            "holdout holds nothing to compare a forecast with",
            column="--calibration-end",
        )
    if (holdout_end - last).days > QUIET_DAYS:
        raise TransactionFileError(
            f"the file's last purchase is on {last}, {(holdout_end - last).days} days before "
            f"the holdout ends: later purchases were not recorded, so the holdout would count "
            f"them as not made; end the holdout on {last}",
            column="--holdout-end",
        )
