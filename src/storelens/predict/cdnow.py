"""The CDNOW purchase log that ships inside the ``lifetimes`` wheel, as a transactions frame.

CDNOW (23,570 customers who first bought in Q1 1997, followed to mid-1998) is the data
BG/NBD was published on, so it is the yardstick for our lifetime-value numbers. The
wheel carries the full log and the 1/10 sample the paper used; both are read from
wherever ``lifetimes`` is installed, with no download.
"""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from storelens.core.errors import MissingExtra

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CALIBRATION_END", "HOLDOUT_END", "cdnow_path", "load_cdnow"]

# The published split: 39 weeks of calibration from 1997-01-01, then 39 of holdout.
CALIBRATION_END = date(1997, 9, 30)
HOLDOUT_END = date(1998, 6, 30)

_FILES = {"sample": "CDNOW_sample.txt", "full": "CDNOW_master.txt"}
# The sample file carries the master id and a sample id; the master file has a header.
_SAMPLE_COLUMNS = ["customer_id", "sample_id", "date", "cds", "amount"]
_MASTER_COLUMNS = ["customer_id", "date", "cds", "amount"]


def cdnow_path(which: Literal["sample", "full"]) -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or spec.origin is None:
        raise MissingExtra("the CDNOW benchmark data", "predict")
    return Path(spec.origin).parent / "datasets" / _FILES[which]


def load_cdnow(which: Literal["sample", "full"] = "sample") -> pd.DataFrame:
    """``customer_id``, ``date`` (day), ``amount``: the frame :func:`read_transactions` gives."""
    import pandas as pd

    sample = which == "sample"
    raw = pd.read_csv(
        cdnow_path(which),
        sep=r"\s+",
        header=None,
        skiprows=0 if sample else 1,
        names=_SAMPLE_COLUMNS if sample else _MASTER_COLUMNS,
        dtype={"customer_id": str, "date": str},
    )
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "date": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["amount"].astype("float64"),
        }
    )
