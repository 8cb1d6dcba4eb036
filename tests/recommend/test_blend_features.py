"""The blend's inputs: order context and cart positions read from basket files, the split
carrying the held-out order's context (and nothing else of it), and the per-customer
habit statistics worked by hand on a four-order history."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from storelens.core.errors import InvalidInput
from storelens.recommend.baskets import (
    BasketLine,
    history_from_lines,
    read_baskets_csv,
    split_last,
)
from storelens.recommend.features import PAIR_COLUMNS, candidate_features, pair_stats

NAN = math.nan


def _four_orders() -> list[BasketLine]:
    """u1: {milk, bread} then 7 days {milk}, 3 days {jam}, 4 days {jam, milk};
    u2 buys milk twice, so milk is kept by one buyer of two."""
    return [
        BasketLine("u1", "o1", "milk", 1, 1, NAN, 0, 9),
        BasketLine("u1", "o1", "bread", 1, 2, NAN, 0, 9),
        BasketLine("u1", "o2", "milk", 2, 1, 7, 0, 9),
        BasketLine("u1", "o3", "jam", 3, 1, 3, 3, 18),
        BasketLine("u1", "o4", "jam", 4, 1, 4, 0, 10),
        BasketLine("u1", "o4", "milk", 4, 2, 4, 0, 10),
        BasketLine("u2", "p1", "milk", 1, 1, NAN, 5, 12),
        BasketLine("u2", "p2", "tea", 2, 1, 10, 6, 12),
        BasketLine("u2", "p3", "milk", 3, 1, 10, 2, 12),
    ]


def test_basket_file_context_columns(tmp_path: Path) -> None:
    f = tmp_path / "b.csv"
    f.write_text(
        "order_id,user_id,product_id,order_number,add_to_cart_order,order_dow,"
        "order_hour_of_day,days_since_prior_order\n"
        "o1,u1,milk,1,2,0,9,\n"
        "o1,u1,bread,1,1,0,9,\n"
        "o2,u1,milk,2,1,3,18,7.0\n"
    )
    h = read_baskets_csv(f)
    when = h.order_context(0)
    assert math.isnan(when[0, 0]) and when[0, 1:].tolist() == [0, 9]  # first order: no gap
    assert when[1].tolist() == [7.0, 3, 18]
    milk, bread = h.items.index("milk"), h.items.index("bread")
    first = h.baskets[0][0].tolist()
    cart = h.cart_positions(0, 0).tolist()
    assert cart[first.index(milk)] == 2 and cart[first.index(bread)] == 1


def test_basket_file_without_context_is_all_unknown(tmp_path: Path) -> None:
    f = tmp_path / "b.csv"
    f.write_text("order_id,user_id,product_id,order_number\no1,u1,a,1\no2,u1,b,2\n")
    h = read_baskets_csv(f)
    assert h.when == () and h.cart == ()
    assert np.isnan(h.order_context(0)).all() and np.isnan(h.cart_positions(0, 1)).all()
    assert np.isnan(split_last(h).context).all()


@pytest.mark.parametrize(
    ("column", "value"),
    [("days_since_prior_order", "soon"), ("order_dow", "inf"), ("add_to_cart_order", "x")],
)
def test_bad_context_cell_names_line_and_column(tmp_path: Path, column: str, value: str) -> None:
    f = tmp_path / "b.csv"
    cells = {"add_to_cart_order": "1", "order_dow": "2", "days_since_prior_order": "3"}
    cells[column] = value
    f.write_text(
        "order_id,user_id,product_id,order_number," + ",".join(cells) + "\n"
        "o1,u1,a,1," + ",".join(cells.values()) + "\n"
    )
    with pytest.raises(InvalidInput) as err:
        read_baskets_csv(f)
    assert err.value.errors[0].loc == f"line.2.{column}"


def test_split_keeps_the_held_out_context_but_not_its_cart() -> None:
    h = history_from_lines(_four_orders())
    split = split_last(h)
    assert split.context.tolist() == [[4, 0, 10], [10, 2, 12]]
    assert [len(b) for b in split.train.baskets] == [3, 2]
    assert [len(c) for c in split.train.cart] == [3, 2]
    assert [len(w) for w in split.train.when] == [3, 2]
    head = h.head(2)
    assert head.users == ("u1", "u2") and len(head.baskets[1]) == 1


def test_pair_stats_by_hand() -> None:
    h = history_from_lines(_four_orders())
    stats = pair_stats(h)
    col = {name: i for i, name in enumerate(PAIR_COLUMNS)}

    def row(user: int, product: str) -> dict[str, float]:
        values = stats.lookup(np.array([user]), np.array([h.items.index(product)]), h.n_items)
        return {name: float(values[0, i]) for name, i in col.items()}

    milk = row(0, "milk")
    assert milk["times_bought"] == 3 and milk["share_of_baskets"] == 0.75
    assert milk["baskets_since_bought"] == 1 and milk["streak"] == 1
    assert milk["bought_last_3"] == 2
    assert milk["days_since_bought"] == 0 and milk["mean_days_between"] == 7  # 14 days, 2 gaps
    assert milk["mean_baskets_between"] == 1.5
    assert milk["cart_position"] == pytest.approx((1 / 2 + 1 / 1 + 2 / 2) / 3)
    # kept once of twice (o1 -> o2 yes, o2 -> o3 no); came back once of once (o3 -> o4)
    assert (milk["kept_after_bought"], milk["kept_chances"]) == (1, 2)
    assert (milk["came_back"], milk["came_back_chances"]) == (1, 1)
    assert milk["chance_next"] == pytest.approx((1 + 1) / (2 + 2))  # in the last basket
    bread = row(0, "bread")
    assert bread["days_since_bought"] == 14 and math.isnan(bread["mean_days_between"])
    assert bread["chance_next"] == pytest.approx((0 + 1) / (2 + 2))  # skipped twice since
    jam = row(0, "jam")
    assert jam["streak"] == 2 and jam["share_since_first"] == 1.0
    never = row(1, "jam")
    assert never["times_bought"] == 0 and math.isnan(never["chance_next"])
    assert stats.users[0, 0] == 4 and stats.users[1, 0] == 3  # baskets per user


def test_candidate_features_use_the_predicted_order_gap() -> None:
    h = history_from_lines(_four_orders())
    milk, jam = h.items.index("milk"), h.items.index("jam")
    scores = {"own": sp.csr_matrix(([2.0, 1.0], ([0, 0], [milk, jam])), shape=(2, h.n_items))}
    context = np.array([[5.0, 1, 8], [NAN, NAN, NAN]])
    users, items, x, names = candidate_features(h, scores, context)
    assert users.tolist() == [0, 0] and items.tolist() == sorted([milk, jam])
    at = {int(i): r for r, i in enumerate(items)}
    days = x[:, names.index("days_since_bought_at_order")]
    assert days[at[milk]] == 5  # bought in the last order, five days before this one
    assert x[at[milk], names.index("days_overdue_ratio")] == pytest.approx(5 / 7)
    assert x[at[jam], names.index("order_gap_days")] == 5
    assert x[at[milk], names.index("own_rank")] == 1 and x[at[jam], names.index("own_rank")] == 2
    unknown = candidate_features(h, scores, None)[2]
    assert np.isnan(unknown[:, names.index("days_since_bought_at_order")]).all()
    # milk is kept by u1 once of twice and by u2 never (bought, then tea): 1 of 3, smoothed
    assert x[at[milk], names.index("item_kept_rate")] == pytest.approx((1 + 1) / (3 + 2))
