"""Reading record uploads (JSON array or CSV) for the import endpoints."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import HTTPException, Request

from storelens.api.schemas import ImportReport
from storelens.core.errors import FieldError

__all__ = ["RECORDS_BODY", "read_records", "report"]

MAX_RECORDS = 100_000
RECORDS_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "text/csv": {"schema": {"type": "string"}},
        }
    }
}
"""OpenAPI description of an import body: a JSON array of objects, or CSV text."""


async def read_records(request: Request) -> list[dict[str, Any]]:
    body = await request.body()
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if kind == "text/csv":
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise HTTPException(400, detail=f"CSV is not UTF-8: {exc}") from exc
        rows: list[Any] = list(csv.DictReader(io.StringIO(text)))
    elif kind == "application/json":
        try:
            rows = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise HTTPException(400, detail=f"body is not valid JSON: {exc}") from exc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise HTTPException(422, detail="body must be a JSON array of objects")
    else:
        raise HTTPException(415, detail="send application/json (an array) or text/csv")
    if len(rows) > MAX_RECORDS:
        raise HTTPException(413, detail=f"at most {MAX_RECORDS} records per request")
    return rows


def report(
    stored: int, duplicates: int, bad: Sequence[tuple[int, list[FieldError]]]
) -> ImportReport:
    return ImportReport.model_validate(
        {
            "accepted": stored,
            "duplicates": duplicates,
            "rejected": len(bad),
            "errors": [
                {"index": i, "id": None, "errors": [e.as_dict() for e in errs]} for i, errs in bad
            ],
        }
    )
