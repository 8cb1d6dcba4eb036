"""The Customers page without a browser: its figures against ``customers_overview``, the
empty state, who may open it, member pages (paged, audited, ids only for managers) and
the segment CSV, on SQLite and PostgreSQL; plus the pure pieces (histogram, formats)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime
from html import unescape
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from tests.web.dashboard_clients import in_process_site

from storelens.config import Settings
from storelens.predict.store import (
    DESCRIBED_MIN,
    clv_histogram,
    customers_overview,
    forget_customers,
    segment_page,
)
from storelens.storage.tables import (
    audit_log,
    customer_features,
    customer_scores,
    predict_models,
    segment_members,
    segments,
)
from storelens.web.customers import SEGMENT_CSV_COLUMNS, segment_rows
from storelens.web.rendering import risk_level, trend

PASSWORD = "correct horse battery staple"
STORE = "cafe-01"
IDS = re.compile(r"\bS\d{7}\b")  # the lifecycle simulator's customer ids


@pytest.fixture
def site(settings: Settings, engine: Engine) -> TestClient:
    return in_process_site(settings, engine)


@pytest.fixture
def scored(engine: Engine, score_history: Callable[[Engine], set[str]]) -> set[str]:
    return score_history(engine)


def _audits(engine: Engine) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.resource_id)
            .where(audit_log.c.action == "segment.members.read")
            .order_by(audit_log.c.id)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_before_any_scoring_the_page_says_what_to_run(
    as_role: Callable[[str], TestClient],
) -> None:
    analyst = as_role("analyst")
    r = analyst.get(f"/stores/{STORE}/customers")
    assert r.status_code == 200
    assert 'data-empty="customers"' in r.text
    assert "No scores yet: run <code>storelens predict score</code>" in r.text
    assert 'class="chart"' not in r.text  # a message, never an empty chart frame
    assert "plotly" not in r.text
    body = analyst.get(f"/web/api/stores/{STORE}/customers").json()
    assert (body["scored"], body["customers"], body["rfm"], body["clusters"]) == (
        False,
        0,
        [],
        [],
    )
    assert body["clv_bars"] == [] and body["as_of"] is None
    text = analyst.get(f"/web/api/stores/{STORE}/customers/segments.csv").text
    assert text == ",".join(SEGMENT_CSV_COLUMNS) + "\n"
    missing = analyst.get(f"/stores/{STORE}/customers/segments/{quote('rfm:champions')}")
    assert missing.status_code == 404 and "no segment 'rfm:champions'" in unescape(missing.text)


def test_page_shows_what_customers_overview_says(
    as_role: Callable[[str], TestClient], engine: Engine, scored: set[str]
) -> None:
    analyst = as_role("analyst")
    with engine.connect() as conn:
        overview = customers_overview(conn, high_risk=0.5, clv_bins=20)
    r = analyst.get(f"/stores/{STORE}/customers")
    assert r.status_code == 200, r.text
    assert 'data-empty="customers"' not in r.text
    view = analyst.get(f"/web/api/stores/{STORE}/customers").json()
    assert view["scored"] is True and view["customers"] == overview["clv"]["customers"]
    assert view["has_clv"] is True and view["has_churn"] is True
    assert 'id="chart-clv"' in r.text and 'id="chart-risk"' in r.text
    assert view["model_version"] == overview["model_version"]
    # The run's time on the store's clock, as every other page: it said "UTC" alone
    as_of = datetime.fromisoformat(view["as_of"])
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    berlin = as_of.astimezone(ZoneInfo(view["timezone"])).strftime("%d %b %Y, %H:%M")
    assert view["timezone"] == "Europe/Berlin" and f"scores as of {berlin}</span>" in r.text
    by_id = {s["id"]: s for s in overview["segments"]}
    shown = view["rfm"] + view["clusters"]
    assert [s["id"] for s in shown] == [s["id"] for s in overview["segments"]]
    assert {s["kind"] for s in view["clusters"]} == {"cluster"} and view["clusters"]
    for row in shown:
        want = by_id[row["id"]]
        assert row["customers"] == want["customers"]
        assert row["revenue_share"] == pytest.approx(want["revenue_share"])
        assert row["mean_churn_risk"] == pytest.approx(want["mean_churn_risk"])
        assert row["total_clv"] == pytest.approx(want["total_clv"])
        cell = re.search(
            rf'data-segment="{re.escape(row["id"])}">.*?data-col="customers"[^>]*data-value="(\d+)"',
            unescape(r.text),
            re.S,
        )
        assert cell is not None and int(cell.group(1)) == want["customers"]
    assert sum(s["customers"] for s in view["rfm"]) == view["customers"]
    assert sum(b["customers"] for b in view["clv_bars"]) == view["customers"]
    assert sum(s["customer_share"] for s in view["rfm"]) == pytest.approx(1.0)
    consenting = len(scored) - 1  # everyone but NO_CONSENT bought before the cut-off
    assert view["customers"] <= consenting
    assert IDS.findall(r.text) == []  # no customer id anywhere in the overview page
    assert IDS.findall(str(view)) == []


def test_a_run_whose_spend_model_failed_gives_its_own_reason(
    as_role: Callable[[str], TestClient], engine: Engine, scored: set[str]
) -> None:
    """Not the stock "needs more history" text: the run scored purchases and churn, and
    the registry row says the spend model is what failed (a new user's review)."""
    with engine.begin() as conn:
        row = conn.execute(
            select(predict_models.c.id, predict_models.c.metrics).where(
                predict_models.c.kind == "clv"
            )
        ).first()
        assert row is not None
        why = "Gamma-Gamma did not converge on the spends of 66 repeat buyers"
        conn.execute(
            update(predict_models)
            .where(predict_models.c.id == row.id)
            .values(metrics={**row.metrics, "spend_unavailable": why})
        )
        conn.execute(update(customer_scores).values(clv=None))
    admin = as_role("admin")
    view = admin.get(f"/web/api/stores/{STORE}/customers").json()
    page = unescape(admin.get(f"/stores/{STORE}/customers").text)
    assert view["has_clv"] is False and view["has_churn"] is True
    assert why in view["no_clv_reason"] and "churn risk were scored" in view["no_clv_reason"]
    assert f"No lifetime value in this run: the spend model could not be fitted ({why})" in page
    assert "needs more history" not in page


def test_a_clustering_no_k_made_stable_is_called_tentative(
    as_role: Callable[[str], TestClient], engine: Engine, scored: set[str]
) -> None:
    """The page said "chosen by silhouette and stability" of a k whose stability (0.73)
    was below the 0.8 the rule asks for: none reached it, and the most stable was kept."""
    admin = as_role("admin")

    def page_with(stable: bool) -> str:
        with engine.begin() as conn:
            row = conn.execute(
                select(predict_models.c.id, predict_models.c.metrics).where(
                    predict_models.c.kind == "clusters"
                )
            ).one()
            metrics = {**row.metrics, "stability_ari": 0.73 if not stable else 0.93}
            metrics |= {"stable": stable, "min_stability": 0.8}
            conn.execute(
                update(predict_models).where(predict_models.c.id == row.id).values(metrics=metrics)
            )
        return unescape(admin.get(f"/stores/{STORE}/customers").text)

    shaky = page_with(False)
    assert "data-unstable" in shaky and "no k reached a stability of 0.80" in shaky
    assert "chosen by silhouette and stability" not in shaky
    view = admin.get(f"/web/api/stores/{STORE}/customers").json()
    assert view["cluster_quality"]["stable"] == 0.0
    firm = page_with(True)
    assert "data-unstable" not in firm and "chosen by silhouette and stability" in firm


def test_a_run_without_lifetime_value_says_so_and_keeps_the_segments(
    as_role: Callable[[str], TestClient], engine: Engine, scored: set[str]
) -> None:
    """A short history (the demo's week) gets RFM and clusters but no fitted CLV/churn."""
    with engine.begin() as conn:
        conn.execute(update(customer_scores).values(clv=None, churn_risk=None))
    admin = as_role("admin")
    r = admin.get(f"/stores/{STORE}/customers")
    view = admin.get(f"/web/api/stores/{STORE}/customers").json()
    assert r.status_code == 200
    assert (view["has_clv"], view["has_churn"], view["clv_bars"]) == (False, False, [])
    assert view["customers"] == sum(s["customers"] for s in view["rfm"]) > 250
    assert "data-no-clv" in r.text and "data-no-churn" in r.text
    assert 'id="chart-clv"' not in r.text and 'id="chart-risk"' not in r.text
    assert 'data-segment-table="rfm"' in r.text
    assert all(s["mean_churn_risk"] is None for s in view["rfm"])
    # Not "0 at high risk, 0 %": no risk was computed (a new user read it as none at risk)
    assert view["high_risk_customers"] is None
    assert all(s["high_risk_share"] is None for s in view["rfm"])
    assert "no churn risk in this run" in r.text


def test_segment_csv_is_the_table(as_role: Callable[[str], TestClient], scored: set[str]) -> None:
    admin = as_role("admin")
    view = admin.get(f"/web/api/stores/{STORE}/customers").json()
    r = admin.get(f"/web/api/stores/{STORE}/customers/segments.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert re.match(
        r'attachment; filename="segments_\d{4}-\d\d-\d\d\.csv"', r.headers["content-disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert tuple(rows[0]) == SEGMENT_CSV_COLUMNS
    assert [(x["segment"], int(x["customers"])) for x in rows] == [
        (s["id"], s["customers"]) for s in view["rfm"] + view["clusters"]
    ]
    assert IDS.findall(r.text) == []


def test_staff_may_not_open_customers(
    as_role: Callable[[str], TestClient], scored: set[str]
) -> None:
    staff = as_role("staff")
    today = staff.get(f"/stores/{STORE}/today")
    assert 'data-menu="customers"' not in today.text
    page = staff.get(f"/stores/{STORE}/customers")
    assert page.status_code == 403 and "not open to your role" in page.text
    members = staff.get(f"/stores/{STORE}/customers/segments/{quote('rfm:champions')}")
    assert members.status_code == 403 and IDS.findall(members.text) == []
    for path in ("customers", "customers/segments.csv"):
        assert staff.get(f"/web/api/stores/{STORE}/{path}").status_code == 403
    analyst = as_role("analyst")
    assert 'data-menu="customers"' in analyst.get(f"/stores/{STORE}/today").text


def test_member_pages_walk_the_segment_and_each_read_is_audited(
    as_role: Callable[[str], TestClient],
    engine: Engine,
    settings: Settings,
    scored: set[str],
) -> None:
    analyst = as_role("analyst")
    view = analyst.get(f"/web/api/stores/{STORE}/customers").json()
    biggest = max(view["rfm"], key=lambda s: s["customers"])
    size = settings.web_members_page_size
    assert biggest["customers"] > size  # so that paging is exercised
    overview = analyst.get(f"/stores/{STORE}/customers").text
    link = f"/stores/{STORE}/customers/segments/{quote(biggest['id'], safe='')}"
    assert f'href="{link}"' in overview
    seen: list[str] = []
    page = 1
    while True:
        r = analyst.get(link, params={"page": page})
        assert r.status_code == 200, r.text
        ids = re.findall(r'data-member="([^"]+)"', r.text)
        assert biggest["description"] in r.text
        assert "recorded in the audit trail" in r.text
        seen += ids
        if "data-next-page" not in r.text:
            break
        assert f'href="?page={page + 1}"' in r.text
        page += 1
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == biggest["customers"]
    with engine.connect() as conn:
        first = segment_page(conn, biggest["id"], None, size)
    assert seen[:size] == [m["customer_id"] for m in first.members]  # the API's own page
    assert _audits(engine) == [("analyst", "segment.members.read", biggest["id"])] * page
    assert [
        u for u in re.findall(r'href="([^"]+)"', r.text) if IDS.search(u)
    ] == []  # no id in a URL
    past = analyst.get(link, params={"page": page + 5})
    assert past.status_code == 200 and "No members on this page." in past.text


def test_a_one_time_buyer_s_certain_survival_is_not_shown_as_100_percent_active(
    as_role: Callable[[str], TestClient], engine: Engine, scored: set[str]
) -> None:
    """BG/NBD gives a customer with no repeat purchase P(alive) = 1: the members list
    showed "Active 100 %" beside a churn risk of 39 % (a new user's review)."""
    analyst = as_role("analyst")
    view = analyst.get(f"/web/api/stores/{STORE}/customers").json()
    segment = max(view["rfm"], key=lambda s: s["customers"])["id"]
    with engine.connect() as conn:
        first = segment_page(conn, segment, None, 5).members
    one_timer, other, sure = (first[i]["customer_id"] for i in range(3))
    with engine.begin() as conn:
        for who, orders in ((one_timer, 1), (sure, 6)):
            conn.execute(
                update(customer_scores)
                .where(customer_scores.c.customer_id == who)
                .values(p_alive=1.0)
            )
            doc = conn.execute(
                select(customer_features.c.features).where(customer_features.c.customer_id == who)
            ).scalar_one()
            conn.execute(
                update(customer_features)
                .where(customer_features.c.customer_id == who)
                .values(features={**doc, "orders": orders})
            )
        conn.execute(
            update(customer_scores)
            .where(customer_scores.c.customer_id == other)
            .values(p_alive=0.5)
        )
    page = analyst.get(f"/stores/{STORE}/customers/segments/{quote(segment, safe='')}").text
    row = re.search(rf'<tr data-member="{re.escape(one_timer)}">(.*?)</tr>', page, re.S)
    assert row is not None and "data-one-time" in row.group(1) and "100%" not in row.group(1)
    assert row.group(1).endswith(">–</span></td>")
    rest = re.search(rf'<tr data-member="{re.escape(other)}">(.*?)</tr>', page, re.S)
    assert rest is not None and rest.group(1).endswith("<td>50%</td>")
    assert "data-one-time" not in rest.group(1)
    assert "data-one-time-note" in page
    # A repeat buyer some model is sure of (Pareto/NBD gives 1.0 to many) keeps 100 %
    sure_row = re.search(rf'<tr data-member="{re.escape(sure)}">(.*?)</tr>', page, re.S)
    assert sure_row is not None and sure_row.group(1).endswith("<td>100%</td>")


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        (f"/stores/{STORE}/customers/segments/{quote('rfm:nobody')}", 404, "no segment"),
        (f"/stores/nowhere/customers/segments/{quote('rfm:champions')}", 404, "no store"),
        (
            f"/stores/{STORE}/customers/segments/{quote('rfm:champions')}?page=0",
            422,
            "page: Input should be greater than or equal to 1",
        ),
        (
            f"/stores/{STORE}/customers/segments/{quote('rfm:champions')}?page=x",
            422,
            "page: Input should be a valid integer",
        ),
        ("/stores/nowhere/customers", 404, "no store 'nowhere'"),
    ],
)
def test_bad_member_requests_read_nothing(
    as_role: Callable[[str], TestClient],
    engine: Engine,
    scored: set[str],
    path: str,
    status: int,
    message: str,
) -> None:
    r = as_role("admin").get(path)
    assert r.status_code == status
    assert message in unescape(r.text)
    assert _audits(engine) == []  # nothing read, nothing audited
    assert IDS.findall(r.text) == []


def test_a_bad_page_number_is_a_page_and_the_data_route_stays_json(
    as_role: Callable[[str], TestClient],
) -> None:
    """A manager who edits ``?page=`` by hand gets the dashboard saying what is wrong,
    with the menu, not a JSON body; API clients keep their field-level JSON; nobody
    signed out learns anything but the way to the login form."""
    admin = as_role("admin")
    path = f"/stores/{STORE}/customers/segments/{quote('rfm:champions')}"
    r = admin.get(f"{path}?page=0")
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "Check the address" in r.text and f'href="{path}"' in r.text
    assert 'data-menu="customers"' in r.text and "rfm:champions" not in r.text.split("<main>")[1]
    api = admin.get(f"/web/api/stores/{STORE}/floor?to=" + "9" * 41)
    assert api.status_code == 422 and api.headers["content-type"] == "application/json"
    assert any(d["loc"][-1] == "to" for d in api.json()["detail"])
    outside = as_role("none").get(f"{path}?page=0", follow_redirects=False)
    assert outside.status_code == 303 and outside.headers["location"].startswith("/login")


def test_unknown_store_in_the_json_and_csv_is_404(
    as_role: Callable[[str], TestClient],
) -> None:
    admin = as_role("admin")
    for path in ("customers", "customers/segments.csv"):
        r = admin.get(f"/web/api/stores/nowhere/{path}")
        assert r.status_code == 404 and "no store" in r.text


def test_clv_histogram_keeps_the_top_percent_apart() -> None:
    values = sorted([float(v) for v in range(100)] + [10_000.0])
    hist = clv_histogram(values, 10)
    assert len(hist["edges"]) == 11 and len(hist["counts"]) == 10
    assert hist["edges"][0] == 0.0 and hist["edges"][-1] == 99.0  # the 99th percentile
    assert sum(hist["counts"]) + hist["overflow"] == len(values)
    assert hist["overflow"] == 1  # only the big spender
    assert hist["counts"][0] == 10 and hist["counts"][-1] == 10


def test_clv_histogram_edge_cases() -> None:
    assert clv_histogram([], 5) == {"edges": [], "counts": [], "overflow": 0}
    assert clv_histogram([0.0, 0.0, 0.0], 5) == {"edges": [0.0, 0.0], "counts": [3], "overflow": 0}
    negative = clv_histogram([-4.0, 0.0, 4.0], 2)  # a refund-heavy customer: start below 0
    assert negative["edges"][0] == -4.0 and sum(negative["counts"]) + negative["overflow"] == 3


def test_segment_rows_shares_and_means() -> None:
    overview = {
        "clv": {"customers": 10},
        "segments": [
            {"id": "rfm:a", "kind": "rfm", "name": "a", "description": "d", "customers": 4,
             "revenue_share": 0.7, "revenue_trend_pct": 5.0, "total_clv": 40.0,
             "mean_churn_risk": 0.1, "high_risk_share": 0.0},
            {"id": "rfm:b", "kind": "rfm", "name": "b", "description": "d", "customers": 6,
             "revenue_share": 0.3, "revenue_trend_pct": None},
        ],
    }  # fmt: skip
    a, b = segment_rows(overview)
    assert (a.customer_share, a.mean_clv) == (0.4, 10.0)
    assert (b.customer_share, b.mean_clv, b.mean_churn_risk) == (0.6, None, None)


@pytest.mark.parametrize(
    ("value", "text"),
    [(12.4, "+12 %"), (-8.6, "−9 %"), (0.2, "0 %"), (None, "–"), (1234, "+1,234 %")],
)
def test_trend_format(value: float | None, text: str) -> None:
    assert trend(value) == text


def test_risk_levels() -> None:
    assert [risk_level(v, 0.5) for v in (None, 0.1, 0.3, 0.5, 0.51)] == [
        "unknown",
        "low",
        "medium",
        "medium",
        "high",
    ]


def test_audit_rows_count_only_member_reads(
    as_role: Callable[[str], TestClient], engine: Engine, scored: set[str]
) -> None:
    admin = as_role("admin")
    admin.get(f"/stores/{STORE}/customers")
    admin.get(f"/web/api/stores/{STORE}/customers")
    admin.get(f"/web/api/stores/{STORE}/customers/segments.csv")
    assert _audits(engine) == []  # aggregates are not a personal read


def test_a_segment_whose_figures_were_withdrawn_shows_dashes(
    as_role: Callable[[str], TestClient], engine: Engine, scored: set[str]
) -> None:
    """A member left a small segment (an erasure, a withdrawal): its share and trend are
    gone until the next run, and the page, its JSON and the CSV say so without failing."""
    analyst = as_role("analyst")
    with engine.begin() as conn:
        smallest = conn.execute(
            select(segments.c.id, segments.c.customers).order_by(segments.c.customers).limit(1)
        ).one()
        members = sorted(
            conn.execute(
                select(segment_members.c.customer_id).where(
                    segment_members.c.segment_id == smallest.id
                )
            ).scalars()
        )
        leaving = members[: max(1, len(members) - (DESCRIBED_MIN - 1))]
        forget_customers(conn, leaving)
    page = analyst.get(f"/stores/{STORE}/customers")
    assert page.status_code == 200, page.text[:300]
    assert "withdrawn after a member left" in page.text
    view = analyst.get(f"/web/api/stores/{STORE}/customers").json()
    row = next(r for r in [*view["rfm"], *view["clusters"]] if r["id"] == smallest.id)
    assert row["customers"] == len(members) - len(leaving)
    assert row["revenue_share"] is None and row["revenue_trend_pct"] is None
    text = analyst.get(f"/web/api/stores/{STORE}/customers/segments.csv").text
    cells = next(r for r in csv.DictReader(io.StringIO(text)) if r["segment"] == smallest.id)
    assert cells["revenue_share"] == "" and "withdrawn" in cells["description"]


def test_values_name_their_currency_and_mixed_currencies_are_called_unconverted(
    as_role: Callable[[str], TestClient], engine: Engine, scored: set[str]
) -> None:
    """Lifetime value and revenue are sums of order totals: the page showed them with no
    currency, and a chain paid in two currencies would have had them added silently."""
    import uuid

    from storelens.storage.tables import orders

    analyst = as_role("analyst")
    with engine.connect() as conn:
        paid_in = sorted(set(conn.execute(select(orders.c.currency)).scalars()))
    assert len(paid_in) == 1
    page = unescape(analyst.get(f"/stores/{STORE}/customers").text)
    assert f"amounts in {paid_in[0]}" in page and "data-mixed-currencies" not in page
    assert f"discounted, {paid_in[0]}" in page
    with engine.begin() as conn:
        row = conn.execute(select(orders).limit(1)).mappings().one()
        conn.execute(
            orders.insert().values(
                {**row, "order_id": "usd-1", "currency": "USD", "event_id": uuid.uuid4()}
            )
        )
    view = analyst.get(f"/web/api/stores/{STORE}/customers").json()
    assert view["currencies"] == sorted([paid_in[0], "USD"])
    page = unescape(analyst.get(f"/stores/{STORE}/customers").text)
    mixed = ", ".join(view["currencies"])
    assert f"orders came in {mixed}: amounts are added as paid, not converted" in page
