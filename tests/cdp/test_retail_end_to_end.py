"""Retail extracts through the real commands: ``cdp import`` of a till (POS), a web shop
and a CRM extract, ``cdp resolve --full``, ``cdp eval --truth --detail``. Till records
hold only name, phone and postcode and CRM records no phone, so a customer who never
shopped online can reach the CRM through name and postcode alone; twins and the chain
cuts are checked on the stored result."""

from __future__ import annotations

import csv
import json
from itertools import combinations
from pathlib import Path

from sqlalchemy import Engine, select
from typer.testing import CliRunner

from storelens.cdp import cli_identity
from storelens.cdp.cli import cdp_app
from storelens.cdp.normalise import normalise_postcode, normalise_text
from storelens.cdp.retail_synthetic import RETAIL_SOURCES, RetailData, generate_retail
from storelens.storage.tables import customers, identity_changes

assert cli_identity.__name__  # imported for its effect: registers resolve and eval

MAPPING = """
[sources.pos]
default_region = "GB"
[sources.crm]
default_region = "GB"
[sources.crm.fields]
street = "address"
[sources.web]
default_region = "GB"
[sources.web.fields]
street = "address"
"""


def _write(data: RetailData, folder: Path) -> None:
    for source in RETAIL_SOURCES:
        with (folder / f"{source}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=RETAIL_SOURCES[source])
            writer.writeheader()
            writer.writerows(data.sources[source])
    (folder / "sources.toml").write_text(MAPPING)
    (folder / "truth.json").write_text(json.dumps(data.truth_json()))


def _same_name_and_postcode(data: RetailData) -> list[tuple[str, str]]:
    """POS/CRM pairs of one person with no web account (no record to bridge them) whose
    name and postcode read alike: all the two records share."""
    rows = {f"{s}:{r['source_record_id']}": r for s in ("pos", "crm") for r in data.sources[s]}

    def key(k: str) -> tuple[str | None, ...]:
        r = rows[k]
        return (
            normalise_text(r["first_name"]),
            normalise_text(r["last_name"]),
            normalise_postcode(r["postcode"]),
        )

    by_person: dict[str, list[str]] = {}
    for k in rows:
        by_person.setdefault(data.person_of[k], []).append(k)
    return [
        (a, b)
        for ks in by_person.values()
        if not any(k.startswith("web:") for k in ks)
        for a, b in combinations(sorted(ks), 2)
        if a.startswith("crm:") and b.startswith("pos:") and key(a) == key(b) and None not in key(a)
    ]


def test_pos_record_links_to_its_crm_record_through_name_and_postcode(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    data = generate_retail(300, seed=8)
    _write(data, tmp_path)
    runner = CliRunner()
    db = ["--database-url", db_url]
    for source in RETAIL_SOURCES:
        imported = runner.invoke(
            cdp_app,
            ["import", source, str(tmp_path / f"{source}.csv"), "--mapping",
             str(tmp_path / "sources.toml"), *db, "--json"],
        )  # fmt: skip
        body = json.loads(imported.stdout)
        assert body["rejected"] == 0, imported.output  # no record with an id is lost
        assert body["accepted"] == len(data.sources[source])
    resolved = runner.invoke(cdp_app, ["resolve", "--full", *db, "--json"])
    assert resolved.exit_code == 0, resolved.output
    assert json.loads(resolved.stdout)["model"] == "splink"

    with engine.connect() as conn:
        customer_of = {
            f"{r.source_system}:{r.source_record_id}": r.customer_id
            for r in conn.execute(select(customers))
        }
        cuts = list(
            conn.execute(select(identity_changes).where(identity_changes.c.kind == "chain_cut"))
        )
    pairs = _same_name_and_postcode(data)
    assert len(pairs) >= 20
    linked = [customer_of[a] == customer_of[b] for a, b in pairs]
    print(f"POS-CRM by name and postcode: {sum(linked)}/{len(linked)} linked")
    assert sum(linked) / len(linked) >= 0.9, f"{sum(linked)}/{len(linked)} linked"

    people = {p for p in data.person_of.values()}
    for pa, pb, relation in data.hard_negatives:
        if relation == "twin" and pa in people and pb in people:
            ids_a = {
                customer_of[k] for k, p in data.person_of.items() if p == pa and k in customer_of
            }
            ids_b = {
                customer_of[k] for k, p in data.person_of.items() if p == pb and k in customer_of
            }
            assert not ids_a & ids_b, "twins merged"
    for cut in cuts:  # every cut names its evidence: the refused links
        assert cut.evidence and all({"a", "b", "probability"} <= set(e) for e in cut.evidence)

    evaluated = runner.invoke(
        cdp_app, ["eval", "--truth", str(tmp_path / "truth.json"), "--detail", *db, "--json"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    crm_pos = report["recall_by_source_pair"]["crm↔pos"]
    assert crm_pos["pairs"] >= len(pairs) and 0 < crm_pos["rate"] <= 1
    assert {"precision", "recall", "f1", "tp_fp_fn", "false_merge_by_relation"} <= set(report)
    assert set(report["parent_child_records"]) == {"told_apart", "nothing_tells_apart"}
