"""Jinja2 for the dashboard: one environment, autoescaped, with the number formats a
manager reads (minutes for waits, thousands separators) defined once for every page."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from storelens import __version__
from storelens.core.durations import duration_in, duration_unit
from storelens.web.session import csrf_token, set_csrf_cookie
from storelens.web.today import store_zone

__all__ = [
    "duration",
    "environment",
    "local_time",
    "number",
    "render",
    "risk_level",
    "trend",
]


def duration(seconds: float | None) -> str:
    """Waits as a manager says them: "45 s" under a minute and a half, else "2.2 min"."""
    if seconds is None:
        return "–"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) and digits == 0:
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def trend(value: float | None) -> str:
    """A change in percent with its sign and a real minus: "+12 %", "\u22128 %", "0 %"."""
    if value is None:
        return "–"
    rounded = round(value)
    sign = "+" if rounded > 0 else ("−" if rounded < 0 else "")
    return f"{sign}{abs(rounded):,} %"


def risk_level(value: float | None, high: float) -> str:
    """A CSS class for a churn risk: ``high`` above the threshold, ``medium`` above half of it."""
    if value is None:
        return "unknown"
    if value > high:
        return "high"
    return "medium" if value > high / 2 else "low"


def local_time(value: datetime | None, timezone: str, pattern: str = "%H:%M") -> str:
    """A stored time (UTC; naive from SQLite) on the store's clock."""
    if value is None:
        return "–"
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(store_zone(timezone)).strftime(pattern)


def _json_script(value: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">``: no ``</script>`` breakout."""
    text = json.dumps(value, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704  # escaped above for the script context


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("storelens.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=duration,
        duration_in=duration_in,
        number=number,
        percent=percent,
        json=_json_script,
        local=local_time,
        trend=trend,
        risk_level=risk_level,
    )
    env.globals["version"] = __version__
    env.globals["duration_unit"] = duration_unit
    return env


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """The page, with this browser's CSRF token in its forms and cookie."""
    token = csrf_token(request)
    html = (
        environment()
        .get_template(template)
        .render({"request": request, "csrf": token, "status_code": status_code, **context})
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    set_csrf_cookie(request, response, token)
    return response
