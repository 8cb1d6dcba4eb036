"""Does serving with the learned blend keep the offline blend's quality? On the simulator.

The café simulator runs ``--days`` days with ``--seed``; each loyalty member's last paid
order is held out and everything else goes into a fresh SQLite database through the
server's projections (orders, consent: the simulator's members grant or refuse
``personalization`` as real ones do). Then, as ``storelens recommend train`` does, the
source settings are tuned on the training orders' validation split, the blend is fitted
on all training orders and every customer's next basket is scored and stored.

Each consenting member with a held-out order is then asked for 10 items by the serving
engine, its clock set to the held-out order's payment time (so the daypart, the recency
rule and the store's popularity window are those of that visit), and the list is
compared with the held-out order: recall@10 (matched items / held-out items, summed over
members, and the per-member mean). The same members are scored four ways:

* ``offline_blend_true_context``: the blend's own top 10 given the held-out order's real
  gap, weekday and hour (what ``recommend eval`` reports);
* ``offline_blend_usual_context``: its top 10 with each member's usual context, which is
  all the batch can know (what is stored);
* ``served_blend``: the engine's answer ranked by the stored blend scores under the rules
  (recency, stock, declines, category cap of 3);
* ``served_counts``: the engine's answer with the blend rows removed (the calibrated
  counts, serving before this change);
* both again without the category cap and the recency rule (``..._without_cap_and_recency``):
  a diagnostic of what the rules cost, not something served.

The split is per member, not by calendar (as in the offline evaluation): other members'
training orders may be later than a member's held-out one.

    python benchmarks/recommend_blend_serving.py --seed 11
    # writes benchmarks/results/recommend_blend_serving.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")


def _events(days: int, seed: int, tmp: Path) -> tuple[list[dict[str, Any]], str, str]:
    from storelens.core.layout import load_layout
    from storelens.sim.run import default_layout_path, run_simulation

    run_simulation(default_layout_path(), days, seed, tmp)
    layout = load_layout(default_layout_path())
    with (tmp / "events.jsonl").open(encoding="utf-8") as fh:
        events = [json.loads(line) for line in fh]
    return events, layout.store_id, layout.timezone


def _held_out(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each member's last paid order (by payment time, then order id)."""
    last: dict[str, dict[str, Any]] = {}
    for ev in events:
        if ev["type"] != "pos.order_paid" or not ev["payload"].get("customer_id"):
            continue
        cid = ev["payload"]["customer_id"]
        key = (ev["ts"], ev["payload"]["order_id"])
        if cid not in last or key > (last[cid]["ts"], last[cid]["payload"]["order_id"]):
            last[cid] = ev
    return last


def _load(db_url: str, events: list[dict[str, Any]], store_id: str, tz: str) -> Any:
    from storelens import stores
    from storelens.catalogue import load_catalogue, upsert_products
    from storelens.core.events import event_adapter
    from storelens.processors import default_projections, run_projections
    from storelens.storage import migrate
    from storelens.storage.db import create_engine
    from storelens.storage.eventlog import EventLog

    engine = create_engine(db_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        stores.create_store(conn, store_id, "Café", timezone=tz, kind="cafe")
        upsert_products(
            conn,
            [
                {"product_id": p.product_id, "name": p.name, "category": p.category,
                 "brand": p.brand, "price": p.price, "zone_id": p.zone_id}
                for p in load_catalogue()
            ],
        )  # fmt: skip
    wanted = [e for e in events if e["type"] in ("pos.order_paid", "consent.changed")]
    log = EventLog(engine)
    for lo in range(0, len(wanted), 5000):
        log.append([event_adapter.validate_python(e) for e in wanted[lo : lo + 5000]])
    run_projections(log, [p for p in default_projections() if p.name in {"orders", "consent"}])
    return engine


def _recall(lists: dict[str, list[str]], truth: dict[str, set[str]]) -> dict[str, float]:
    matched = sum(len(set(lists.get(c, [])[:10]) & t) for c, t in truth.items())
    held = sum(len(t) for t in truth.values())
    per = [len(set(lists.get(c, [])[:10]) & t) / len(t) for c, t in truth.items()]
    return {
        "members": len(truth),
        "held_out_items": held,
        "predicted": sum(min(len(lists.get(c, [])), 10) for c in truth),
        "matched": matched,
        "recall@10_pooled": matched / held if held else 0.0,
        "recall@10_mean": sum(per) / len(per) if per else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--days", type=int, default=56)
    ap.add_argument("--seed", type=int, default=11, help="simulator seed (11: held out)")
    ap.add_argument("--out", type=Path, default=RESULTS / "recommend_blend_serving.json")
    args = ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    import numpy as np
    from sqlalchemy import delete

    from storelens.config import Settings
    from storelens.recommend.blend_scores import consenting, expected_context
    from storelens.recommend.candidate_store import MemoryCandidates
    from storelens.recommend.context import Context
    from storelens.recommend.engine import RecommendationEngine
    from storelens.recommend.ranker import SourceParams, fit_blend, source_scores
    from storelens.recommend.training import history_from_orders, store_blend_scores
    from storelens.recommend.tuning import tune
    from storelens.storage.tables import recommend_blend

    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        events, store_id, tz = _events(args.days, args.seed, tmp)
        last = _held_out(events)
        held_ids = {ev["id"] for ev in last.values()}
        engine = _load(
            f"sqlite:///{tmp / 'reco.db'}",
            [e for e in events if e["id"] not in held_ids],
            store_id,
            tz,
        )
        settings = Settings()
        with engine.connect() as conn:
            history = history_from_orders(conn)
            allowed = consenting(conn, list(history.users))
        params = tune(history, SourceParams())  # validation: each member's last training order
        training = [
            e for e in events
            if e["type"] == "pos.order_paid" and e["id"] not in held_ids
            and e["payload"].get("customer_id")
        ]  # fmt: skip
        prior: dict[str, datetime] = {}
        for e in training:
            ts = datetime.fromisoformat(e["ts"])
            cid = e["payload"]["customer_id"]
            prior[cid] = max(prior.get(cid, ts), ts)
        now = max(prior.values())
        scored, rows = store_blend_scores(engine, settings, history, params, lambda: now)

        truth = {
            c: {li["product_id"] for li in ev["payload"]["lines"]}
            for c, ev in last.items()
            if c in allowed and c in set(history.users)
        }
        paid_at = {c: datetime.fromisoformat(last[c]["ts"]) for c in truth}

        # Offline: the blend's own top 10, with the real and with the usual context.
        full = history
        scores = source_scores(full, params)
        blend = fit_blend(full, params, None, tuple(scores))
        real = np.full((full.n_users, 3), np.nan)
        for u, c in enumerate(full.users):
            if c in truth:
                real[u] = [
                    (paid_at[c] - prior[c]).total_seconds() / 86400,
                    paid_at[c].weekday(),
                    paid_at[c].hour,
                ]

        def top10(ctx: Any) -> dict[str, list[str]]:
            mat = blend.score(full, scores, ctx)
            out: dict[str, list[str]] = {}
            for u, c in enumerate(full.users):
                lo, hi = mat.indptr[u], mat.indptr[u + 1]
                best = np.lexsort((mat.indices[lo:hi], -mat.data[lo:hi]))[:10]
                out[c] = [full.items[int(mat.indices[lo + i])] for i in best]
            return out

        methods: dict[str, dict[str, float]] = {
            "offline_blend_true_context": _recall(top10(real), truth),
            "offline_blend_usual_context": _recall(top10(expected_context(full)), truth),
        }

        def served(rules: Settings = settings) -> dict[str, list[str]]:
            clock: list[datetime] = [now]
            reco = RecommendationEngine(engine, rules, MemoryCandidates(3600), clock=_at(clock))
            out: dict[str, list[str]] = {}
            for c in sorted(truth):
                clock[0] = paid_at[c]
                reco._shared.clear()  # popularity for this visit's window
                answer = reco.answer(c, store_id, 10, Context(), log_impressions=False)
                out[c] = [r.product_id for r in answer.items]
            reco.close()
            return out

        # What the rules cost: no category cap, no recency rule (a diagnostic, not served).
        loose = Settings(recommend_category_cap=100, recommend_recent_days=0)
        methods["served_blend"] = _recall(served(), truth)
        methods["served_blend_without_cap_and_recency"] = _recall(served(loose), truth)
        with engine.begin() as conn:
            conn.execute(delete(recommend_blend))
        methods["served_counts"] = _recall(served(), truth)
        methods["served_counts_without_cap_and_recency"] = _recall(served(loose), truth)
        engine.dispose()

    result = {
        "seed": args.seed,
        "days": args.days,
        "members_with_orders": history.n_users,
        "consenting_scored": scored,
        "blend_rows": rows,
        "params": {
            "repeat_decay": params.repeat_decay,
            "als_factors": params.als_factors,
            "tifu": str(params.tifu),
        },
        "methods": methods,
        "seconds": round(time.perf_counter() - began, 1),
        "load_average": os.getloadavg(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


def _at(clock: list[datetime]) -> Callable[[], datetime]:
    return lambda: clock[0]


if __name__ == "__main__":
    main()
