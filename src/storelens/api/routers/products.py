"""The product catalogue: list it, and import it as JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from storelens import catalogue
from storelens.api.deps import AnalystOrAdmin, AnyPerson, EngineDep
from storelens.api.records import RECORDS_BODY, read_records, report
from storelens.api.schemas import ImportReport, ListOf, ProductPublic
from storelens.catalogue import product_rows
from storelens.privacy import audit

router = APIRouter(prefix="/v1/products", tags=["products"])


@router.get("")
def list_products(
    _: AnyPerson,
    engine: EngineDep,
    category: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ListOf[ProductPublic]:
    rows = catalogue.list_products(engine, category=category, limit=limit, offset=offset)
    return ListOf(
        data=[ProductPublic.model_validate(r) for r in rows],
        count=catalogue.count_products(engine, category=category),
    )


@router.post("/import", openapi_extra=RECORDS_BODY)
async def import_products(
    request: Request, principal: AnalystOrAdmin, engine: EngineDep
) -> ImportReport:
    """Upsert products from a JSON array or a CSV body (``attributes`` as a JSON column)."""
    raw: list[dict[str, Any]] = product_rows(await read_records(request))
    with engine.begin() as conn:
        stored, bad = catalogue.upsert_products(conn, raw)
        audit.record(
            conn,
            principal.actor,
            "products.import",
            "product",
            None,
            {"stored": stored, "rejected": len(bad)},
        )
    return report(stored, 0, bad)
