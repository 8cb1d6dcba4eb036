"""Paired bootstrap comparisons of the blend against each baseline on the same users."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.recommend.baskets import planted_baskets
from typer.testing import CliRunner

from storelens.cli import app
from storelens.core import resampling
from storelens.recommend.metrics import score_lists
from storelens.recommend.paired import paired_bootstrap, paired_comparisons


def _noisy_pair(n: int, lead: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two methods that share most of each user's difficulty, ``a`` ahead by ``lead``."""
    rng = np.random.default_rng(seed)
    ease = rng.uniform(0, 1, n)
    b = np.clip(ease + rng.normal(0, 0.05, n), 0, 1)
    a = np.clip(ease + lead + rng.normal(0, 0.05, n), 0, 1)
    return a, b


def test_interval_brackets_the_mean_difference() -> None:
    a, b = _noisy_pair(400, 0.01, seed=1)
    d = paired_bootstrap(a, b)
    assert d.diff == pytest.approx(float(np.mean(a - b)))
    assert d.low < d.diff < d.high
    assert d.users == 400


def test_interval_width_is_the_paired_standard_error_not_the_methods_own() -> None:
    a, b = _noisy_pair(600, 0.0, seed=2)
    d = paired_bootstrap(a, b)
    paired_se = float(np.std(a - b, ddof=1) / np.sqrt(len(a)))
    own_se = float(np.std(a, ddof=1) / np.sqrt(len(a)))
    half_width = (d.high - d.low) / 2
    assert half_width == pytest.approx(1.96 * paired_se, rel=0.15)
    assert half_width < own_se  # the shared difficulty cancels out


def test_identical_methods_give_zero_and_a_zero_interval() -> None:
    a, _ = _noisy_pair(100, 0.0, seed=3)
    d = paired_bootstrap(a, a.copy())
    assert (d.diff, d.low, d.high) == (0.0, 0.0, 0.0)


def test_better_for_every_user_gives_an_interval_above_zero() -> None:
    rng = np.random.default_rng(4)
    b = rng.uniform(0, 0.8, 50)
    a = b + rng.uniform(0.001, 0.05, 50)
    d = paired_bootstrap(a, b)
    assert 0 < d.low <= d.diff <= d.high
    worse = paired_bootstrap(b, a)
    assert worse.low <= worse.diff <= worse.high < 0


def test_seeded_result_is_reproducible_and_the_seed_matters() -> None:
    a, b = _noisy_pair(200, 0.01, seed=5)
    first, again = paired_bootstrap(a, b), paired_bootstrap(a, b)
    assert first == again
    other = paired_bootstrap(a, b, seed=1)
    assert other.diff == first.diff
    assert (other.low, other.high) != (first.low, first.high)


def test_resamples_drawn_in_blocks_still_bracket_the_difference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = _noisy_pair(300, 0.02, seed=6)
    whole = paired_bootstrap(a, b)
    monkeypatch.setattr(resampling, "_BLOCK_CELLS", 1000)  # 3 resamples per block
    blocks = paired_bootstrap(a, b)
    assert blocks.diff == whole.diff
    assert blocks.low < blocks.diff < blocks.high
    assert blocks.low == pytest.approx(whole.low, abs=0.005)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([0.1, 0.2], [0.1], "equal-length"),
        ([[0.1]], [[0.1]], "equal-length"),
        ([0.1, float("nan")], [0.1, 0.2], "finite"),
    ],
)
def test_bad_paired_input_is_refused(a: list[float], b: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(np.array(a), np.array(b))


def test_no_users_and_no_resamples() -> None:
    empty = paired_bootstrap(np.array([]), np.array([]))
    assert (empty.diff, empty.low, empty.high, empty.users) == (0.0, 0.0, 0.0, 0)
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap(np.array([1.0]), np.array([0.0]), resamples=0)


def test_score_lists_keeps_per_user_metrics_in_basket_order() -> None:
    truth = [
        np.array([1, 2], dtype=np.int32),
        np.array([], dtype=np.int32),  # not scored
        np.array([5], dtype=np.int32),
    ]
    lists = [np.array([1, 9]), np.array([3, 4]), np.array([7, 5])]
    s = score_lists(lists, truth, 2, 10, np.full(10, 0.5))
    assert s.users == 2
    np.testing.assert_allclose(s.per_user["recall"], [0.5, 1.0])
    np.testing.assert_allclose(s.per_user["precision"], [0.5, 0.5])
    np.testing.assert_allclose(s.per_user["ndcg"], [1 / (1 + 1 / np.log2(3)), 1 / np.log2(3)])
    for name in ("precision", "recall", "ndcg", "map"):
        assert float(np.mean(s.per_user[name])) == pytest.approx(getattr(s, name))


def test_comparisons_are_the_blend_minus_every_other_method() -> None:
    truth = [np.array([u % 7, 7 + u % 3], dtype=np.int32) for u in range(40)]
    pop = np.full(12, 0.25)
    perfect = [np.array([u % 7, 7 + u % 3]) for u in range(40)]
    half = [np.array([u % 7, 11]) for u in range(40)]
    methods = {
        "tifu_knn": score_lists(half, truth, 2, 12, pop),
        "same": score_lists(perfect, truth, 2, 12, pop),
        "blend": score_lists(perfect, truth, 2, 12, pop),
    }
    out = paired_comparisons(methods)
    assert set(out) == {"tifu_knn", "same"}
    assert out["tifu_knn"]["recall"].diff == pytest.approx(0.5)
    assert out["tifu_knn"]["recall"].low == pytest.approx(0.5)  # the same lead for everyone
    assert (out["same"]["ndcg"].diff, out["same"]["ndcg"].low, out["same"]["ndcg"].high) == (
        0.0,
        0.0,
        0.0,
    )
    assert paired_comparisons({"tifu_knn": methods["tifu_knn"]}) == {}


def test_eval_json_adds_paired_and_keeps_every_other_key(tmp_path: Path) -> None:
    f = planted_baskets(tmp_path)
    args = ["recommend", "eval", "--baskets", str(f), "--json", "--no-tune"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {
        "users", "single_order_users", "items", "train_baskets", "k", "methods", "paired"
    }  # fmt: skip
    methods, paired = report["methods"], report["paired"]
    assert set(paired) == set(methods) - {"blend"}
    assert {"personal_top_frequency", "tifu_knn", "als"} <= set(paired)
    for name, diffs in paired.items():
        assert set(diffs) == {"recall@10", "ndcg@10"}
        for metric, d in diffs.items():
            assert set(d) == {"diff", "ci95"}
            lo, hi = d["ci95"]
            assert lo <= d["diff"] <= hi
            expected = methods["blend"][metric] - methods[name][metric]
            assert d["diff"] == pytest.approx(expected, abs=1e-12)
    # The planted alternation: top-frequency cannot see it, the blend can, for sure.
    assert paired["personal_top_frequency"]["ndcg@10"]["ci95"][0] > 0


def test_eval_table_prints_the_paired_table(tmp_path: Path) -> None:
    f = planted_baskets(tmp_path)
    result = CliRunner().invoke(
        app, ["recommend", "eval", "--baskets", str(f), "--no-tune"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "blend minus baseline, 95 % CI" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "tifu_knn" in line and "[" in line)
    assert row.count("[") == 2  # one interval for recall@10, one for NDCG@10


def test_eval_refuses_a_file_where_nobody_has_two_orders(tmp_path: Path) -> None:
    f = tmp_path / "single.csv"
    f.write_text("order_id,user_id,product_id,order_number\no1,u1,p1,1\no2,u2,p2,1\n")
    result = CliRunner().invoke(app, ["recommend", "eval", "--baskets", str(f), "--json"])
    assert result.exit_code == 2
    assert "two baskets" in result.output
