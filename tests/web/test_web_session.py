"""The dashboard's sign-in, gates and JSON on both backends, without a browser.

Who may open what is written out by hand (like tests/api/test_route_roles.py), so a
gate loosened by mistake fails here; every dashboard route must appear in the table.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.web.dashboard_clients import csrf_of, in_process_site, sign_in_client

from storelens import accounts
from storelens.api.app import create_app
from storelens.api.auth import _public
from storelens.api.deps import current_time
from storelens.config import Settings
from storelens.core.events import event_adapter
from storelens.processors import run_projections
from storelens.storage.eventlog import EventLog
from storelens.web.session import WebGate
from storelens.web.site import create_site

PASSWORD = "correct horse battery staple"
STORE = "cafe-01"
PEOPLE = frozenset({"admin", "analyst", "staff"})
MANAGERS = frozenset({"admin", "analyst"})
ADMINS = frozenset({"admin"})
PUBLIC = frozenset({"*"})

# (method, path) -> roles allowed; pages answer others with the login form or a 403 page.
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PEOPLE,
    ("GET", "/"): PEOPLE,
    ("GET", "/stores/{store_id}/today"): PEOPLE,
    ("GET", "/stores/{store_id}/floor"): PEOPLE,
    ("GET", "/stores/{store_id}/operations"): PEOPLE,
    ("GET", "/stores/{store_id}/customers"): MANAGERS,
    ("GET", "/stores/{store_id}/customers/segments/{segment_id}"): MANAGERS,
    ("GET", "/stores/{store_id}/campaigns"): MANAGERS,
    ("GET", "/stores/{store_id}/recognition"): ADMINS,
    ("POST", "/stores/{store_id}/recognition/{decision}"): ADMINS,  # approve, refuse
    ("GET", "/web/api/stores/{store_id}/today"): PEOPLE,
    ("GET", "/web/api/stores/{store_id}/today/stream"): PEOPLE,
    ("GET", "/web/api/stores/{store_id}/floor"): PEOPLE,
    ("GET", "/web/api/stores/{store_id}/operations"): PEOPLE,
    ("GET", "/web/api/stores/{store_id}/exports/{table}"): PEOPLE,
    ("GET", "/web/api/stores/{store_id}/customers"): MANAGERS,
    ("GET", "/web/api/stores/{store_id}/customers/segments.csv"): MANAGERS,
    ("GET", "/static/vendor/plotly.min.js"): PUBLIC,
}


@pytest.fixture
def site(settings: Settings, engine: Engine) -> TestClient:
    return in_process_site(settings, engine)


@dataclass(frozen=True)
class _Route:
    method: str
    path: str
    dependant: Any


def _flat(app: Any) -> list[_Route]:
    """Every operation of the app. FastAPI 0.16x keeps included routers as wrappers in
    ``app.routes`` (a walk over ``APIRoute`` alone finds nothing), so unwrap them."""
    out = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            out.append(_Route(sorted(route.methods)[0], route.path, route.dependant))
        elif hasattr(route, "effective_route_contexts"):
            for ctx in route.effective_route_contexts():
                out.append(_Route(sorted(ctx.methods or {"WS"})[0], ctx.path, ctx.dependant))
    return out


def _web_routes(site: TestClient) -> list[_Route]:
    api = create_app(site.app.state.settings, engine=site.app.state.engine)
    known = {(r.method, r.path) for r in _flat(api)}
    assert len(known) > 30  # the walk sees the API's routes, so the difference is ours
    return [r for r in _flat(site.app) if (r.method, r.path) not in known]


def _gate(route: _Route) -> WebGate | str | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, WebGate):
            return dep.call
        if dep.call is _public:
            return "public"
        stack.extend(dep.dependencies)
    return None


def test_every_dashboard_route_is_gated_and_in_the_table(site: TestClient) -> None:
    routes = _web_routes(site)
    seen = {(r.method, r.path) for r in routes}
    assert seen == set(ALLOWED)
    for route in routes:
        gate = _gate(route)
        assert gate is not None, f"{route.path} declares no gate"
        allowed = ALLOWED[(route.method, route.path)]
        if gate == "public":
            assert allowed == PUBLIC, route.path
        else:
            assert isinstance(gate, WebGate)
            assert {r.value for r in gate.roles} == allowed, route.path


@pytest.mark.parametrize("role", ["none", "admin", "analyst", "staff"])
def test_gates_by_role(as_role: Callable[[str], TestClient], role: str) -> None:
    client = as_role(role)
    wrong = []
    for (method, path), allowed in sorted(ALLOWED.items()):
        if method == "POST" or path.endswith("/stream"):
            continue  # forms: CSRF tests below; the stream: test_live.py
        r = client.get(
            path.format(store_id=STORE, table="zones", segment_id="rfm:champions"),
            follow_redirects=False,
        )
        page = not path.startswith(("/web/api", "/static"))
        if "*" in allowed or role in allowed:
            ok = r.status_code not in (401, 403) and "/login" not in r.headers.get("location", "")
        elif role == "none":
            ok = r.status_code == 303 if page else r.status_code == 401
            ok = ok and (not page or r.headers["location"].startswith("/login"))
        else:
            ok = r.status_code == 403
        if not ok:
            wrong.append(f"{path} as {role}: {r.status_code}")
    assert wrong == []


def test_cookie_is_httponly_strict_and_secure_over_https(
    site: TestClient, settings: Settings, engine: Engine
) -> None:
    r = sign_in_client(site, "staff")
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("sl_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    secure_settings = settings.model_copy(update={"web_cookie_secure": True})
    secure = TestClient(create_site(secure_settings, engine=engine, run_projections=False))
    r = secure.get("/login")  # plain http behind a TLS proxy: the cookies are Secure anyway
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("sl_csrf="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    https = TestClient(site.app, base_url="https://testserver")
    cookie = next(
        c
        for c in sign_in_client(https, "staff").headers.get_list("set-cookie")
        if "sl_session=" in c
    )
    assert "Secure" in cookie


def test_forms_refuse_missing_or_foreigncsrf_of(site: TestClient) -> None:
    csrf_of(site)  # the browser has its CSRF cookie
    form = {"username": "admin", "password": PASSWORD, "next": "/"}
    assert site.post("/login", data=form, follow_redirects=False).status_code == 403
    bad = {**form, "csrf": "x" * 43}
    assert site.post("/login", data=bad, follow_redirects=False).status_code == 403
    good = {**form, "csrf": csrf_of(site)}
    r = site.post(
        "/login", data=good, headers={"Origin": "http://evil.example"}, follow_redirects=False
    )
    assert r.status_code == 403  # cross-site, even with a copied token
    assert "sl_session" not in r.headers.get("set-cookie", "")
    assert sign_in_client(site, "admin").status_code == 303
    assert site.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert site.get(f"/web/api/stores/{STORE}/today").status_code == 200  # still signed in
    r = site.post("/logout", data={"csrf": csrf_of(site)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert site.get(f"/web/api/stores/{STORE}/today").status_code == 401


def test_login_errors_and_no_open_redirect(site: TestClient) -> None:
    form = {"username": "admin", "password": "not it", "csrf": csrf_of(site), "next": "/"}
    r = site.post("/login", data=form)
    assert r.status_code == 401 and "Wrong username or password" in r.text
    assert "not it" not in r.text  # the password is never echoed
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        r = sign_in_client(site, "admin", next=target)
        assert r.headers["location"] == "/", target
    r = sign_in_client(site, "admin", next=f"/stores/{STORE}/floor?from=2026-11-02")
    assert r.headers["location"] == f"/stores/{STORE}/floor?from=2026-11-02"


def test_cookie_and_bearer_do_not_cross(site: TestClient, engine: Engine) -> None:
    """The cookie opens only dashboard routes; a bearer token only the API."""
    assert sign_in_client(site, "admin").status_code == 303
    assert site.get("/v1/auth/me").status_code == 401
    token = site.post("/v1/auth/token", data={"username": "admin", "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    fresh = TestClient(site.app)
    assert fresh.get(f"/web/api/stores/{STORE}/today", headers=bearer).status_code == 401


def test_disabled_account_loses_its_session(site: TestClient, engine: Engine) -> None:
    assert sign_in_client(site, "staff").status_code == 303
    assert site.get(f"/stores/{STORE}/today", follow_redirects=False).status_code == 200
    with engine.begin() as conn:
        accounts.set_active(conn, "staff", False)
    r = site.get(f"/stores/{STORE}/today", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def _events(day: datetime) -> list[dict[str, Any]]:
    """A small morning: a barista's shift, two orders (60 s and 180 s), two customers
    in the queue, one of whom is still there."""

    def ev(minute: float, type_: str, **payload: Any) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "type": type_,
            "ts": (day + timedelta(minutes=minute)).isoformat(),
            "source": "test",
            "store_id": STORE,
            "payload": payload,
        }

    line = [{"product_id": "latte", "qty": 1, "unit_price": 3.4, "category": "coffee"}]
    return [
        ev(0, "staff.clock_in", staff_id="barista-ana", role="barista"),
        ev(1, "vision.zone_enter", zone_id="queue", track_id="t1"),
        ev(2, "vision.zone_enter", zone_id="queue", track_id="t2"),
        ev(3, "pos.order_paid", order_id="o1", register_id="reg-1", lines=line),
        ev(3.5, "order.started", order_id="o1", staff_id="barista-ana"),
        ev(3.9, "order.ready", order_id="o1"),
        ev(4, "order.handed_off", order_id="o1", staff_id="barista-ana"),
        ev(5, "pos.order_paid", order_id="o2", register_id="reg-2", lines=line),
        ev(5.5, "order.started", order_id="o2", staff_id="barista-ana"),
        ev(7.5, "order.ready", order_id="o2"),
        ev(8, "order.handed_off", order_id="o2", staff_id="barista-ana"),
        ev(9, "vision.zone_exit", zone_id="queue", track_id="t1"),
        ev(60, "vision.track", camera_id="cam-1", track_id="t2", x=1.0, y=1.0),
    ]


def test_today_and_operations_from_a_known_morning(site: TestClient, engine: Engine) -> None:
    assert sign_in_client(site, "staff").status_code == 303
    empty = site.get(f"/web/api/stores/{STORE}/today").json()
    assert empty["day"] is None and empty["orders"] == 0
    assert "No events yet" in site.get(f"/stores/{STORE}/today").text
    day = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    log = EventLog(engine)
    log.append([event_adapter.validate_python(e) for e in _events(day)])
    run_projections(log)
    today = site.get(f"/web/api/stores/{STORE}/today").json()
    assert today["day"] == "2026-11-02"
    assert today["orders"] == 2
    assert today["fulfillment_p50_s"] == 120.0  # midway between 60 and 180
    assert today["occupancy"] == 1 and today["queue_length"] == 1  # t2 still queues
    assert today["staff_on_shift"] == 1
    assert today["drinks"] == 2
    assert today["barista_hours"] == 1.0  # clocked in at 08:00, an hour of event time
    assert today["drinks_per_barista_hour"] == 2.0
    ops = site.get(
        f"/web/api/stores/{STORE}/operations", params={"from": "2026-11-02", "to": "2026-11-02"}
    ).json()
    assert ops["orders"] == 2 and ops["p50_s"] == 120.0
    assert [r["key"] for r in ops["by_register"]] == ["reg-1", "reg-2"]
    assert ops["by_day"][0]["orders"] == 2 and ops["by_day"][0]["recorded"] is True
    # Days around it hold no order and no shift: marked, so the chart leaves a gap
    # instead of drawing two days of zero sales.
    around = site.get(
        f"/web/api/stores/{STORE}/operations", params={"from": "2026-11-01", "to": "2026-11-03"}
    ).json()
    assert [(d["day"], d["orders"], d["recorded"]) for d in around["by_day"]] == [
        ("2026-11-01", 0, False),
        ("2026-11-02", 2, True),
        ("2026-11-03", 0, False),
    ]
    page = site.get(f"/stores/{STORE}/today").text
    assert 'data-kpi="fulfillment_p50_s" data-value="120.0">2.0 min<' in page
    # The period view is reused until the log or a projection moves, then rebuilt.
    cache = site.app.state.view_cache
    period = {"from": "2026-11-02", "to": "2026-11-02"}
    hits = cache.hits
    assert site.get(f"/web/api/stores/{STORE}/operations", params=period).json() == ops
    assert cache.hits == hits + 1
    late = _events(day + timedelta(hours=2))[3:6]  # one more order: paid, started, ready
    for item in late:
        item["payload"]["order_id"] = "o3"
    log.append([event_adapter.validate_python(e) for e in late])
    misses = cache.misses
    site.get(f"/web/api/stores/{STORE}/operations", params=period)
    assert cache.misses == misses + 1  # a new event: a new key (not processed yet: 2 orders)
    run_projections(log)  # the log's head stands still, the projections move
    assert site.get(f"/web/api/stores/{STORE}/operations", params=period).json()["orders"] == 3


@pytest.mark.parametrize(
    ("query", "status", "loc"),
    [
        ({"from": "2026-11-05", "to": "2026-11-01"}, 422, ["query", "from"]),
        ({"from": "02/11/2026"}, 422, ["query", "from"]),
        ({"to": "soon"}, 422, ["query", "to"]),
        ({"from": "2026-01-01", "to": "2026-12-31"}, 422, ["query", "to"]),  # over web_max_days
        ({"from": "2025-01-06", "to": "2025-01-06"}, 404, None),
    ],
)
def test_bad_periods_are_4xx_with_the_field(
    as_role: Callable[[str], TestClient], query: dict[str, str], status: int, loc: Any
) -> None:
    client = as_role("analyst")
    for page in ("floor", "operations"):
        r = client.get(f"/web/api/stores/{STORE}/{page}", params=query)
        assert r.status_code == status, (page, r.text)
        if loc is not None:
            assert r.json()["detail"][0]["loc"] == loc
        html = client.get(f"/stores/{STORE}/{page}", params=query)
        assert html.status_code == status
        assert "data-error" in html.text and "chart-" not in html.text


def test_unknown_store_is_404_everywhere(as_role: Callable[[str], TestClient]) -> None:
    client = as_role("admin")
    for page in ("today", "floor", "operations", "customers", "campaigns", "recognition"):
        r = client.get(f"/stores/nowhere/{page}")
        assert r.status_code == 404 and "no store" in r.text, page
    for path in ("today", "today/stream", "floor", "operations"):
        assert client.get(f"/web/api/stores/nowhere/{path}").status_code == 404, path


def test_plotly_comes_from_the_wheel(site: TestClient) -> None:
    r = site.get("/static/vendor/plotly.min.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert b"plotly.js" in r.content[:2000]


def test_download_buttons_serve_the_bi_exports(site: TestClient, engine: Engine) -> None:
    """Before the export module is merged the route says so (404); with it, the files
    download with the session cookie and read back with the day's figures."""
    assert sign_in_client(site, "staff").status_code == 303
    log = EventLog(engine)
    log.append(
        [event_adapter.validate_python(e) for e in _events(datetime(2026, 11, 2, 8, tzinfo=UTC))]
    )
    run_projections(log)
    period = {"from": "2026-11-02", "to": "2026-11-02"}
    page = site.get(f"/stores/{STORE}/operations", params=period).text
    assert 'data-download="operations-parquet"' in page
    url = f"/web/api/stores/{STORE}/exports/operations"
    try:
        __import__("storelens.instore.export_data")
    except ModuleNotFoundError:
        r = site.get(url, params={**period, "format": "csv"})
        assert r.status_code == 404 and "exports are not installed" in r.text
        return
    import io

    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    csv = site.get(url, params={**period, "format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert (
        'filename="operations_cafe-01_2026-11-02_2026-11-02.csv"'
        in csv.headers["content-disposition"]
    )
    parquet = site.get(url, params={**period, "format": "parquet"})
    assert parquet.status_code == 200
    from_csv = pa_csv.read_csv(io.BytesIO(csv.content))
    from_parquet = pq.read_table(io.BytesIO(parquet.content))
    assert from_csv.num_rows == from_parquet.num_rows > 0
    assert site.get(url, params={"from": "2026-11-05", "to": "2026-11-01"}).status_code == 422


def test_today_says_when_its_figures_are_not_today_s(site: TestClient, engine: Engine) -> None:
    """After closing time, or when the feeds stopped, the page showed the latest day's
    figures under "Today" with a live dot: 438 orders "today" on the morning after."""
    assert sign_in_client(site, "staff").status_code == 303
    morning = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    log = EventLog(engine)
    log.append([event_adapter.validate_python(e) for e in _events(morning)])
    run_projections(log)
    app: Any = site.app
    for clock, behind in [
        (datetime(2026, 11, 2, 22, 30, tzinfo=UTC), False),  # 23:30 the same evening
        (datetime(2026, 11, 2, 23, 30, tzinfo=UTC), True),  # 00:30 the next day in Berlin
        (datetime(2026, 11, 9, 9, 0, tzinfo=UTC), True),
    ]:
        app.dependency_overrides[current_time] = lambda clock=clock: clock
        view = site.get(f"/web/api/stores/{STORE}/today").json()
        assert (view["day"], view["orders"], view["behind"]) == ("2026-11-02", 2, behind), clock
        page = site.get(f"/stores/{STORE}/today").text
        notice = re.search(r"<section class=\"notice thin\" data-behind ?(hidden)?>", page)
        assert notice is not None and (notice.group(1) is None) == behind
