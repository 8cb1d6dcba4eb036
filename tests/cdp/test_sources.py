"""Customer source imports: field mappings, the quality report, rejections, re-imports.

``data/crm_de.csv`` is a German CRM export with planted problems, by file line:
3 bad e-mail, 4 unparseable phone, 5 impossible date (31.02.), 6 missing last name,
7 the e-mail of line 2 in other case, 8 the record id of line 2 again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from storelens.cdp.cli import cdp_app
from storelens.cdp.quality import mask_value, quality_report
from storelens.cdp.records import ImportIds
from storelens.cdp.sources import (
    MappingError,
    check_mapping,
    import_customers,
    load_mapping,
)
from storelens.processors import run_projections
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import customers

IDS = ImportIds("test-secret-for-import-ids")  # the installation's key, in tests

DATA = Path(__file__).parent / "data"
CSV = DATA / "crm_de.csv"
GERMAN = {
    "Kundennummer": "source_record_id",
    "Vorname": "first_name",
    "Nachname": "last_name",
    "E-Mail": "email",
    "Telefon": "phone",
    "Strasse": "address",
    "PLZ": "postcode",
    "Ort": "city",
    "Land": "country",
    "Geburtsdatum": "dob",
    "Kundenkarte": "loyalty_id",
}
TOML = "[sources.crm]\ndefault_region = 'DE'\n\n[sources.crm.fields]\n" + "".join(
    f'"{k}" = "{v}"\n' for k, v in GERMAN.items()
)


def _records(engine: Engine, source: str = "crm") -> dict[str, dict[str, Any]]:
    run_projections(EventLog(engine))  # the importer leaves that to its caller
    with engine.connect() as conn:
        rows = conn.execute(select(customers).where(customers.c.source_system == source)).all()
    return {r.source_record_id: dict(r._mapping) for r in rows}


def test_strict_rejects_planted_errors_and_stores_valid_rows(engine: Engine) -> None:
    result = import_customers(
        EventLog(engine), "crm", CSV, GERMAN, "DE", reject_invalid=True, ids=IDS
    )

    assert (result.rows, result.accepted, result.duplicates) == (8, 4, 0)
    rejected = {r.row: [(e.loc, e.type) for e in r.errors] for r in result.rejected}
    assert rejected == {
        3: [("email", "invalid")],
        4: [("phone", "invalid")],
        5: [("dob", "invalid")],
        8: [("source_record_id", "duplicate_id")],
    }
    assert result.ignored_columns == ["Notiz"]
    assert result.flagged == []  # rejected rows are not imported, so nothing is flagged

    q = result.quality
    assert q.rows == 8
    invalid = {name: s.invalid for name, s in q.fields.items() if s.invalid}
    assert invalid == {"email": 1, "phone": 1, "dob": 1}
    assert [(e.row, e.value) for e in q.fields["email"].invalid_examples] == [
        (3, "xxxxx.xxxxxx(xx)xxxxxxx.xx")  # the shape of the value, not the value
    ]
    assert [e.row for e in q.fields["phone"].invalid_examples] == [4]
    assert [(e.row, e.value) for e in q.fields["dob"].invalid_examples] == [(5, "99.99.9999")]
    missing = {name: s.missing for name, s in q.fields.items() if s.missing}
    assert missing == {"last_name": 1}
    assert q.fields["last_name"].missing_rows == [6]
    assert all(s.present + s.missing == 8 for s in q.fields.values())
    dups = {k: (d.duplicates, d.examples) for k, d in q.duplicates.items()}
    assert dups == {
        "email": (1, {"a•••@example.de": [2, 7]}),
        "phone": (0, {}),
        "loyalty_id": (0, {}),
        "source_record_id": (1, {"K-001": [2, 8]}),
    }

    records = _records(engine)
    assert set(records) == {"K-001", "K-005", "K-006", "K-007"}
    assert records["K-001"]["phone"] == "+493055504706"
    assert records["K-001"]["first_name"] == "anna"  # the first K-001, not the rejected repeat
    assert records["K-001"]["email"] == "anna.krueger@example.de"
    assert str(records["K-001"]["dob"]) == "1985-03-15"
    assert records["K-005"]["last_name"] is None
    assert records["K-006"]["customer_id"] == "L-106"


def test_reimport_stores_nothing_new(engine: Engine) -> None:
    log = EventLog(engine)
    first = import_customers(log, "crm", CSV, GERMAN, ids=IDS)
    again = import_customers(log, "crm", CSV, GERMAN, ids=IDS)
    assert (again.accepted, again.duplicates) == (0, first.accepted)
    assert [r.row for r in again.rejected] == [r.row for r in first.rejected] == [8]
    assert len(_records(engine)) == 7


def test_record_with_a_bad_phone_is_imported_with_the_phone_flagged(engine: Engine) -> None:
    result = import_customers(EventLog(engine), "crm", CSV, GERMAN, ids=IDS)
    assert result.accepted == 7
    assert [r.row for r in result.rejected] == [8]  # only the repeated record id
    assert [f.as_dict() for f in result.flagged] == [
        {
            "row": 3,
            "field": "email",
            "shape": "xxxxx.xxxxxx(xx)xxxxxxx.xx",
            "reason": "not a valid e-mail address",
        },
        {
            "row": 4,
            "field": "phone",
            "shape": "xxxxx xxxxxxx",
            "reason": "not a valid phone number",
        },
        {"row": 5, "field": "dob", "shape": "99.99.9999", "reason": "not a valid date of birth"},
    ]
    assert result.flagged_by_field() == {"dob": 1, "email": 1, "phone": 1}
    assert result.as_dict()["flagged"] == {"dob": 1, "email": 1, "phone": 1}
    records = _records(engine)
    assert records["K-003"]["first_name"] == "lea"
    assert records["K-003"]["phone"] is None
    assert records["K-003"]["email"] == "lea.hoffmann@example.de"
    assert records["K-002"]["email"] is None
    assert records["K-004"]["dob"] is None


def test_us_number_in_a_gb_default_source_parses_from_its_postcode(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "pos.csv"
    path.write_text(
        "source_record_id,first_name,last_name,phone,postcode,city\n"
        "P1,Maya,Brooks,(646) 201-5743,10001,New York\n"
        "P2,Ruth,Evans,+44 (0)29 2018 0123,CF10 1AA,Cardiff\n"
        "P3,Owen,Price,0044 29 2018 0124,,\n"
        "P4,Ada,Jones,29 2018 0125,,\n"
        "P5,Lee,Hart,1-312-555-0147,60601-1234,\n"
        "P6,Tom,Dunn,0000000000,SW1A 1AA,London\n"
    )
    result = import_customers(EventLog(engine), "pos", path, default_region="GB", ids=IDS)
    assert (result.accepted, result.rejected) == (6, [])
    phones = {k: r["phone"] for k, r in _records(engine, "pos").items()}
    assert phones == {
        "P1": "+16462015743",
        "P2": "+442920180123",
        "P3": "+442920180124",
        "P4": "+442920180125",
        "P5": "+13125550147",
        "P6": None,  # a placeholder, flagged
    }
    assert [(f.row, f.field, f.shape) for f in result.flagged] == [(7, "phone", "9999999999")]


def test_unknown_target_field_is_named(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"'Vorname'.*'firstname'"):
        check_mapping({"Vorname": "firstname"})
    with pytest.raises(MappingError, match="'vorname'"):
        import_customers(EventLog(engine), "crm", CSV, {**GERMAN, "Vorname": "vorname"}, ids=IDS)
    toml = tmp_path / "sources.toml"
    toml.write_text('[sources.crm.fields]\n"E-Mail" = "mail"\n')
    with pytest.raises(MappingError, match=r"sources\.crm\.fields.*'mail'"):
        load_mapping(toml, "crm")
    with pytest.raises(MappingError, match="source_record_id"):
        import_customers(EventLog(engine), "crm", CSV, {"Vorname": "first_name"}, ids=IDS)


def test_toml_mapping_loads(tmp_path: Path) -> None:
    toml = tmp_path / "sources.toml"
    toml.write_text(TOML)
    assert load_mapping(toml, "crm") == GERMAN
    with pytest.raises(MappingError, match="webshop"):
        load_mapping(toml, "webshop")


SHOP_ROWS: list[dict[str, Any]] = [
    {"id": 1, "first_name": "Ida", "last_name": "Nowak", "email": "ida@example.at",
     "phone": "0664 1234567", "country": "AT", "dob": "1988-09-07"},
    {"id": 2, "first_name": "Ben", "last_name": "Hagedorn", "email": "ben@example.de",
     "phone": "030 55505685", "country": None, "dob": None},
    {"id": 3, "first_name": "Leon", "last_name": "Berger", "email": "not-an-email",
     "phone": None, "country": "DE", "dob": None},
]  # fmt: skip


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "json"])
def test_parquet_and_json_inputs(engine: Engine, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"shop.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(SHOP_ROWS), path)
    elif fmt == "jsonl":
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in SHOP_ROWS))
    else:
        path.write_bytes(orjson.dumps(SHOP_ROWS))
    result = import_customers(EventLog(engine), "shop", path, {"id": "source_record_id"}, ids=IDS)
    assert (result.accepted, result.rejected) == (3, [])
    assert [(f.row, f.field) for f in result.flagged] == [(3, "email")]
    assert result.quality.fields["email"].invalid_examples[0].value == "xxx-xx-xxxxx"
    records = _records(engine, "shop")
    assert records["1"]["phone"] == "+436641234567"  # the row's own country wins
    assert records["2"]["phone"] == "+493055505685"


def test_quality_report_is_pure_and_defaults_row_numbers() -> None:
    before: list[dict[str, Any]] = [{"email": "a@x.de", "phone": "x"}, {"email": "A@x.de"}]
    after: list[dict[str, Any]] = [{"email": "a@x.de", "phone": None}, {"email": "a@x.de"}]
    report = quality_report(before, after)
    assert report.fields["phone"].invalid_examples[0].row == 1
    assert report.duplicates["email"].examples == {"a•••@x.de": [1, 2]}
    json.dumps(report.as_dict())


def test_cli_import_reports_and_exits_1_on_rejections(db_url: str, tmp_path: Path) -> None:
    toml = tmp_path / "sources.toml"
    toml.write_text(TOML)
    runner = CliRunner()
    args = ["import", "crm", str(CSV), "--mapping", str(toml), "--database-url", db_url]
    result = runner.invoke(cdp_app, [*args, "--strict"])
    assert result.exit_code == 1, result.output
    assert "data quality" in result.output
    assert "rejected rows" in result.output
    assert "xxxxx.xxxxxx(xx)xxxxxxx.xx" in result.output  # masked in the quality table
    assert "duplicates within the source" in result.output

    again = runner.invoke(cdp_app, [*args, "--json"])
    assert again.exit_code == 1  # row 8 repeats a record id: still rejected
    body = json.loads(again.stdout)
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (3, 4, 1)
    assert [e["row"] for e in body["errors"]] == [8]
    assert body["flagged"] == {"dob": 1, "email": 1, "phone": 1}
    assert body["quality"]["fields"]["dob"]["invalid"] == 1


def test_cli_unknown_field_in_mapping_exits_2(db_url: str, tmp_path: Path) -> None:
    toml = tmp_path / "sources.toml"
    toml.write_text('[sources.crm.fields]\n"Vorname" = "vorname"\n')
    args = ["import", "crm", str(CSV), "--mapping", str(toml), "--database-url", db_url]
    result = CliRunner().invoke(cdp_app, args)
    assert result.exit_code == 2
    assert "vorname" in result.output


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("jonas.brandt(at)example.de", "xxxxx.xxxxxx(xx)xxxxxxx.xx"),
        ("ada@example.org", "a•••@example.org"),
        ("31.02.1990", "99.99.9999"),
        ("+49 30 1234", "+99 99 9999"),
        (42, "99"),
    ],
)
def test_quality_examples_show_shape_not_content(value: object, masked: str) -> None:
    assert mask_value(value) == masked


def test_cli_mapping_without_sources_names_the_table_it_wants(db_url: str, tmp_path: Path) -> None:
    """The message keeps its ``[sources.<name>]``: printed as text, not read as Rich markup."""
    toml = tmp_path / "sources.toml"
    toml.write_text('foo = "bar"\n')
    args = ["import", "crm", str(CSV), "--mapping", str(toml), "--database-url", db_url]
    result = CliRunner().invoke(cdp_app, args)
    assert result.exit_code == 2
    assert "no [sources.<name>] tables" in " ".join(result.output.split())


def test_mapping_format_is_in_the_help_and_the_reference_example_imports(
    db_url: str, tmp_path: Path
) -> None:
    """--mapping said "TOML with  column = field": its [sources.<SOURCE>.fields] was read
    as Rich markup, and the format was written down nowhere else."""
    shown = CliRunner().invoke(cdp_app, ["import", "--help"], env={"COLUMNS": "200"})
    text = " ".join(shown.output.replace("│", " ").split())
    assert "[sources.SOURCE.fields] one line per column" in text
    assert 'default_region = "DE" under [sources.SOURCE]' in text and "greeting_name" in text
    reference = (Path(__file__).parents[2] / "docs" / "reference.md").read_text()
    section = reference.split("### The field mapping of `cdp import --mapping`")[1]
    (tmp_path / "sources.toml").write_text(section.split("```toml\n")[1].split("```")[0])
    export = tmp_path / "crm.csv"
    export.write_text(
        "Kundennummer,Vorname,Nachname,E-Mail,Telefon,postcode,Notiz\n"
        "K-1,Ada,Lovelace,ada@example.org,030 901820,10997,hi\n"
    )
    args = ["import", "crm", str(export), "--mapping", str(tmp_path / "sources.toml")]
    done = CliRunner().invoke(cdp_app, [*args, "--database-url", db_url, "--json"])
    assert done.exit_code == 0, done.output
    body = json.loads(done.stdout)
    assert (body["accepted"], body["ignored_columns"], body["flagged"]) == (1, ["Notiz"], {})
    assert body["quality"]["fields"]["postcode"]["present"] == 1  # named as a field


def test_a_column_named_like_a_field_another_column_fills_is_reported_ignored(
    engine: Engine, tmp_path: Path
) -> None:
    """``Mail`` mapped onto ``email`` beside a column already called ``email``: the
    mapped one wins, and the other was dropped without a word (a new user's report)."""
    export = tmp_path / "crm.csv"
    export.write_text("id,Mail,email\nc-1,ada@example.org,old@example.org\n", encoding="utf-8")
    mapping = {"id": "source_record_id", "Mail": "email"}
    result = import_customers(EventLog(engine), "crm", export, mapping, ids=IDS)
    assert result.accepted == 1
    assert result.ignored_columns == ["email"]
    assert _records(engine)["c-1"]["email"] == "ada@example.org"
