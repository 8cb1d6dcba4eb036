"""The product catalogue: list it, and import it as JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from storelens import catalogue
from storelens.api.deps import AnalystOrAdmin, AnyPerson, EngineDep, Offset
from storelens.api.errors import error_responses
from storelens.api.records import IMPORT_RESPONSES, RECORDS_BODY, read_records, report
from storelens.api.schemas import ImportReport, ListOf, ProductPublic
from storelens.catalogue import product_rows
from storelens.core.errors import FieldError
from storelens.privacy import audit

router = APIRouter(prefix="/v1/products", tags=["products"], responses=error_responses(403, 422))


@router.get("")
def list_products(
    _: AnyPerson,
    engine: EngineDep,
    category: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> ListOf[ProductPublic]:
    rows = catalogue.list_products(engine, category=category, limit=limit, offset=offset)
    return ListOf(
        data=[ProductPublic.model_validate(r) for r in rows],
        count=catalogue.count_products(engine, category=category),
    )


@router.post("/import", openapi_extra=RECORDS_BODY, responses=IMPORT_RESPONSES)
async def import_products(
    request: Request, principal: AnalystOrAdmin, engine: EngineDep
) -> ImportReport:
    """Upsert products from a JSON array or a CSV body (``attributes`` as a JSON column)."""
    raw: list[dict[str, Any]] = product_rows(await read_records(request))

    def store() -> tuple[int, list[tuple[int, list[FieldError]]]]:
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
        return stored, bad

    stored, bad = await run_in_threadpool(store)  # the database work must not block the loop
    return report(stored, 0, bad)
