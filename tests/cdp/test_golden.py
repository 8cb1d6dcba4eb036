"""Survivorship: which value wins per field, and that its source is kept."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from storelens.cdp.golden import golden_record


def rec(system: str, rid: str, day: int, **fields: Any) -> dict[str, Any]:
    return {
        "source_system": system,
        "source_record_id": rid,
        "updated_at": datetime(2026, 1, day, tzinfo=UTC),
        **fields,
    }


RECORDS = [
    rec("crm", "c1", 1, first_name="Katharina", last_name="Schmidt", dob=date(1980, 5, 1),
        email="k.schmidt@old.de", address="Hauptstr 1", postcode="10115", city="Berlin"),
    rec("webshop", "w1", 20, first_name="Kathi", last_name="Schmidt", dob=date(1980, 1, 5),
        email="kathi@new.de", address="Ringweg 9", postcode="80331", city=None),
    rec("pos_loyalty", "p1", 10, first_name="Katharina", dob=date(1980, 5, 1),
        loyalty_id="L7", phone="+4930901820"),
]  # fmt: skip


def test_each_field_follows_its_rule_and_names_its_source() -> None:
    golden = golden_record(RECORDS)
    assert golden["first_name"].value == "Katharina"  # the CRM is most trusted
    assert golden["first_name"].source_system == "crm"
    assert (golden["first_name"].agreeing, golden["first_name"].conflicting) == (2, 1)
    assert golden["email"].value == "kathi@new.de"  # most recent
    assert golden["email"].source_record_id == "w1"
    assert golden["dob"].value == date(1980, 5, 1)  # two records outvote the typo
    assert golden["dob"].rule == "most_frequent"
    assert golden["loyalty_id"].value == "L7" and golden["phone"].source_system == "pos_loyalty"


def test_address_parts_come_from_the_record_that_gave_the_street() -> None:
    golden = golden_record(RECORDS)
    assert golden["address"].value == "Ringweg 9"
    assert golden["postcode"].value == "80331"
    # The newest address has no city; falling back keeps a city rather than none,
    # but it must be reported as coming from its own record.
    assert golden["city"].value == "Berlin" and golden["city"].source_record_id == "c1"


def test_custom_rules_and_trust_order() -> None:
    golden = golden_record(RECORDS, rules={"first_name": "most_recent"}, trust=("webshop", "crm"))
    assert golden["first_name"].value == "Kathi"
    assert golden_record(RECORDS, trust=("webshop", "crm"))["first_name"].value == "Kathi"


def test_missing_fields_are_left_out_and_blank_values_ignored() -> None:
    golden = golden_record([rec("crm", "1", 1, first_name="  ", email="a@b.de")])
    assert "first_name" not in golden and golden["email"].value == "a@b.de"
    assert golden_record([]) == {}


def test_json_form_and_bad_rules() -> None:
    as_json = golden_record(RECORDS)["dob"].as_dict()
    assert as_json["value"] == "1980-05-01" and as_json["source_system"] in {"crm", "pos_loyalty"}
    with pytest.raises(ValueError, match="unknown survivorship rule"):
        golden_record(RECORDS, rules={"email": "loudest"})  # type: ignore[dict-item]
