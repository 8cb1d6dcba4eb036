"""Every top-level package of storelens has its place in the import contracts.

``make lint`` runs the contracts (``lint-imports``), but import-linter only checks the
packages a contract names: a new package left out of ``[tool.importlinter]`` would be
free to import anything, and nothing would say so. These tests say so.
"""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path
from typing import Any

import storelens

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
COMMAND_LINE = {
    "storelens.cli",
    "storelens.cli_vision",
    "storelens.cli_entrance",
    "storelens.cli_accounts",
    "storelens.cli_ingest",
    "storelens.cli_help",
    "storelens.__main__",
}
SIMULATOR = {"storelens.sim", "storelens.demo"}


def _contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    assert config["root_package"] == "storelens"
    return {contract["id"]: contract for contract in config["contracts"]}


def _layer_members(contract: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for layer in contract["layers"]:
        names |= {name.strip() for name in layer.replace("|", ":").split(":")}
    return names


def _top_level() -> set[str]:
    return {f"storelens.{module.name}" for module in pkgutil.iter_modules(storelens.__path__)}


def test_every_top_level_package_has_a_layer() -> None:
    contracts = _contracts()
    placed = _layer_members(contracts["layers"]) | _layer_members(
        contracts["demo-runs-the-simulator"]
    )
    assert placed == _top_level()


def test_the_product_is_every_layer_below_the_command_line() -> None:
    contracts = _contracts()
    product = _layer_members(contracts["layers"]) - COMMAND_LINE
    rule = contracts["product-not-on-simulator"]
    assert set(rule["source_modules"]) == product
    assert set(rule["forbidden_modules"]) == SIMULATOR
    assert _top_level() == product | COMMAND_LINE | SIMULATOR


def test_the_house_rules_each_have_a_contract() -> None:
    contracts = _contracts()
    assert contracts["layers"]["layers"][-2:] == [
        "storelens.storage",
        "storelens.core | storelens.config | storelens.samples",
    ]
    assert contracts["no-cycles"]["type"] == "acyclic_siblings"
    assert contracts["no-cycles"]["ancestors"] == ["storelens"]
    assert contracts["core-is-the-bottom"]["forbidden_modules"] == ["storelens.*"]
    vision = contracts["vision-stays-on-the-edge"]
    assert vision["source_modules"] == ["storelens.vision"]
    assert set(vision["forbidden_modules"]) == {"storelens.storage", "storelens.api"}
