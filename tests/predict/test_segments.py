"""RFM scores and named segments: exact grid, tie handling, row-order independence, words."""

from __future__ import annotations

import pandas as pd

from storelens.predict.segments import SEGMENTS, describe_segments, rfm_scores, segment_of

GRID = {  # R: segments for F = 1..5
    5: ["new", "potential loyalists", "potential loyalists", "champions", "champions"],
    4: ["promising", "potential loyalists", "potential loyalists", "loyal", "loyal"],
    3: ["need attention", "need attention", "need attention", "loyal", "loyal"],
    2: ["hibernating", "hibernating", "at risk", "at risk", "can't lose"],
    1: ["lost", "lost", "at risk", "at risk", "can't lose"],
}


def _features(rows: dict[str, tuple[float, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_dict(
        rows, orient="index", columns=["recency_days", "orders", "monetary"]
    )
    frame.index.name = "customer_id"
    return frame


def test_every_score_pair_has_its_segment() -> None:
    for r, names in GRID.items():
        assert [segment_of(r, f) for f in range(1, 6)] == names
    assert {n for names in GRID.values() for n in names} == set(SEGMENTS)


def test_quintiles_on_distinct_values() -> None:
    # c0 is the most recent, most frequent, biggest spender; c9 the opposite.
    rows = {f"c{i}": (float(i), 10 - i, 100.0 - 10 * i) for i in range(10)}
    scores = rfm_scores(_features(rows))
    assert scores["r"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert scores["f"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert scores["m"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert scores.loc["c0", "rfm"] == "555"
    assert scores["segment"].tolist() == [
        "champions",
        "champions",
        "loyal",
        "loyal",
        "need attention",
        "need attention",
        "hibernating",
        "hibernating",
        "lost",
        "lost",
    ]


def test_ties_share_a_score_and_row_order_does_not_matter() -> None:
    rows = {f"c{i}": (float(i % 3), 1 if i < 6 else 2 + i, 10.0) for i in range(10)}
    features = _features(rows)
    scores = rfm_scores(features)
    assert scores["f"].tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]  # six one-time buyers share F=1
    assert scores["m"].tolist() == [1] * 10  # everyone spent the same
    shuffled = rfm_scores(features.sample(frac=1.0, random_state=3))
    pd.testing.assert_frame_equal(scores, shuffled)


def test_segments_are_described_from_their_numbers() -> None:
    rows = {
        "ann": (2.0, 12, 600.0),
        "bob": (3.0, 10, 400.0),
        "cat": (300.0, 1, 40.0),
        "dan": (400.0, 1, 20.0),
        "eve": (100.0, 3, 140.0),
    }
    features = _features(rows)
    scores = rfm_scores(features)
    assert scores["segment"].to_dict() == {
        "ann": "champions",
        "bob": "loyal",
        "cat": "hibernating",
        "dan": "lost",
        "eve": "need attention",
    }
    summaries = describe_segments(features, scores)
    assert [s.name for s in summaries] == [
        "champions",
        "loyal",
        "need attention",
        "hibernating",
        "lost",
    ]
    champions = summaries[0]
    assert (champions.customers, champions.revenue_share) == (1, 0.5)
    assert champions.description == (
        "1 customer, 50 % of revenue: last bought a median 2 days ago, 12 orders each "
        "(store medians 100 days and 3 orders), spends 329 % above the median customer; "
        "among the most recent and most frequent buyers here: reward them, ask for reviews."
    )
    assert summaries[-1].description.startswith(
        "1 customer, 2 % of revenue: last bought a median 400 days ago, 1 order each "
        "(store medians 100 days and 3 orders), spends 86 % below the median customer"
    )
    assert describe_segments(features, scores) == summaries  # deterministic


def test_a_cafe_of_regulars_is_described_relative_to_itself() -> None:
    """Everyone came this fortnight, with four orders or more: the quintiles still name a
    "lost" segment, and its words must not say "one or two orders, longest ago" of
    customers with four orders nine days ago (a new user's review)."""
    rows = {f"c{i}": (1.2 + i, 4 + (i * 7) % 20, 6.0 + i % 3) for i in range(40)}
    features = _features(rows)
    summaries = {s.name: s for s in describe_segments(features, rfm_scores(features))}
    lost = summaries["lost"]
    assert lost.median_orders >= 4 and "one or two" not in lost.description
    assert "among the fewest orders and the longest since the last one here" in lost.description
    assert "(store medians 21 days and 13.5 orders)" in lost.description
    for summary in summaries.values():
        assert " 1 days" not in summary.description
    one = describe_segments(
        _features({"a": (1.2, 2, 5.0), "b": (1.4, 2, 5.0)}),
        rfm_scores(_features({"a": (1.2, 2, 5.0), "b": (1.4, 2, 5.0)})),
    )
    assert all("a median 1 day ago" in s.description for s in one)
