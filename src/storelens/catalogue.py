"""The product catalogue: reference data for baskets, recommendations and zones.

Two shapes of one row: :class:`ProductRecord` checks what an import or the API is
given, :class:`Product` is the plain frozen row the sample day and the simulator sell
from (read from a trusted CSV, so it skips validation on every generated basket).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, Engine, func, select

from storelens.core.errors import FieldError, field_errors
from storelens.ingest.files import json_cell
from storelens.storage.dialects import dialect_for
from storelens.storage.tables import products

__all__ = [
    "DRINK_CATEGORIES",
    "Product",
    "ProductRecord",
    "count_products",
    "list_products",
    "load_catalogue",
    "product_rows",
    "product_zones",
    "upsert_products",
]


DRINK_CATEGORIES = frozenset({"coffee", "tea", "cold-drinks", "drinks", "beverage"})
"""Catalogue or POS categories whose items count as drinks (barista productivity)."""


class ProductRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: str = Field(min_length=1, max_length=128, pattern=r"^\S+$")
    name: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=100)
    brand: str | None = Field(default=None, max_length=100)
    price: float = Field(ge=0, allow_inf_nan=False)
    attributes: dict[str, Any] = {}
    zone_id: str | None = Field(default=None, max_length=64)  # the column is VARCHAR(64)


@dataclass(frozen=True, slots=True)
class Product:
    """A catalogue row; frozen because one catalogue is shared by every generated day."""

    product_id: str
    name: str
    category: str
    brand: str
    price: float
    attributes: dict[str, Any]
    zone_id: str | None


def load_catalogue(path: Path | None = None) -> list[Product]:
    """Read a catalogue CSV; defaults to the sample café's, packaged with storelens."""
    if path is not None:
        text = path.read_text(encoding="utf-8")
    else:
        text = files("storelens.samples").joinpath("catalogue.csv").read_text(encoding="utf-8")
    return [
        Product(
            product_id=row["product_id"],
            name=row["name"],
            category=row["category"],
            brand=row["brand"],
            price=float(row["price"]),
            attributes=json.loads(row["attributes"] or "{}"),
            zone_id=row.get("zone_id") or None,
        )
        for row in csv.DictReader(io.StringIO(text))
    ]


def product_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows read from CSV carry strings: decode the JSON ``attributes`` and drop blanks,
    leaving type checks (a price of "abc") to :class:`ProductRecord` so they are reported."""
    out = []
    for row in rows:
        clean = {k: v for k, v in row.items() if v not in ("", None)}
        if "attributes" in clean:
            clean["attributes"] = json_cell(clean["attributes"])
        out.append(clean)
    return out


def upsert_products(
    conn: Connection, rows: Sequence[dict[str, Any]]
) -> tuple[int, list[tuple[int, list[FieldError]]]]:
    """Insert or update valid rows; returns (stored, [(row index, errors)])."""
    good: list[dict[str, Any]] = []
    bad: list[tuple[int, list[FieldError]]] = []
    now = datetime.now(UTC)
    for i, row in enumerate(rows):
        try:
            rec = ProductRecord.model_validate(row)
        except ValidationError as exc:
            bad.append((i, field_errors(exc)))
            continue
        data = rec.model_dump()
        data["id"] = data.pop("product_id")
        data["updated_at"] = now
        good.append(data)
    if good:
        cols = ["name", "category", "brand", "price", "attributes", "zone_id", "updated_at"]
        conn.execute(dialect_for(conn).upsert(products, ["id"], cols), good)
    return len(good), bad


def list_products(
    engine: Engine, *, category: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    stmt = select(products).order_by(products.c.id).limit(limit).offset(offset)
    if category:
        stmt = stmt.where(products.c.category == category)
    with engine.connect() as conn:
        out = []
        for r in conn.execute(stmt):
            d = dict(r._mapping)
            d["product_id"] = d.pop("id")
            out.append(d)
        return out


def count_products(engine: Engine, *, category: str | None = None) -> int:
    stmt = select(func.count()).select_from(products)
    if category:
        stmt = stmt.where(products.c.category == category)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def product_zones(conn: Connection) -> dict[str, str | None]:
    """product id -> the zone or fixture it is placed in (None: not placed anywhere)."""
    return {pid: zone for pid, zone in conn.execute(select(products.c.id, products.c.zone_id))}
