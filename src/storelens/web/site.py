"""The whole site: the API with the dashboard in front of it, as ``storelens serve`` runs it.

The dashboard sits one layer above the API (it signs people in with the API's own
check and reads through the same domain functions), so the API is built first and
the pages are added to it; the API never imports the dashboard. Charts use plotly.js
straight from the ``plotly`` wheel's package data: nothing minified is committed here,
and upgrading plotly upgrades the charts.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from storelens.api.app import create_app
from storelens.api.auth import public
from storelens.api.errors import invalid_request_response
from storelens.config import Settings
from storelens.web import data_api, downloads, login, pages
from storelens.web.cache import ViewCache
from storelens.web.live import LiveBoard
from storelens.web.rendering import render
from storelens.web.session import NeedsSignIn, PageForbidden

__all__ = ["PLOTLY_ROUTE", "create_site", "plotly_js"]

PLOTLY_ROUTE = "/static/vendor/plotly.min.js"


@lru_cache(maxsize=1)
def plotly_js() -> Path | None:
    """plotly.min.js inside the installed ``plotly`` wheel (found without importing it)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def _install_static(app: FastAPI) -> None:
    @app.get(PLOTLY_ROUTE, include_in_schema=False, dependencies=[public()])
    def plotly() -> Response:
        path = plotly_js()
        if path is None:
            raise HTTPException(404, detail="plotly is not installed: pip install plotly")
        return FileResponse(
            path,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.mount(
        "/static/web",
        StaticFiles(packages=[("storelens.web", "static")]),
        name="web-static",
    )


def _install_page_errors(app: FastAPI) -> None:
    @app.exception_handler(NeedsSignIn)
    async def _sign_in(_: Request, exc: NeedsSignIn) -> Response:
        target = "/login" if exc.next_path == "/" else f"/login?next={quote(exc.next_path)}"
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden) -> HTMLResponse:
        menu = [m for m in pages.MENU if exc.principal.role in m.roles]
        return render(
            request,
            "forbidden.html",
            {
                "user": exc.principal,
                "menu": menu,
                "stores": [],
                "store": None,
                "active": None,
                "allowed": sorted(r.value for r in exc.roles),
            },
            status_code=403,
        )


def _install_bad_address(app: FastAPI) -> None:
    """A page asked for with a bad query (``?page=0``, ``?approved=x``) answers a page
    saying which part of the address is wrong; everything else keeps the API's JSON."""

    @app.exception_handler(RequestValidationError)
    async def _bad_address(request: Request, exc: RequestValidationError) -> Response:
        principal = getattr(request.state, "page_principal", None)
        if principal is None:
            return invalid_request_response(exc)
        store_id = request.path_params.get("store_id")
        problems = [
            # The field's name and pydantic's message; never the value (personal data
            # can ride in a query, and the page may be shown on a shared screen).
            f"{e['loc'][-1]}: {e['msg']}" if e["loc"] else str(e["msg"])
            for e in exc.errors()
        ]
        return render(
            request,
            "bad_address.html",
            {
                "user": principal,
                "menu": [m for m in pages.MENU if principal.role in m.roles],
                "stores": [],
                "store": None,
                "store_id": store_id if isinstance(store_id, str) else None,
                "active": None,
                "problems": problems,
                # A form's POST path answers nothing to a GET: no link back to it.
                "plain_path": quote(request.url.path, safe="/")
                if request.method == "GET"
                else None,
            },
            status_code=422,
        )


def create_site(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    run_projections: bool | None = None,
) -> FastAPI:
    """The API plus the dashboard at ``/``
    (``uvicorn --factory storelens.web.site:create_site``)."""
    app = create_app(settings, engine=engine, run_projections=run_projections)
    board = LiveBoard()
    app.state.live_board = board
    app.state.view_cache = ViewCache(app.state.settings.web_view_cache_size)
    loop = app.state.projection_loop
    if loop is not None:
        loop.add_listener(board.changed)  # Today wakes when new facts commit
    _install_page_errors(app)
    _install_bad_address(app)
    _install_static(app)
    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(data_api.router)
    app.include_router(downloads.router)
    return app
