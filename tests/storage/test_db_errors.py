"""A failing statement's error text and traceback carry no bound values (personal data).

Before ``hide_parameters`` an error read ``[parameters: ('crm', None, 'ada...')]``;
PostgreSQL also quotes the failing row in its DETAIL line, which is cut as well.
"""

from __future__ import annotations

import logging
import traceback

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from storelens.storage.tables import customers

EMAIL = "ada.lovelace@example.com"
ROW = {"source_system": "crm", "source_record_id": "c-1", "email": EMAIL}


@pytest.mark.parametrize(
    "rows",
    [
        [{**ROW, "source_record_id": None}],  # NOT NULL: "Failing row contains (...)"
        [ROW, {**ROW, "email": "other@example.com"}],  # UNIQUE: "Key (...)=(...)"
    ],
    ids=["not-null", "unique"],
)
def test_failing_statement_hides_its_values(
    engine: Engine, caplog: pytest.LogCaptureFixture, rows: list[dict[str, object]]
) -> None:
    def insert_all() -> None:
        with engine.begin() as conn:
            for row in rows:
                conn.execute(insert(customers), row)

    log = logging.getLogger("storelens.test")
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(IntegrityError) as failed:
            insert_all()
        log.error("insert failed", exc_info=failed.value)
    text = "".join(traceback.format_exception(failed.value))
    assert "SQL parameters hidden due to hide_parameters=True" in text
    for secret in (EMAIL, "other@example.com", "c-1"):
        assert secret not in text
        assert secret not in caplog.text
