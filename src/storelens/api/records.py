"""Reading record uploads (JSON array or CSV) for the import endpoints.

Problems with the upload as a whole are :class:`UnreadableRecords` (a 422 naming the
row where it can), never a 500: a CSV field over the csv module's field limit used to
escape as ``csv.Error``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import HTTPException, Request

from storelens.api.errors import error_responses
from storelens.api.schemas import ImportReport
from storelens.core.errors import FieldError, MalformedInput, UnreadableRecords

__all__ = [
    "IMPORT_RESPONSES",
    "MAX_RECORDS",
    "RECORDS_BODY",
    "read_records",
    "report",
]

MAX_RECORDS = 100_000
EXTRA_FIELDS = "(fields beyond the header)"
"""The column a CSV row's surplus fields go under, so that row is refused on its own."""
RECORDS_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "text/csv": {"schema": {"type": "string"}},
        }
    }
}
"""OpenAPI description of an import body: a JSON array of objects, or CSV text."""

IMPORT_RESPONSES = error_responses(400, 403, 413, 415, 422)


def _csv_rows(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    rows: list[dict[str, Any]] = []
    try:
        for row in reader:
            if None in row:  # more fields than the header names: reported on the row
                row[EXTRA_FIELDS] = row.pop(None)
            rows.append(row)
            if len(rows) > MAX_RECORDS:
                break
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit() (131,072 chars)
        line = reader.reader.line_num  # DictReader.line_num lags on an error
        message = f"CSV line {line}: {exc}"
        raise UnreadableRecords(message, [FieldError.at(("body", line), message, "csv")]) from None
    return rows


async def read_records(request: Request) -> list[dict[str, Any]]:
    body = await request.body()
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if kind == "text/csv":
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MalformedInput(f"CSV is not UTF-8: {exc}") from None
        rows: list[Any] = _csv_rows(text)
    elif kind == "application/json":
        try:
            rows = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedInput(f"body is not valid JSON: {exc}") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise UnreadableRecords("body must be a JSON array of objects")
    else:
        raise HTTPException(415, detail="send application/json (an array) or text/csv")
    if len(rows) > MAX_RECORDS:
        raise HTTPException(413, detail=f"at most {MAX_RECORDS} records per request")
    return rows


def report(
    stored: int,
    duplicates: int,
    bad: Sequence[tuple[int, list[FieldError]]],
    *,
    conflicts: int = 0,
) -> ImportReport:
    return ImportReport.model_validate(
        {
            "accepted": stored,
            "duplicates": duplicates,
            "rejected": len(bad),
            "conflicts": conflicts,
            "errors": [
                {"index": i, "id": None, "errors": [e.as_dict() for e in errs]} for i, errs in bad
            ],
        }
    )
