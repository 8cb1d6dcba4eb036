"""Clustering segments: quality reported, k chosen by silhouette and stability, stable words."""

from __future__ import annotations

import pandas as pd
import pytest

from storelens.predict.clusters import cluster_customers
from storelens.predict.features import customer_features
from storelens.sim.lifecycle import LifecycleConfig, simulate_lifecycles, weeks_after


@pytest.fixture(scope="module")
def simulated() -> tuple[pd.DataFrame, pd.DataFrame, object]:
    orders, truth = simulate_lifecycles(LifecycleConfig(customers=3000, seed=3))
    as_of = weeks_after(truth.start, 60)
    return orders, customer_features(orders, as_of), as_of


def test_descriptions_are_stable_for_a_fixed_seed(simulated: tuple) -> None:
    orders, features, as_of = simulated
    first = cluster_customers(features, orders=orders, as_of=as_of, seed=4, threads=1)
    again = cluster_customers(features, orders=orders, as_of=as_of, seed=4, threads=1)
    assert first.as_json() == again.as_json()
    pd.testing.assert_series_equal(first.membership, again.membership)


def test_quality_numbers_are_reported_and_k_follows_the_rule(simulated: tuple) -> None:
    orders, features, as_of = simulated
    result = cluster_customers(features, orders=orders, as_of=as_of, threads=1)
    assert set(result.tried) == set(range(2, 9))
    for metrics in result.tried.values():
        assert -1 <= metrics["silhouette"] <= 1
        assert metrics["davies_bouldin"] > 0
        assert -1 <= metrics["stability_ari"] <= 1
    stable = [k for k, m in result.tried.items() if m["stability_ari"] >= 0.8]
    if stable:
        top = max(result.tried[k]["silhouette"] for k in stable)
        assert result.k in stable
        assert result.silhouette >= top - 0.01
    else:
        assert result.stability_ari == max(m["stability_ari"] for m in result.tried.values())
    # Every customer in exactly one cluster; sizes and revenue shares add up.
    assert len(result.membership) == len(features)
    assert sum(c.customers for c in result.clusters) == len(features)
    assert sum(c.revenue_share for c in result.clusters) == pytest.approx(1.0)
    assert [c.customers for c in result.clusters] == sorted(
        (c.customers for c in result.clusters), reverse=True
    )


def test_each_cluster_is_described_by_its_traits(simulated: tuple) -> None:
    orders, features, as_of = simulated
    result = cluster_customers(features, orders=orders, as_of=as_of, threads=1)
    channels = 0
    for cluster in result.clusters:
        assert 1 <= len(cluster.traits) <= 3
        assert cluster.description.startswith(f"{cluster.customers} customer")
        assert "% of revenue" in cluster.description
        assert cluster.revenue_trend_pct is not None
        channels += any(t.startswith(("mostly on", "mostly in store")) for t in cluster.traits)
    # The simulator gives each customer a usual channel: the clusters must find them.
    assert channels >= 2


def test_too_few_customers_refused(simulated: tuple) -> None:
    _, features, _ = simulated
    with pytest.raises(ValueError, match="more customers"):
        cluster_customers(features.head(5), threads=1)


def test_traits_say_the_cluster_s_own_share_and_round_days_before_the_plural() -> None:
    """A cluster ordering 42 % in store read "rarely in store" because the store's mean
    was higher, and "last ordered 1 days ago" came from 1.2 days (a new user's review)."""
    from storelens.predict.clusters import _phrase

    assert _phrase("share_in_store", 0.42, 0.6) == "42 % of orders in store"
    assert _phrase("share_in_store", 0.7, 0.4) == "mostly in store (70 % of orders)"
    assert _phrase("share_web", 0.05, 0.2) == "rarely on web (5 % of orders)"
    assert _phrase("recency_days", 1.2, 5.0) == "last ordered 1 day ago"
    assert _phrase("recency_days", 2.6, 5.0) == "last ordered 3 days ago"


def test_a_channel_trait_is_the_cluster_s_share_of_its_orders() -> None:
    """Three one-order members all in store and two 20-order members all on the web: the
    median member is in store, but 40 of the cluster's 43 orders are not (a review)."""
    import pandas as pd

    from storelens.predict.clusters import _order_share

    members = pd.DataFrame({"orders": [1, 1, 1, 20, 20], "share_in_store": [1, 1, 1, 0, 0]})
    assert _order_share(members, "share_in_store") == pytest.approx(3 / 43)
    members.loc[0, "share_in_store"] = None  # a customer whose orders carry no channel
    assert _order_share(members, "share_in_store") == pytest.approx(2 / 42)
