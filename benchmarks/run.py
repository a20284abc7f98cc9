"""Benchmarks (not part of the test suite): `targeting run` end to end and per stage on the demo
city or on synthetic inputs at force or national scale, with peak memory and rows per second,
the offline map's size and draw time, and how time grows with input size.

Usage:
    python benchmarks/run.py                       # the demo city (force-sized)
    python benchmarks/run.py --scale force         # synthetic force: ~900 km2, 2.2M residents
    python benchmarks/run.py --scale national      # 27 forces, ~150,000 km2, 59M residents,
                                                   # as `targeting batch`, a run per force
    python benchmarks/run.py --sweep 1,2,4,8,16    # tiles of national density: log-log slope
Each run happens in a fresh process so its peak memory is its own. Results go to
`benchmarks/results/<name>.json` and `.md`.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def map_ready_ms(page: Path, *, loads: int = 3) -> float | None:
    """Median milliseconds until the offline map is drawn, in headless Chromium with every
    network request refused; None without Chromium."""
    browser = shutil.which("chromium")
    if browser is None or not page.is_file():
        return None
    times = []
    for i in range(loads):
        profile = Path(tempfile.mkdtemp(prefix=f"targeting-chromium-{i}-"))
        dom = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu",
             "--proxy-server=http://127.0.0.1:9", f"--user-data-dir={profile}",
             "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=300, check=False,
        ).stdout  # fmt: skip
        found = re.search(r'data-map-ready-ms="(\d+)"', dom)
        if found:
            times.append(float(found.group(1)))
    return statistics.median(times) if times else None


def run_once(config: Path) -> dict:
    """`targeting run` on `config` in this process, timed per stage (call in a fresh process)."""
    from targeting.pipeline import run

    marks: list[tuple[str, float]] = []
    start = time.perf_counter()
    result = run(config, on_step=lambda step: marks.append((step, time.perf_counter())))
    end = time.perf_counter()
    ends = [t for _, t in marks[1:]] + [end]
    stages = [
        {"stage": name, "seconds": round(stop - begin, 3)}
        for (name, begin), stop in zip(marks, ends, strict=True)
    ]
    m = result.manifest
    rows = sum(int(i["rows_read"]) for i in m["inputs"].values())
    page = result.out_dir / "map.html"
    return {
        "config": str(config),
        "run_seconds": round(end - start, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "input_rows": rows,
        "rows_per_second": round(rows / (end - start)),
        "residents": round(m["grid"]["residents_on_grid"]),
        "cells": m["grid"]["cells"],
        "stages": stages,
        "map_mb": round(page.stat().st_size / 1e6, 2) if page.is_file() else None,
    }


def measure(config: Path) -> dict:
    """`run_once` in a fresh Python process, so peak memory is this run's alone."""
    done = subprocess.run(
        [sys.executable, __file__, "--run-only", str(config)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants, in MB (Linux /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid]
        tree.update(children)
        frontier += children
    page = resource.getpagesize()
    total = 0
    for pid in tree:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except OSError:
            continue
    return total / 2**20


def measure_batch(configs: list[Path], *, out: Path, jobs: int) -> dict:
    """`targeting batch` over the forces' configs in a fresh process, with the whole process
    tree's resident memory sampled every quarter second (the batch's true peak: parent plus the
    forces running at once)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from targeting.cli import app; app()", "batch",
         *map(str, configs), "--out", str(out), "--jobs", str(jobs), "--quiet"],
    )  # fmt: skip
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, tree_rss_mb(proc.pid))
        time.sleep(0.25)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"targeting batch failed with exit code {proc.returncode}")
    runs = list(csv.DictReader((out / "batch.csv").open(encoding="utf-8")))
    seconds = [float(r["seconds"]) for r in runs]
    maps = [Path(r["out_dir"]) / "map.html" for r in runs]
    return {
        "forces": len(runs),
        "jobs": jobs,
        "batch_seconds": round(wall, 1),
        "peak_rss_mb_whole_batch": round(peak, 1),
        "peak_rss_mb_largest_force": max(float(r["peak_rss_mb"]) for r in runs),
        "force_seconds_median": round(statistics.median(seconds), 1),
        "force_seconds_max": round(max(seconds), 1),
        "residents": round(sum(float(r["residents"]) for r in runs)),
        "signups_used": sum(int(r["signups_used"]) for r in runs),
        "cells": sum(int(r["cells"]) for r in runs),
        "map_mb_median": round(statistics.median(m.stat().st_size / 1e6 for m in maps), 2),
        "map_mb_max": round(max(m.stat().st_size / 1e6 for m in maps), 2),
        "map_ready_ms_first_force": map_ready_ms(maps[0]),
    }


def inputs(folder: Path, *, scale: str, tiles: int | None) -> tuple[Path, float]:
    """Write the inputs (demo or synthetic) and say how long that took."""
    start = time.perf_counter()
    if scale == "demo":
        from targeting.demo import write_demo_inputs

        config = write_demo_inputs(folder)
    else:
        from targeting.synth import write_synthetic_inputs

        config = write_synthetic_inputs(folder, scale=scale, tiles=tiles)
    return config, round(time.perf_counter() - start, 1)


def table(result: dict) -> str:
    lines = ["| stage | seconds |", "|---|---:|"]
    lines += [f"| {s['stage']} | {s['seconds']:.3f} |" for s in result["stages"]]
    lines.append(f"| **run total** | **{result['run_seconds']:.3f}** |")
    return "\n".join(lines) + (
        f"\n\npeak RSS {result['peak_rss_mb']} MB; {result['input_rows']:,} input rows at "
        f"{result['rows_per_second']:,} rows/s; {result['residents']:,} residents on "
        f"{result['cells']:,} cells; map.html {result['map_mb']} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scale", default="demo", choices=["demo", "force", "national"])
    parser.add_argument("--tiles", type=int, default=None, help="override the scale's tiles")
    parser.add_argument("--sweep", default=None, help="tiles to time, e.g. 1,2,4,8,16")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--jobs", type=int, default=2, help="national: forces run at once")
    parser.add_argument("--run-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_only:
        print(json.dumps(run_once(args.run_only)))
        return
    folder = args.out or Path(tempfile.mkdtemp(prefix="targeting-bench-"))
    machine = f"{platform.node()}: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    RESULTS.mkdir(exist_ok=True)
    if args.sweep:
        sizes = [int(t) for t in args.sweep.split(",")]
        points = []
        for tiles in sizes:
            config, generate = inputs(folder / f"tiles{tiles}", scale="national", tiles=tiles)
            result = measure(config)
            points.append({"tiles": tiles, "generate_seconds": generate, **result})
            print(f"{tiles} tiles: {result['residents']:,} residents, {result['run_seconds']} s, "
                  f"{result['peak_rss_mb']} MB", flush=True)  # fmt: skip
            shutil.rmtree(folder / f"tiles{tiles}")
        x = [math.log(p["residents"]) for p in points]
        y = [math.log(p["run_seconds"]) for p in points]
        slope = statistics.linear_regression(x, y).slope
        summary = {"machine": machine, "sweep": points, "log_log_slope": round(slope, 3)}
        (RESULTS / "sweep.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        print(f"log-log slope of run time against residents: {slope:.3f}")
        return
    if args.scale == "national":
        from targeting.synth import write_synthetic_forces

        start = time.perf_counter()
        configs = sorted((folder / "forces").glob("*/synth.toml"))
        if not configs:
            configs = write_synthetic_forces(folder, tiles=args.tiles)
        generate = round(time.perf_counter() - start, 1)
        result = {
            "machine": machine,
            "scale": "national",
            "generate_seconds": generate,
            **measure_batch(configs, out=folder / "batch", jobs=args.jobs),
        }
        name = "national" if args.tiles is None else f"national-{args.tiles}"
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        text = "\n".join(f"| {k} | {v} |" for k, v in result.items() if k != "machine")
        (RESULTS / f"{name}.md").write_text(
            f"# {name} ({machine})\n\n| measure | value |\n|---|---:|\n{text}\n", encoding="utf-8"
        )
        print(text)
        return
    config, generate = inputs(folder, scale=args.scale, tiles=args.tiles)
    result = {
        "machine": machine,
        "scale": args.scale,
        "generate_seconds": generate,
        **measure(config),
    }
    result["map_ready_ms"] = map_ready_ms(config.parent / "output" / "map.html")
    name = args.scale if args.tiles is None else f"{args.scale}-{args.tiles}"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    text = table(result) + f"; drawn offline in {result['map_ready_ms']} ms (median of 3)\n"
    (RESULTS / f"{name}.md").write_text(f"# {name} ({machine})\n\n{text}", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
