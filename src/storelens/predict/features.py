"""Per-customer purchase features as of a moment, with nothing from after it.

A model trained on features that peeked past its cut-off looks brilliant offline and
fails in the shop, so the cut-off is applied in the one query that defines the features
(``ts < as_of``), not left to whoever loads the data.

The query is plain SQL (a window ``LAG``, aggregates, ``CASE``), run on DuckDB over a
dataframe here; times arrive as epoch seconds so that no dialect's date functions are
needed. ``sqlglot`` (installed with splink) transpiles it to Spark SQL; the test
transpiles it there and back and gets the same answer on DuckDB (PySpark itself is
not installed here, so it has not been run on Spark). That is the path for the
scale-out batch job; Ibis would add a dependency for the same effect.

Features, one row per customer with at least one order before ``as_of``:

=====================  ==================================================================
recency_days           days from the last order to ``as_of``
orders                 orders placed (the F of RFM)
monetary               total spent (the M of RFM)
average_order_value    monetary / orders
tenure_days            days from the first order to ``as_of``
interpurchase_days     mean gap between consecutive orders (NULL with one order)
interpurchase_cv       gaps' standard deviation / mean: 0 is clockwork (NULL under 3 orders)
share_in_store, ...    share of orders per channel (NULL when orders carry no channel)
=====================  ==================================================================

Orders are taken under the customer id they carry; ids an identity merge retired are
not folded in here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from storelens.core.errors import MissingExtra

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Connection

__all__ = ["CHANNELS", "FEATURE_COLUMNS", "customer_features", "features_sql", "orders_frame"]

CHANNELS = ("in_store", "web", "mobile")
FEATURE_COLUMNS = (
    "recency_days",
    "orders",
    "monetary",
    "average_order_value",
    "tenure_days",
    "interpurchase_days",
    "interpurchase_cv",
    *(f"share_{c}" for c in CHANNELS),
)
_DAY = 86400.0


def features_sql(as_of_s: float) -> str:
    """The feature query over ``orders(customer_id, t, amount, channel)``, ``t`` in epoch s."""
    cut = repr(float(as_of_s))  # a float we computed: nothing from a user reaches the text
    shares = ",\n  ".join(
        f"AVG(CASE WHEN channel IS NULL THEN NULL WHEN channel = '{c}' THEN 1.0 ELSE 0.0 END)"
        f" AS share_{c}"
        for c in CHANNELS
    )
    return f"""
WITH past AS (
  SELECT customer_id, t, amount, channel FROM orders WHERE t < {cut}
), gaps AS (
  SELECT customer_id, t, amount, channel,
    (t - LAG(t) OVER (PARTITION BY customer_id ORDER BY t)) / {_DAY} AS gap
  FROM past
)
SELECT
  customer_id,
  ({cut} - MAX(t)) / {_DAY} AS recency_days,
  COUNT(*) AS orders,
  SUM(amount) AS monetary,
  SUM(amount) / COUNT(*) AS average_order_value,
  ({cut} - MIN(t)) / {_DAY} AS tenure_days,
  AVG(gap) AS interpurchase_days,
  CASE WHEN COUNT(gap) >= 2 AND AVG(gap) > 0 THEN STDDEV_POP(gap) / AVG(gap) END
    AS interpurchase_cv,
  {shares}
FROM gaps
GROUP BY customer_id
ORDER BY customer_id
"""


def _epoch_seconds(ts: pd.Series) -> pd.Series:
    """Seconds since 1970 UTC; naive timestamps are taken as UTC, as storage keeps them."""
    import pandas as pd

    stamps = pd.to_datetime(ts)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return (stamps - pd.Timestamp(0)).dt.total_seconds()


def customer_features(orders: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Features per customer from ``customer_id``, ``ts``, ``amount`` [, ``channel``] rows.

    ``as_of`` is an instant (naive means UTC); an order at exactly ``as_of`` is after it.
    Rows without a customer id are ignored. Indexed by ``customer_id``, sorted.
    """
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise MissingExtra("customer features", "predict") from exc
    import pandas as pd

    cut = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    frame = pd.DataFrame(
        {
            "customer_id": orders["customer_id"].astype("string"),
            "t": _epoch_seconds(orders["ts"]),
            "amount": orders["amount"].astype("float64"),
            "channel": (
                orders["channel"].astype("string")
                if "channel" in orders
                else pd.Series(pd.NA, index=orders.index, dtype="string")
            ),
        }
    )
    frame = frame[frame["customer_id"].notna()]
    con = duckdb.connect()
    try:
        con.register("orders", frame)
        out = con.execute(features_sql(cut.timestamp())).df()
    finally:
        con.close()
    out["orders"] = out["orders"].astype("int64")
    return out.set_index("customer_id")


def orders_frame(conn: Connection, before: datetime) -> pd.DataFrame:
    """Orders with a customer id placed before ``before``, from the ``orders`` projection."""
    import pandas as pd
    from sqlalchemy import select

    from storelens.storage.tables import orders

    rows = conn.execute(
        select(orders.c.customer_id, orders.c.ts, orders.c.total, orders.c.channel).where(
            orders.c.customer_id.is_not(None), orders.c.ts < before
        )
    ).all()
    return pd.DataFrame(
        {
            "customer_id": pd.Series([r.customer_id for r in rows], dtype="string"),
            "ts": pd.to_datetime([r.ts for r in rows], utc=True),
            "amount": pd.Series([r.total for r in rows], dtype="float64"),
            "channel": pd.Series([r.channel for r in rows], dtype="string"),
        }
    )
