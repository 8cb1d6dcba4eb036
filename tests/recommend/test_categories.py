"""Product categories for the blend: the ``--products`` file, the user x category
features worked by hand, their point-in-time discipline, and the blend without a
products file staying exactly what it was."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest
from tests.recommend.baskets import planted_baskets
from typer.testing import CliRunner

from storelens.cli import app
from storelens.core.errors import InvalidInput
from storelens.recommend.baskets import (
    BasketHistory,
    BasketLine,
    history_from_lines,
    history_from_rows,
    split_last,
)
from storelens.recommend.category_features import CATEGORY_COLUMNS, category_features
from storelens.recommend.features import candidate_features
from storelens.recommend.products import item_categories, read_products_csv
from storelens.recommend.ranker import SourceParams, fit_blend, source_scores

COL = {name: i for i, name in enumerate(CATEGORY_COLUMNS)}
NO_ALS = ("personal_top_frequency", "repeat", "tifu_knn", "copurchase", "global_popularity")


def _history(baskets: dict[str, list[list[str]]]) -> BasketHistory:
    return history_from_rows(
        (user, f"{user}-{n}", product, n)
        for user, seq in baskets.items()
        for n, basket in enumerate(seq, start=1)
        for product in basket
    )


def test_products_file_gives_tokens_and_unknowns_have_no_category(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("product_id,category,brand\nmilk,dairy,acme\nbread,bakery,\nmilk,dairy,acme\n")
    attrs = read_products_csv(f)
    assert attrs == {"milk": ("category:dairy", "brand:acme"), "bread": ("category:bakery",)}
    cats = item_categories(("bread", "jam", "milk"), attrs)
    assert cats[1] == -1  # jam is not in the file: no category, not an error
    assert cats[0] != cats[2] and min(cats[0], cats[2]) >= 0


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("product_id,brand\nmilk,acme\n", "line 1: missing column(s) category"),
        ("product_id,category\nmilk,dairy\n,bakery\n", "line 3, column product_id is empty"),
        ("category,product_id\ndairy\n", "line 2 has 1 fields"),
        ("product_id,category\nmilk,dairy\nmilk,bakery\n", "line 3, column product_id"),
        ("product_id,category\n", "no products"),
        ('product_id,category\nmilk,dairy\n"tea,hot\n', "line 3 has 1 fields"),
        ("product_id,category\nmilk,dairy\nx" + ",y" * 40 + "\n", "line 3 has 41 fields"),
        ("product_id,category\nmilk," + "d" * 200_000 + "\n", "line 2: a field longer than"),
    ],
)
def test_bad_products_file_names_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    f = tmp_path / "p.csv"
    f.write_text(text)
    with pytest.raises(InvalidInput, match=re.escape(where)):
        read_products_csv(f)


def test_a_products_file_that_is_not_utf8_is_named_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_bytes(b"product_id,category\nmilk,dairy\ncr\xe8me,dairy\n")
    with pytest.raises(InvalidInput, match=re.escape(f"{f}: line 3: not UTF-8")):  # exact now
        read_products_csv(f)


def test_eval_refuses_a_bad_products_file_with_exit_2(tmp_path: Path) -> None:
    baskets = planted_baskets(tmp_path)
    bad = tmp_path / "p.csv"
    bad.write_text("product_id,category\np1,a\n,b\n")
    result = CliRunner().invoke(
        app, ["recommend", "eval", "--baskets", str(baskets), "--products", str(bad)]
    )
    assert result.exit_code == 2
    assert "line 3, column product_id is empty" in " ".join(result.output.split())
    missing = CliRunner().invoke(
        app,
        ["recommend", "eval", "--baskets", str(baskets), "--products", str(tmp_path / "no.csv")],
    )
    assert missing.exit_code == 2 and "no such file" in " ".join(missing.output.split())


def test_category_features_by_hand() -> None:
    """u1: {milk, bread}, {milk}, {yoghurt}, {yoghurt, milk}; u2: {milk}, {tea}, {milk}.
    milk and yoghurt are dairy, bread bakery, tea drinks, jam has no category."""
    h = _history(
        {
            "u1": [["milk", "bread"], ["milk"], ["yoghurt"], ["yoghurt", "milk"]],
            "u2": [["milk"], ["tea"], ["milk", "jam"]],
        }
    )
    attrs = {
        "milk": ("category:dairy",),
        "yoghurt": ("category:dairy",),
        "bread": ("category:bakery",),
        "tea": ("category:drinks",),
    }
    cats = item_categories(h.items, attrs)
    idx = {p: i for i, p in enumerate(h.items)}
    users = np.array([0, 0, 0, 0, 1, 1])
    items = np.array([idx[p] for p in ("milk", "yoghurt", "bread", "jam", "yoghurt", "bread")])
    f = category_features(h, cats, users, items)
    milk, yog, bread, jam, u2_yog, u2_bread = f
    # u1 shops dairy in every basket, kept 3 times in 3 chances, smoothed (3+1)/(3+2)
    assert milk[COL["cat_share_of_baskets"]] == 1.0 and milk[COL["cat_decayed_share"]] == 1.0
    assert milk[COL["cat_baskets_since"]] == 1 and milk[COL["cat_kept_rate"]] == 0.8
    assert milk[COL["cat_distinct_items"]] == 2
    # milk is 3 of u1's 5 dairy purchases and their usual pick; yoghurt 2 of 5, not
    assert milk[COL["item_share_in_cat"]] == 0.6 and milk[COL["item_top_in_cat"]] == 1
    assert yog[COL["item_share_in_cat"]] == 0.4 and yog[COL["item_top_in_cat"]] == 0
    # bakery only in u1's first basket: 4 baskets ago, never kept (0+1)/(1+2)
    assert bread[COL["cat_share_of_baskets"]] == 0.25 and bread[COL["cat_baskets_since"]] == 4
    assert bread[COL["cat_decayed_share"]] == pytest.approx(0.8**3 / (1 + 0.8 + 0.64 + 0.512))
    assert bread[COL["cat_kept_rate"]] == pytest.approx(1 / 3)
    assert np.isnan(jam).all()  # no category: every column unknown
    # u2 never bought yoghurt but shops dairy in 2 of 3 baskets; never bakery
    assert u2_yog[COL["cat_share_of_baskets"]] == pytest.approx(2 / 3)
    assert u2_yog[COL["item_share_in_cat"]] == 0 and u2_yog[COL["item_top_in_cat"]] == 0
    assert u2_bread[COL["cat_share_of_baskets"]] == 0 and u2_bread[COL["cat_baskets_since"]] == 999
    # across customers: dairy kept 3 of 4 chances (u1 3/3, u2 0/1) -> (3+1)/(4+2);
    # milk is 5 of the 7 dairy purchases
    assert milk[COL["cat_repeat_rate_all"]] == pytest.approx(4 / 6)
    assert milk[COL["item_share_of_cat_all"]] == pytest.approx(5 / 7)


def _noisy() -> BasketHistory:
    """50 customers with four staples each, bought with chance 0.6, plus noise."""
    rng = random.Random(5)
    lines = []
    for u in range(50):
        staples = [f"i{rng.randrange(30)}" for _ in range(4)]
        for n in range(1, 8 + u % 5):
            basket = {p for p in staples if rng.random() < 0.6} | {
                f"i{rng.randrange(30)}" for _ in range(2)
            }
            for c, p in enumerate(sorted(basket), start=1):
                lines.append(
                    BasketLine(
                        f"u{u}",
                        f"u{u}-{n}",
                        p,
                        n,
                        c,
                        float(rng.randrange(1, 15)),
                        n % 7,
                        8 + n % 10,
                    )
                )
    return history_from_lines(lines)


def _aisles(h: BasketHistory) -> dict[str, tuple[str, ...]]:
    # a third of the items have no category, as in a partial catalogue map
    return {p: (f"category:a{int(p[1:]) % 5}",) for p in h.items if int(p[1:]) % 3}


def test_category_features_are_point_in_time() -> None:
    """Features for a cut read only the baskets before it: built from the cut history
    they equal those built from a file that never had the later baskets, and differ
    from those the full history gives (so the check can fail)."""
    h = _noisy()
    split = split_last(h)
    earlier = history_from_lines(
        BasketLine(user, f"{user}-{n}", h.items[i], n)
        for u, user in enumerate(h.users)
        for n, basket in enumerate(h.baskets[u][:-1], start=1)
        for i in basket
    )
    assert earlier.users == split.train.users == h.users  # everyone has 8+ baskets
    users = np.repeat(np.arange(h.n_users), 3)
    products = [h.items[i % h.n_items] for i in range(len(users))]
    # item indices follow first appearance, so compare by product id
    items_h = np.array([h.items.index(p) for p in products])
    items_e = np.array([earlier.items.index(p) if p in earlier.items else -1 for p in products])
    keep = items_e >= 0
    at_cut = category_features(
        split.train, item_categories(h.items, _aisles(h)), users[keep], items_h[keep]
    )
    rebuilt = category_features(
        earlier, item_categories(earlier.items, _aisles(h)), users[keep], items_e[keep]
    )
    np.testing.assert_array_equal(at_cut, rebuilt)
    full = category_features(h, item_categories(h.items, _aisles(h)), users[keep], items_h[keep])
    assert not np.array_equal(np.nan_to_num(full), np.nan_to_num(at_cut))


def test_without_products_the_blend_is_exactly_as_before() -> None:
    """Figures recorded from the blend before categories existed (same history, same
    settings, ALS left out so BLAS threading cannot move them)."""
    h = _noisy()
    split = split_last(h)
    p = SourceParams(candidates=20)
    scores = source_scores(split.train, p, None, NO_ALS)
    blend = fit_blend(split.train, p, None, tuple(scores))
    assert not any(n.startswith("cat_") for n in blend.feature_names)
    assert len(blend.feature_names) == 49
    m = blend.score(split.train, scores, split.context)
    assert m.nnz == 1322
    assert float(m.sum()) == pytest.approx(202.12150593313706, rel=1e-12)
    assert float(m.multiply(m).sum()) == pytest.approx(74.19479426394066, rel=1e-12)


def test_with_products_the_blend_reads_categories_and_needs_them_to_score() -> None:
    h = _noisy()
    split = split_last(h)
    p = SourceParams(candidates=20)
    attrs = _aisles(h)
    scores = source_scores(split.train, p, attrs, (*NO_ALS, "content"))
    blend = fit_blend(split.train, p, attrs, tuple(scores), category_features=True)
    assert blend.categories and set(CATEGORY_COLUMNS) <= set(blend.feature_names)
    m = blend.score(split.train, scores, split.context, attrs)
    assert m.nnz > 0
    with pytest.raises(ValueError, match="feature layout"):
        blend.score(split.train, scores, split.context)  # the attributes are part of it
    off = fit_blend(split.train, p, attrs, tuple(scores))  # off unless asked for
    assert not off.categories and not set(CATEGORY_COLUMNS) & set(off.feature_names)
    _, _, x, names = candidate_features(split.train, scores, split.context)
    assert list(off.feature_names) == names and x.shape[1] == len(names)


def test_eval_with_products_runs_content_and_reports(tmp_path: Path) -> None:
    baskets = planted_baskets(tmp_path)
    products = tmp_path / "p.csv"
    rows = [f"{c}{i},{'even' if c == 'p' else 'odd'}" for c in "pq" for i in range(0, 40, 2)]
    products.write_text("product_id,category\n" + "\n".join(rows) + "\n")
    result = CliRunner().invoke(
        app,
        [
            "recommend",
            "eval",
            "--baskets",
            str(baskets),
            "--products",
            str(products),
            "--category-features",
            "--json",
            "--no-tune",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "content" in report["methods"] and "content" in report["paired"]
    assert not math.isnan(report["methods"]["blend"]["recall@10"])
