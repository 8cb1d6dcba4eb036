"""The Customers page in real headless Chromium over a scored customer history.

The lifecycle simulator's 40 weeks of orders are scored with ``predict score``; the
page is opened through the login form at desktop (1280 px) and phone (390 px) width,
its segment table is read back and compared with ``customers_overview`` on the same
database, a segment's members are paged through, the segment CSV is downloaded and
read back, and the empty state is shown on a site nobody has scored. Screenshots land
in ``screenshot_dir`` (``customers-*.png``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from storelens.predict.store import customers_overview
from storelens.storage.db import create_engine

if TYPE_CHECKING:
    from conftest import Site

pytestmark = pytest.mark.timeout(600)

STORE = "cafe-01"
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
IDS = re.compile(r"\bS\d{7}\b")  # the lifecycle simulator's customer ids


def _overview(site: Site) -> dict[str, Any]:
    engine = create_engine(site.db_url)
    try:
        with engine.connect() as conn:
            return customers_overview(conn, high_risk=0.5, clv_bins=20)
    finally:
        engine.dispose()


def _open(
    browser: Any, site: Site, sign_in: Callable[..., None], role: str, size: dict[str, int]
) -> Any:
    context = browser.new_context(viewport=size, accept_downloads=True)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    sign_in(page, site, role)
    return page


def _fits(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.evaluate("window.innerWidth"), f"{page.url} is {width} px wide"


def _table(page: Any) -> dict[str, int]:
    return dict(
        page.eval_on_selector_all(
            "[data-segment]",
            "els => els.map(e => [e.dataset.segment,"
            " Number(e.querySelector('[data-col=\"customers\"]').dataset.value)])",
        )
    )


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_customers_page_shows_the_scored_segments(
    browser: Any,
    scored_site: Site,
    sign_in: Callable[..., None],
    screenshot_dir: Path,
    tmp_path: Path,
    width: str,
) -> None:
    page = _open(browser, scored_site, sign_in, "analyst", DESKTOP if width == "desktop" else PHONE)
    page.click('[data-menu="customers"]')
    page.wait_for_selector("#chart-clv .main-svg")
    page.wait_for_selector("#chart-risk .main-svg")
    overview = _overview(scored_site)
    assert _table(page) == {s["id"]: s["customers"] for s in overview["segments"]}
    assert (
        int(page.get_attribute('[data-kpi="customers"]', "data-value"))
        == overview["clv"]["customers"]
    )
    for s in overview["segments"][:3]:
        row = page.locator(f'[data-segment="{s["id"]}"]')
        assert row.locator('[data-col="customers"]').inner_text() == f"{s['customers']:,}"
        assert s["description"] in row.inner_text()
    assert IDS.findall(page.content()) == []  # no customer id on the overview
    page.wait_for_timeout(300)  # plotly's first layout pass
    _fits(page)
    page.screenshot(path=str(screenshot_dir / f"customers-{width}.png"), full_page=True)

    with page.expect_download() as info:
        page.click('[data-download="segments-csv"]')
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    with saved.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["segment"]: int(r["customers"]) for r in rows} == _table(page)

    biggest = max(overview["segments"], key=lambda s: s["customers"])
    page.click(f'[data-members-link="{biggest["id"]}"]')
    page.wait_for_selector("[data-member-table]")
    first = page.eval_on_selector_all("[data-member]", "els => els.map(e => e.dataset.member)")
    assert first == sorted(first) and len(first) == min(50, biggest["customers"])
    assert all(IDS.fullmatch(i) for i in first)  # ids shown to the analyst
    _fits(page)
    page.screenshot(path=str(screenshot_dir / f"customers-members-{width}.png"), full_page=True)
    if biggest["customers"] > 50:
        page.click("[data-next-page]")
        page.wait_for_selector("[data-prev-page]")
        second = page.eval_on_selector_all("[data-member]", "els => els.map(e => e.dataset.member)")
        assert second and second[0] > first[-1]
        assert page.inner_text("[data-page]") == f"page 2 of {-(-biggest['customers'] // 50)}"
    assert page.console_errors == []
    page.context.close()


def test_staff_has_no_customers_page(
    browser: Any, scored_site: Site, sign_in: Callable[..., None]
) -> None:
    page = _open(browser, scored_site, sign_in, "staff", PHONE)
    page.goto(f"{scored_site.url}/stores/{STORE}/today")
    menu = page.eval_on_selector_all("[data-menu]", "els => els.map(e => e.dataset.menu)")
    assert "customers" not in menu
    response = page.goto(f"{scored_site.url}/stores/{STORE}/customers")
    assert response.status == 403
    assert "not open to your role" in page.inner_text("[data-error]")
    assert IDS.findall(page.content()) == []
    page.context.close()


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_empty_state_before_scoring(
    signed_in: Callable[..., Any], site: Site, screenshot_dir: Path, width: str
) -> None:
    page = signed_in("admin", DESKTOP if width == "desktop" else PHONE)
    response = page.goto(f"{site.url}/stores/{STORE}/customers")
    assert response.status == 200
    assert "No scores yet: run storelens predict score" in page.inner_text(
        '[data-empty="customers"]'
    )
    assert page.locator(".chart").count() == 0
    _fits(page)
    page.screenshot(path=str(screenshot_dir / f"customers-empty-{width}.png"), full_page=True)
    assert page.console_errors == []
