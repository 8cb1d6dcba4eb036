"""Offline pieces: basket files, metrics worked by hand, each source on a tiny history,
the blend's split discipline and the eval command's JSON shape."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from tests.recommend.baskets import planted_baskets
from typer.testing import CliRunner

from storelens.cli import app
from storelens.core.errors import InvalidInput
from storelens.recommend.baskets import history_from_rows, read_baskets_csv, split_last
from storelens.recommend.metrics import ranked_lists, score_lists
from storelens.recommend.sources import (
    TifuParams,
    copurchase_scores,
    repeat_scores,
    tifu_knn_scores,
    top_frequency_scores,
)


def _history(baskets: dict[str, list[list[str]]]):  # type: ignore[no-untyped-def]
    rows = [
        (user, f"{user}-{n}", product, n)
        for user, seq in baskets.items()
        for n, basket in enumerate(seq, start=1)
        for product in basket
    ]
    return history_from_rows(rows)


def test_read_baskets_orders_by_order_number_and_ignores_extra_columns(tmp_path: Path) -> None:
    f = tmp_path / "b.csv"
    f.write_text(
        "order_id,user_id,product_id,order_number,add_to_cart_order,whatever\n"
        "o2,u1,milk,2,1,x\no1,u1,bread,1,1,x\no1,u1,milk,1,2,x\no2,u1,milk,2,3,x\n"
        "o9,u2,tea,1,1,x\n"
    )
    h = read_baskets_csv(f)
    assert h.users == ("u1", "u2")
    first, second = h.baskets[0]
    assert sorted(h.items[i] for i in first) == ["bread", "milk"]
    assert [h.items[i] for i in second] == ["milk"]  # the repeated line counts once
    split = split_last(h)
    assert split.train.users == ("u1",)  # u2 has one order: nothing to hold out
    assert [h.items[i] for i in split.target[0]] == ["milk"]


@pytest.mark.parametrize(
    ("text", "loc"),
    [
        ("order_id,user_id,product_id\no1,u1,p\n", "header.order_number"),
        ("order_id,user_id,product_id,order_number\no1,u1,p,first\n", "line.2.order_number"),
        ("order_id,user_id,product_id,order_number\no1,,p,1\n", "line.2.user_id"),
        ("order_id,user_id,product_id,order_number\no1,u1\n", "line.2"),
        ("order_id,user_id,product_id,order_number\n", "rows"),
        ("", "header"),
        # Read without a word before a new user's review: a negative or fractional
        # position, one order given two positions or two users, a row too long.
        ("order_id,user_id,product_id,order_number\no1,u1,p,-2\n", "line.2.order_number"),
        ("order_id,user_id,product_id,order_number\no1,u1,p,2.5\n", "line.2.order_number"),
        ("order_id,user_id,product_id,order_number\no1,u1,p,0\n", "line.2.order_number"),
        ("order_id,user_id,product_id,order_number\no1,u1,p,1\no1,u1,q,7\n", "line.3.order_number"),
        ("order_id,user_id,product_id,order_number\no1,u1,p,1,x\n", "line.2"),
        # Read without a word or a traceback before a later review: context out of range,
        # two orders of one user at one position, a field over the csv size limit, a
        # Windows-1252 export.
        ("order_id,user_id,product_id,order_number,order_dow\no1,u1,p,1,9\n", "line.2.order_dow"),
        (
            "order_id,user_id,product_id,order_number,order_hour_of_day\no1,u1,p,1,25\n",
            "line.2.order_hour_of_day",
        ),
        (
            "order_id,user_id,product_id,order_number,days_since_prior_order\no1,u1,p,1,-3\n",
            "line.2.days_since_prior_order",
        ),
        (
            "order_id,user_id,product_id,order_number,add_to_cart_order\no1,u1,p,1,0\n",
            "line.2.add_to_cart_order",
        ),
        ("order_id,user_id,product_id,order_number\no1,u1,p,1\no2,u1,q,1\n", "line.3.order_number"),
        ("order_id,user_id,product_id,order_number\no1,u1," + "p" * 200_000 + ",1\n", "line.2"),
        ("order_id,user_id,product_id,order_number\no1,u\udce9,p,1\n", "line.2"),
    ],
)
def test_bad_basket_files_name_the_field(tmp_path: Path, text: str, loc: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_bytes(text.encode("utf-8", "surrogateescape"))  # \udce9: a lone cp1252 byte
    with pytest.raises(InvalidInput) as err:
        read_baskets_csv(f)
    assert err.value.errors[0].loc == loc


def test_a_byte_order_mark_and_the_last_empty_context_are_read(tmp_path: Path) -> None:
    """A BOM was read as part of the first column's name ("missing column order_id")."""
    f = tmp_path / "bom.csv"
    f.write_bytes(
        "\ufefforder_id,user_id,product_id,order_number,days_since_prior_order\n"
        "o1,u1,p,1,\no2,u1,p,2,7\n".encode()
    )
    assert read_baskets_csv(f).users == ("u1",)


def test_a_directory_and_an_email_in_a_number_column(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is a directory"):
        read_baskets_csv(tmp_path)
    f = tmp_path / "b.csv"
    f.write_text("order_id,user_id,product_id,order_number\no1,u1,p,ada@example.org\n")
    with pytest.raises(InvalidInput) as err:
        read_baskets_csv(f)
    assert "ada@" not in str(err.value) and "a•••@example.org" in str(err.value)


def test_an_out_of_range_context_value_is_shown_by_shape(tmp_path: Path) -> None:
    """A new user's review: order_number's bad cells were shown by shape, the context
    columns' by value, against what docs/recommendations.md promises."""
    f = tmp_path / "b.csv"
    f.write_text("order_id,user_id,product_id,order_number,order_hour_of_day\no1,u1,p,1,25\n")
    with pytest.raises(InvalidInput) as err:
        read_baskets_csv(f)
    assert str(err.value).endswith("must be a whole number from 0 to 23: '99'")


def test_a_semicolon_file_is_named_as_such(tmp_path: Path) -> None:
    """A new user's review: eval-clv said so, recommend eval only "missing column(s)"."""
    f = tmp_path / "b.csv"
    f.write_text("order_id;user_id;product_id;order_number\no1;u1;p;1\n")
    with pytest.raises(InvalidInput, match="looks semicolon-separated, it must be comma"):
        read_baskets_csv(f)


def test_metrics_by_hand() -> None:
    truth = [np.array([1, 2, 3], dtype=np.int32), np.array([4], dtype=np.int32)]
    lists = [np.array([1, 9, 3]), np.array([8, 7, 6])]
    pop = np.full(10, 0.5)
    s = score_lists(lists, truth, 3, 10, pop)
    assert s.precision == pytest.approx((2 / 3 + 0) / 2)
    assert s.recall == pytest.approx((2 / 3 + 0) / 2)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert s.ndcg == pytest.approx((1 + 1 / math.log2(4)) / ideal / 2)
    assert s.map == pytest.approx(((1 / 1 + 2 / 3) / 3 + 0) / 2)
    assert s.coverage == pytest.approx(6 / 10)  # 1, 9, 3, 8, 7, 6
    assert s.novelty == pytest.approx(1.0)  # -log2(0.5)
    # The counts behind the rates: 4 items held out, 6 listed, 2 of them hits.
    assert (s.held_out_items, s.listed, s.hits) == (4, 6, 2)


def test_sources_on_a_tiny_history() -> None:
    h = _history(
        {
            "a": [["milk", "bread"], ["milk"], ["milk", "jam"]],
            "b": [["milk", "jam"], ["bread", "jam"], ["jam"]],
            "c": [["tea"], ["tea", "honey"]],
        }
    )
    idx = {p: i for i, p in enumerate(h.items)}
    top = ranked_lists(top_frequency_scores(h, 5), 2)
    assert [h.items[i] for i in top[0]] == ["milk", "jam"]  # 3 baskets; then the newest
    rep = repeat_scores(h, 5, 0.5).toarray()
    assert rep[0, idx["milk"]] == pytest.approx(1 + 0.5 + 0.25)
    assert rep[0, idx["bread"]] == pytest.approx(0.25)
    co = copurchase_scores(h, 5, 1.0).toarray()
    # Bread is bought with milk and jam; tea never with anything a buys.
    assert co[0, idx["bread"]] > 0 and co[0, idx["tea"]] == 0
    assert co[2, idx["honey"]] > 0 and co[2, idx["milk"]] == 0
    tifu = tifu_knn_scores(h, 5, TifuParams(group_size=2, neighbours=1, alpha=0.5)).toarray()
    # a's nearest neighbour is b (shared milk/jam), so jam gets neighbour mass, tea none.
    assert tifu[0, idx["jam"]] > 0 and tifu[0, idx["tea"]] == 0


def test_eval_command_json_shape_and_blend_beats_top_frequency(tmp_path: Path) -> None:
    """A planted pattern (:func:`planted_baskets`) that top-frequency cannot see."""
    f = planted_baskets(tmp_path)
    result = CliRunner().invoke(
        app, ["recommend", "eval", "--baskets", str(f), "--json", "--no-tune"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["users"] == 60
    methods = report["methods"]
    assert {"blend", "personal_top_frequency", "tifu_knn", "als", "global_popularity"} <= set(
        methods
    )
    keys = {"precision@10", "recall@10", "ndcg@10", "map@10", "coverage", "novelty"}
    counts = {"held_out_items", "listed", "hits@10"}
    assert set(methods["blend"]) == keys | counts
    # Every method is scored against the same held-out items; each lists 10 per user.
    assert len({m["held_out_items"] for m in methods.values()}) == 1
    assert all(m["listed"] <= 10 * report["users"] for m in methods.values())
    blend = methods["blend"]
    assert 0 < blend["hits@10"] <= blend["held_out_items"]
    assert methods["blend"]["ndcg@10"] > methods["personal_top_frequency"]["ndcg@10"]


def test_eval_command_refuses_a_bad_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text("user_id,product_id\nu,p\n")
    result = CliRunner().invoke(app, ["recommend", "eval", "--baskets", str(f)])
    assert result.exit_code == 2
    assert "order_id" in result.output and "order_number" in result.output
    result = CliRunner().invoke(app, ["recommend", "eval", "--baskets", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.output


def test_category_features_without_products_is_refused(tmp_path: Path) -> None:
    """It was ignored without a word, and the table read as the features' result."""
    f = tmp_path / "b.csv"
    f.write_text("order_id,user_id,product_id,order_number\no1,u,p,1\no2,u,p,2\n")
    result = CliRunner().invoke(
        app, ["recommend", "eval", "--baskets", str(f), "--category-features"]
    )
    assert result.exit_code == 2
    assert "--category-features needs --products" in " ".join(result.output.split())


def test_order_ids_numbered_per_user_are_read(tmp_path: Path) -> None:
    """Some exports number orders per user (alice's order 1, bob's order 1): the check
    for one order at two positions must not take them for one order (a review)."""
    f = tmp_path / "per_user.csv"
    f.write_text(
        "order_id,user_id,product_id,order_number\n"
        "1,alice,milk,1\n2,alice,bread,2\n1,bob,tea,1\n2,bob,tea,2\n"
    )
    history = read_baskets_csv(f)
    assert history.users == ("alice", "bob")
    assert [len(b) for b in history.baskets] == [2, 2]


def test_users_with_a_single_order_are_counted_not_dropped_silently(tmp_path: Path) -> None:
    """The report said 59 users for a 60-user file without saying why (a review)."""
    f = planted_baskets(tmp_path)
    header = f.read_text().splitlines()[0].split(",")
    cells = {"order_id": "lonely-1", "user_id": "lonely", "product_id": "p", "order_number": "1"}
    with f.open("a") as out:
        out.write(",".join(cells.get(c, "") for c in header) + "\n")
    args = ["recommend", "eval", "--baskets", str(f), "--no-tune"]
    report = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert (report["users"], report["single_order_users"]) == (60, 1)
    shown = CliRunner().invoke(app, args)
    assert "60 users (1 with a single order left out)" in " ".join(shown.output.split())
