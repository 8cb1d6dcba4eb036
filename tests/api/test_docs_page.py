"""``/docs`` works on a shop's network with no way out to the internet.

FastAPI's page loaded Swagger UI from a CDN: offline it was blank ("SwaggerUIBundle is
not defined"), though the README sends newcomers there to press Authorize, and online
every visit told the CDN that this server runs storelens. The assets now come from the
``fastapi-offline`` wheel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from conftest import LiveServer


def test_the_docs_page_names_only_this_server(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "/docs/assets/swagger-ui.css" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no third party
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.text
    assert client.get("/docs/oauth2-redirect").status_code == 200
    redoc = client.get("/redoc")
    assert redoc.status_code == 200 and "/docs/assets/redoc.standalone.js" in redoc.text
    assert "http://" not in redoc.text and "https://" not in redoc.text  # no Google fonts
    assert "/docs" not in client.get("/openapi.json").json()["paths"]


def test_the_docs_render_in_a_browser_that_cannot_leave_the_machine(
    browser: Any, server: LiveServer
) -> None:
    page = browser.new_page()
    outside: list[str] = []

    def only_this_server(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "storelens" in page.inner_text(".swagger-ui .info .title")
    assert page.locator("button.authorize").count() == 1  # where the README says to press
    assert page.locator(".opblock").count() > 50  # the operations are listed
    assert outside == []
    page.close()
