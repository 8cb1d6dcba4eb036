"""The interactive API docs at ``/docs`` and ``/redoc``, served from the installation.

FastAPI's own pages load Swagger UI and ReDoc from jsDelivr (ReDoc its fonts from
Google). A self-hosted install on a shop's network, with no way out to the internet,
showed a blank ``/docs`` ("SwaggerUIBundle is not defined"), though the README sends
newcomers there to press Authorize; and even with a way out, every visit told third
parties that this server runs storelens. The assets come from the ``fastapi-offline``
wheel's package data instead (MIT; Swagger UI 5, which reads the OpenAPI 3.1 document
FastAPI writes: ``swagger-ui-bundle``'s 4.x cannot), as the dashboard's plotly comes
from plotly's wheel. Only its files are used, not its app class.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS", "install_docs"]

ASSETS = "/docs/assets"
_REDIRECT = "/docs/oauth2-redirect"


def install_docs(app: FastAPI) -> None:
    """``/docs``, ``/redoc`` and their assets; the app must be made with
    ``docs_url=None, redoc_url=None``."""
    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    # Plain routes, as FastAPI adds its own docs: public like the OpenAPI document they
    # read (the routes it lists still ask for credentials), and outside the API's role
    # checks, which cover the API's routes.
    async def docs(_: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            oauth2_redirect_url=_REDIRECT,
        )

    async def oauth2_redirect(_: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(_: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    app.add_route("/docs", docs, include_in_schema=False)
    app.add_route(_REDIRECT, oauth2_redirect, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
