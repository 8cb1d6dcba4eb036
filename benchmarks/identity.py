"""Identity resolution at scale: full ``dedupe`` on synthetic customers with known truth.

For each size, records come from :func:`storelens.cdp.synthetic.generate_customers`
and the timed part is the whole default resolve (``dedupe``: deterministic rules,
u sampling, EM training, predict, clustering). Each size runs in a **fresh
subprocess** so its peak memory (``ru_maxrss`` of that process, which includes
the generated frame) is not inflated by an earlier, larger size. Pairs compared are
counted exactly with Splink's ``count_comparisons_from_blocking_rules`` over the
model's prediction blocking rules, outside the timed part. Quality is pairwise
precision/recall/F1 of the final clusters (default threshold 0.9) against the
generated truth, plus the same at stricter thresholds from the same scored pairs.

Target: 1,000,000 records resolved in <= 180 s on the 2-core benchmark machine.

    python benchmarks/identity.py                      # 100k and 1M, 1 run each
    python benchmarks/identity.py --sizes 100000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).with_name("results")
TARGET_RECORDS, TARGET_SECONDS = 1_000_000, 180.0
console = Console()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def count_comparisons(frame: Any) -> int:
    """Exact number of pairs the prediction blocking rules generate (after dedup
    across rules), i.e. the pairs the model scores."""
    from splink import DuckDBAPI, block_on
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    from storelens.cdp.identity import IdentityModel
    from storelens.cdp.matching_keys import add_match_keys

    db = DuckDBAPI()
    keyed = add_match_keys(frame)  # the rules block on derived keys (name_key, email_key …)
    present = {c for c in keyed.columns if keyed[c].notna().any()}
    rules = IdentityModel().prediction_rules(keyed)
    rules = [r for r in rules if all(_col(c) in present for c in r)]
    counts = count_comparisons_from_blocking_rules(
        db.register(keyed.drop(columns=["source_dataset"], errors="ignore")),
        blocking_rules=[block_on(*r) for r in rules],
        link_type="dedupe_only",
        record_sample_proportion=1.0,
    )
    return int(counts[-1]["cumulative_comparison_count"])


def _col(rule_part: str) -> str:
    """The column a blocking expression reads (``substr(dob,1,3)`` -> ``dob``)."""
    return rule_part.split("(", 1)[1].split(",", 1)[0] if "(" in rule_part else rule_part


def clusters_at(ids: Any, pairs: Any, threshold: float) -> dict[str, str]:
    """Connected components of the scored pairs at or above ``threshold``: what
    ``dedupe(threshold=...)`` would return, without resolving again."""
    parent = {u: u for u in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    kept = pairs[pairs["match_probability"] >= threshold]
    for a, b in zip(kept["unique_id_l"], kept["unique_id_r"], strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {u: find(u) for u in parent}


def run_size(n: int, runs: int, seed: int) -> dict[str, Any]:
    """One size, in this process: generate, resolve ``runs`` times, count, score."""
    import duckdb

    from storelens.cdp.identity import dedupe, deterministic_pairs
    from storelens.cdp.linkage_eval import clusters_to_pairs, score_pairs
    from storelens.cdp.synthetic import generate_customers

    start = time.perf_counter()
    frame, truth = generate_customers(n, seed=seed)
    gen_s = time.perf_counter() - start
    rss_after_gen = _peak_mb()
    times, result = [], None
    load_before = os.getloadavg()
    cpu = []
    for _ in range(runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = dedupe(frame)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    assert result is not None
    rss_after_resolve = _peak_mb()
    load_after = os.getloadavg()
    true_pairs = clusters_to_pairs(dict(zip(frame["unique_id"], truth, strict=True)))
    scores = score_pairs(clusters_to_pairs(result.cluster_of()), true_pairs)
    sweep = {}
    for threshold in (0.99, 0.999, 0.9999):
        at = score_pairs(
            clusters_to_pairs(clusters_at(frame["unique_id"], result.pairs, threshold)),
            true_pairs,
        )
        sweep[str(threshold)] = [round(at.precision, 5), round(at.recall, 5), round(at.f1, 5)]
    start = time.perf_counter()
    deterministic_pairs(frame)
    det_s = time.perf_counter() - start
    start = time.perf_counter()
    compared = count_comparisons(frame)
    count_s = time.perf_counter() - start
    threads = duckdb.connect().execute("SELECT current_setting('threads')").fetchone()
    return {
        "records": n,
        "people": int(truth.nunique()),
        "generate_s": round(gen_s, 1),
        "resolve_s": round(statistics.median(times), 1),
        "resolve_runs_s": [round(t, 1) for t in times],
        "resolve_cpu_s": [round(t, 1) for t in cpu],  # all threads; on a shared machine
        # wall time stretches with the load, CPU seconds much less: on 2 idle cores the
        # wall time is at least half of this
        "load_avg_1_5_15_before_after": [
            [round(x, 2) for x in load_before],
            [round(x, 2) for x in load_after],
        ],
        "peak_rss_mb_after_generate": round(rss_after_gen),
        "peak_rss_mb_after_resolve": round(rss_after_resolve),
        "pairs_compared": compared,
        "count_comparisons_s": round(count_s, 1),
        "pairs_predicted": len(result.pairs),
        "deterministic_pairs": result.info["deterministic_pairs"],
        "precision": round(scores.precision, 5),
        "recall": round(scores.recall, 5),
        "f1": round(scores.f1, 5),
        "cluster_p_r_f1_at_threshold": sweep,
        "deterministic_pairs_alone_s": round(det_s, 1),
        "tp_fp_fn": [scores.true_positives, scores.false_positives, scores.false_negatives],
        "duckdb_threads": threads[0] if threads else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated record counts")
    parser.add_argument("--runs", type=int, default=1, help="timed resolves per size (median)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per size")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child: one size, JSON out
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "identity.json", help="where to write results JSON"
    )
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_size(args.one, args.runs, args.seed)))
        return
    results: dict[str, Any] = {
        "benchmark": "identity",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": args.runs,
        "seed": args.seed,
        "memory": "peak RSS (ru_maxrss) of a fresh subprocess per size, incl. the frame",
        "target": {"records": TARGET_RECORDS, "seconds": TARGET_SECONDS},
        "sizes": {},
    }
    table = Table(title=f"identity dedupe (default model), median of {args.runs} run(s)")
    cols = ("records", "resolve s", "peak MB", "pairs compared", "P", "R", "F1", "F1 @0.999")
    for col in cols:
        table.add_column(col, justify="right")
    for n in (int(s) for s in args.sizes.split(",")):
        cmd = [sys.executable, __file__, "--one", str(n), "--runs", str(args.runs)]
        cmd += ["--seed", str(args.seed)]
        console.print(f"[dim]{n:,} records ...[/dim]")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            results["sizes"][str(n)] = {"error": f"timed out after {args.timeout} s"}
            table.add_row(f"{n:,}", f">{args.timeout}", *["-"] * 6)
            continue
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-3:]
            results["sizes"][str(n)] = {"error": f"exit {proc.returncode}", "stderr": tail}
            table.add_row(f"{n:,}", f"failed ({proc.returncode})", *["-"] * 6)
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        results["sizes"][str(n)] = row
        table.add_row(
            f"{n:,}",
            f"{row['resolve_s']:.1f}",
            f"{row['peak_rss_mb_after_resolve']:,}",
            f"{row['pairs_compared']:,}",
            f"{row['precision']:.4f}",
            f"{row['recall']:.4f}",
            f"{row['f1']:.4f}",
            f"{row['cluster_p_r_f1_at_threshold']['0.999'][2]:.4f}",
        )
    big = results["sizes"].get(str(TARGET_RECORDS), {})
    if "resolve_s" in big:
        results["target"]["met"] = big["resolve_s"] <= TARGET_SECONDS
    console.print(table)
    verdict = results["target"].get("met", "not measured")
    console.print(f"target {TARGET_RECORDS:,} records <= {TARGET_SECONDS:.0f} s: {verdict}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.exists():  # identity_retail.py writes its section here: keep it
        earlier = json.loads(args.out.read_text())
        if "retail" in earlier:
            results["retail"] = earlier["retail"]
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
