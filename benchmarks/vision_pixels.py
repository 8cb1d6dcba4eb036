"""Vision accuracy from pixels: simulated café periods filmed, analysed and scored.

The headline vision figures. For each crowd (our own café simulator, and JuPedSim, an
independent pedestrian-dynamics model driven by ``benchmarks/crowd_jupedsim.py``), each
period (a quiet and a busy one) and each camera kind (straight overhead, oblique CCTV;
``benchmarks/layouts/cafe_pixels.toml``), the same three commands a user runs:

    storelens vision render --truth-dir RUN --camera CAM --start T --minutes M --out v.mp4
    storelens vision run --camera CAM --source v.mp4 --start T --detector motion --out OUT
    storelens vision eval --truth RUN --events OUT/events.jsonl --camera CAM --json s.json

so decode → detect → track → zones → events is the real path, and the score carries
coverage beside error: true / predicted / matched visits for the store and every zone,
dwell error median and p90 over matched, mean dwell against truth, door counts,
occupancy and heatmap Pearson r (``storelens.vision.coverage``). Settings are tuned on
one seed (``--tune-seed``) and reported on another (``--seed``).

    python benchmarks/vision_pixels.py                       # both crowds, report seed,
                                                             # quiet 20 min, busy 15 min
    python benchmarks/vision_pixels.py --minutes 5           # both periods 5 minutes
    python benchmarks/vision_pixels.py --quick               # 2-minute periods, a smoke run
    python benchmarks/vision_pixels.py --crowd own --period busy --camera cam-overhead

Door times in the JuPedSim truth are stamped at the doorway itself (see
``crowd_jupedsim``), ~0.6 s from the count line 0.8 m inside; over 5-minute windows a
crossing right at a window's edge can fall either side (entries 28 for 27 on seed 7).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).parent
RESULTS = HERE / "results"
LAYOUT = HERE / "layouts" / "cafe_pixels.toml"
CACHE = Path(
    os.environ.get("STORELENS_BENCH_CACHE", Path(tempfile.gettempdir()) / "storelens-vision-pixels")
)
CAMERAS = ("cam-overhead", "cam-oblique")
DAY = datetime(2026, 11, 2, tzinfo=UTC)
FPS = 5.0
console = Console()

TARGETS = {
    "entries_exits": ">= 98 % of truth each",
    "zone_visits": "visits >= 5 s within ±10 % of truth, mean dwell within ±10 %",
    "store_visits": ">= 90 % of true visits matched, dwell error median <= 5 %, p90 <= 25 %",
    "occupancy_p95": "<= 1 person",
    "heatmap_r": ">= 0.95 at 0.5 m",
}


@dataclass(frozen=True)
class Period:
    name: str
    start: datetime
    minutes: float


def own_crowd(seed: int, minutes: dict[str, float]) -> tuple[Path, list[Period]]:
    """A café day of our simulator, six baristas so the queue moves, busier than the sample."""
    from storelens.sim.config import DEFAULT_BARISTAS, BaristaPlan, SimConfig
    from storelens.sim.run import default_layout_path, run_simulation

    run = CACHE / f"own-{seed}"
    if not (run / "positions.parquet").is_file():
        extra = tuple(
            BaristaPlan(p.staff_id + "-2", 0.8, p.start, p.end, p.break_start)
            for p in DEFAULT_BARISTAS
        )
        config = SimConfig(weekday_visits=800, baristas=DEFAULT_BARISTAS + extra)
        run_simulation(default_layout_path(), 1, seed, run, positions_fps=FPS, config=config)
    quiet = _busiest_and_quietest(run / "positions.parquet", minutes["quiet"])[1]
    busy = _busiest_and_quietest(run / "positions.parquet", minutes["busy"])[0]
    return run, [Period("quiet", quiet, minutes["quiet"]), Period("busy", busy, minutes["busy"])]


def jupedsim_crowd(seed: int, minutes: dict[str, float]) -> tuple[Path, list[Period]]:
    sys.path.insert(0, str(HERE))
    from crowd_jupedsim import simulate_cafe

    periods = []
    for name, per_min, offset in (("quiet", 3.5, 0), ("busy", 5.0, 2)):
        run = jupedsim_run(name, seed, minutes[name])
        start = DAY + timedelta(hours=8 + offset)
        if not (run / "positions.parquet").is_file():
            simulate_cafe(run, LAYOUT, start, minutes[name] + 5, per_min, seed, fps=FPS)
        # Five minutes to fill the café first: the camera starts on a full room.
        periods.append(Period(name, start + timedelta(minutes=5), minutes[name]))
    return CACHE, periods


def jupedsim_run(period: str, seed: int, minutes: float) -> Path:
    """The cached simulation of one period; its length is in the name, so a longer
    period is never scored against a shorter simulation's truth."""
    return CACHE / f"jps-{period}-{seed}-{minutes:g}m"


def _busiest_and_quietest(positions: Path, minutes: float) -> tuple[datetime, datetime]:
    """Windows of ``minutes`` with the most people-seconds on the floor, and an afternoon
    one with about a quarter of that (a quiet spell, not an empty shop)."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(positions, columns=["ts", "is_staff"])
    ms = table.column("ts").cast("int64").to_numpy()
    customer = ~table.column("is_staff").to_numpy(zero_copy_only=False)
    step = round(minutes * 60_000)
    slot = (ms[customer] - ms[0]) // step
    load = np.bincount(slot)
    busy = int(np.argmax(load))
    after_noon = DAY.replace(hour=12).timestamp() * 1000
    candidates = [i for i, n in enumerate(load) if n > 0 and ms[0] + i * step >= after_noon]
    # quiet: an afternoon window with about a quarter of the peak's people-seconds
    quiet = min(candidates, key=lambda i: abs(load[i] - load[busy] / 4)) if candidates else 0
    to_dt = lambda i: datetime.fromtimestamp((ms[0] + i * step) / 1000, UTC)  # noqa: E731
    return to_dt(busy), to_dt(quiet)


def crowd_truth(truth: Path, period: Period) -> dict[str, int]:
    """How full the period was, from the truth: the most customers on the floor at once
    and the longest queue (customers in the queue zone at once). Issue 11 asks for a busy
    period with >= 20 on the floor at peak and a queue of >= 6."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(truth / "positions.parquet", columns=["ts", "x", "zone_id", "is_staff"])
    ms = table.column("ts").cast("int64").to_numpy()
    begin = period.start.timestamp() * 1000
    inside = (ms >= begin) & (ms < begin + period.minutes * 60_000)
    customer = ~table.column("is_staff").to_numpy(zero_copy_only=False)
    on_floor = inside & customer & (table.column("x").to_numpy() >= 0.0)
    queued = on_floor & pc.fill_null(pc.equal(table.column("zone_id"), "queue"), False).to_numpy(
        zero_copy_only=False
    )

    def peak(mask: Any) -> int:
        return int(np.unique(ms[mask], return_counts=True)[1].max()) if mask.any() else 0

    return {"peak_on_floor": peak(on_floor), "longest_queue": peak(queued)}


def storelens(*args: str) -> None:
    command = ["nice", "-n", "10", sys.executable, "-m", "storelens.cli", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:2])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )


def one_run(
    run: Path, period: Period, camera: str, detector: str, work: Path, plate: bool
) -> dict[str, Any]:
    """Render, analyse and score one camera over one period; seconds of each step.
    ``plate``: give the motion detector the empty-shop picture (the camera starts on a
    full room either way)."""
    tag = f"{run.name}-{period.name}-{period.start:%H%M}-{period.minutes:g}m-{camera}"
    video = work / f"{tag}.mp4"
    tag += f"-{detector}" + ("-plate" if plate else "")
    out, score = work / tag, work / f"{tag}.json"
    empty = work / f"{camera}-empty.png"
    start = period.start.isoformat()
    truth = run if (run / "truth.json").is_file() else run / f"{period.name}"
    began = time.perf_counter()
    if not video.is_file():
        partial = video.with_name(f"partial-{video.name}")
        storelens("vision", "render", "--truth-dir", str(truth), "--camera", camera,
                  "--layout", str(LAYOUT), "--start", start, "--minutes", str(period.minutes),
                  "--fps", str(FPS), "--out", str(partial), "--empty-shop", str(empty))  # fmt: skip
        partial.rename(video)  # a render cut short is never taken for a whole one
    rendered = time.perf_counter()
    storelens("vision", "run", "--camera", camera, "--source", str(video), "--layout",
              str(LAYOUT), "--start", start, "--detector", detector, "--fps", str(FPS),
              "--out", str(out), *(["--background", str(empty)] if plate else []))  # fmt: skip
    analysed = time.perf_counter()
    storelens("vision", "eval", "--truth", str(truth), "--events", str(out / "events.jsonl"),
              "--camera", camera, "--layout", str(LAYOUT), "--line", "door",
              "--json", str(score))  # fmt: skip
    result = json.loads(score.read_text(encoding="utf-8"))
    frames = round(period.minutes * 60 * FPS)
    result["run"] = {
        "crowd": run.name, "period": period.name, "camera": camera, "detector": detector,
        "empty_shop_picture": plate,
        "start": start, "minutes": period.minutes, "fps": FPS, "frames": frames,
        "render_s": round(rendered - began, 1), "analyse_s": round(analysed - rendered, 1),
        "analyse_fps": round(frames / max(analysed - rendered, 1e-9), 1),
        **crowd_truth(truth, period),
    }  # fmt: skip
    return result


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The figures a manager reads, with coverage beside error."""
    dwell, zones = result["dwell"], result.get("zones", {})
    occ = result.get("occupancy_overall") or {}
    return {
        **{k: result["run"][k] for k in ("crowd", "period", "camera", "detector")},
        "plate": result["run"]["empty_shop_picture"],
        "minutes": result["run"]["minutes"],
        "peak_floor_queue": f"{result['run']['peak_on_floor']}/{result['run']['longest_queue']}",
        "entries": f"{result['entries']['predicted']}/{result['entries']['true']}",
        "exits": f"{result['exits']['predicted']}/{result['exits']['true']}",
        "visits": f"{dwell['predicted_visits']}/{dwell['truth_visits']}/{dwell['matched']}",
        "dwell_med_p90": _pct(dwell["median_abs_rel_error"])
        + " / "
        + _pct(dwell.get("p90_abs_rel_error")),
        "mean_dwell": f"{_num(dwell.get('mean_predicted_s'))}/{_num(dwell.get('mean_true_s'))}",
        "zones": "; ".join(
            f"{z} {v['predicted']}/{v['true']}/{v['matched']} {_signed(v.get('mean_dwell_error'))}"
            for z, v in zones.items()
            if v["true"] or v["predicted"]
        ),
        "occ_p95": occ.get("p95_abs_error"),
        "id_switches": (result.get("tracking") or {}).get("id_switches"),
        "heat_r": None if result.get("heatmap_r") is None else round(result["heatmap_r"], 3),
    }


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.0%}"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2-minute periods")
    parser.add_argument("--seed", type=int, default=11, help="the reported seed")
    parser.add_argument("--crowd", choices=("own", "jupedsim"), action="append")
    parser.add_argument("--period", choices=("quiet", "busy"), action="append")
    parser.add_argument("--camera", choices=CAMERAS, action="append")
    parser.add_argument("--detector", default="motion")
    parser.add_argument("--no-plate", action="store_true", help="no empty-shop picture")
    parser.add_argument("--minutes", type=float, help="both periods' length (quick: 2)")
    parser.add_argument(
        "--quiet-minutes", type=float, default=20.0, help="quiet period (issue 11: 20)"
    )
    parser.add_argument("--busy-minutes", type=float, default=15.0, help="busy period (15)")
    parser.add_argument("--out", type=Path, default=RESULTS / "vision_pixels.json")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    work = CACHE / "work"
    work.mkdir(exist_ok=True)
    results = []
    for crowd in args.crowd or ["own", "jupedsim"]:
        make = own_crowd if crowd == "own" else jupedsim_crowd
        both = args.minutes or (2.0 if args.quick else None)
        minutes = {
            "quiet": both or args.quiet_minutes,
            "busy": both or args.busy_minutes,
        }
        run, periods = make(args.seed, minutes)
        for period in periods:
            if args.period and period.name not in args.period:
                continue
            truth_run = (
                run if crowd == "own" else jupedsim_run(period.name, args.seed, period.minutes)
            )
            for camera in args.camera or list(CAMERAS):
                console.print(f"{crowd} {period.name} {camera} …")
                plate = args.detector == "motion" and not args.no_plate
                results.append(one_run(truth_run, period, camera, args.detector, work, plate))
    table = Table(title="vision from pixels (predicted / true / matched)")
    rows = [summary(r) for r in results]
    for key in rows[0] if rows else []:
        table.add_column(key)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)
    record = {
        "benchmark": "vision_pixels",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "seed": args.seed,
        "layout": str(LAYOUT.relative_to(HERE.parent)),
        "targets": TARGETS,
        "summary": rows,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
