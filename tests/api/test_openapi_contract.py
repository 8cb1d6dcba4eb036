"""The OpenAPI document lists every status a route can return, and typed bodies."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

PUBLIC = {"/health", "/metrics", "/v1/auth/token"}


@pytest.fixture
def schema(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, ops in schema["paths"].items()
        if path not in PUBLIC
        for method, op in ops.items()
    ]


def test_every_route_documents_auth_validation_and_server_errors(schema: dict[str, Any]) -> None:
    operations = _operations(schema)
    assert len(operations) >= 30  # every authenticated route, auth and privacy included
    for method, path, op in operations:
        assert {"401", "403", "500"} <= set(op["responses"]), (method, path)
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in op["responses"], (method, path)


def test_sign_in_documents_its_refusals(schema: dict[str, Any]) -> None:
    responses = schema["paths"]["/v1/auth/token"]["post"]["responses"]
    assert {"401", "422", "429", "500"} <= set(responses)


def test_routes_document_their_own_statuses(schema: dict[str, Any]) -> None:
    for method, path, op in _operations(schema):
        statuses = set(op["responses"])
        if "{store_id}" in path or "{customer_id}" in path:
            assert "404" in statuses, (method, path)
        if method in ("post", "put", "patch"):
            assert "413" in statuses, (method, path)
        if path.endswith("/import"):
            assert {"400", "415"} <= statuses, (method, path)
    assert "409" in schema["paths"]["/v1/stores"]["post"]["responses"]


def test_422_is_the_documented_validation_shape(schema: dict[str, Any]) -> None:
    ref = schema["paths"]["/v1/events"]["get"]["responses"]["422"]["content"]
    assert ref["application/json"]["schema"] == {"$ref": "#/components/schemas/HTTPValidationError"}
    loc = schema["components"]["schemas"]["ValidationError"]["properties"]["loc"]
    assert loc["type"] == "array"


@pytest.mark.parametrize(
    ("path", "method", "model"),
    [
        ("/v1/stores/{store_id}/ops", "get", "OpsReport"),
        ("/v1/stores/{store_id}/layout", "get", "LayoutPublic"),
        ("/v1/stores/{store_id}/layout", "put", "LayoutSaved"),
        ("/v1/stores/{store_id}/alert-rules", "get", "AlertRuleSet"),
        ("/v1/stores/{store_id}/alert-rules", "put", "AlertRuleSet"),
        ("/v1/stores/{store_id}/alerts", "get", "ListOf_AlertPublic_"),
    ],
)
def test_store_routes_have_response_models(
    schema: dict[str, Any], path: str, method: str, model: str
) -> None:
    body = schema["paths"][path][method]["responses"]["200"]["content"]["application/json"]
    assert body["schema"] == {"$ref": f"#/components/schemas/{model}"}


def test_ops_report_fields_are_typed(schema: dict[str, Any]) -> None:
    report = schema["components"]["schemas"]["OpsReport"]
    assert set(report["properties"]) == {
        "store_id",
        "from",
        "to",
        "timezone",
        "fulfillment",
        "baristas",
        "queue",
        "dwell",
    }


def test_every_reference_resolves(schema: dict[str, Any]) -> None:
    """A route that declares its own 422 gets none of FastAPI's validation schemas, so a
    dangling ``$ref`` is easy to ship; clients generated from the document then fail."""
    refs: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    names = set(schema["components"]["schemas"])
    assert refs, "the document references no schemas at all"
    assert {r.removeprefix("#/components/schemas/") for r in refs} - names == set()
