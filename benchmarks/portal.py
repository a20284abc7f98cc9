"""Benchmark (not part of the test suite): the engagement portal for a year of weekly runs of a
force-scale synthetic force.

A force-scale run is made once; its sign-ups and ratings by day give the 51 weeks before it
(`targeting history add --backfill 51 --every week`), so the history holds 52 weekly dates.
Then the portal is built from that store in a fresh process, timed (median of 3), its peak
memory measured in a process of its own, and the site's size and page count counted.

Usage:
    python benchmarks/portal.py                 # results in benchmarks/results/portal.json/.md
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _targeting(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "targeting", "--quiet", *args], check=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        base = Path(tmp)
        config = subprocess.run(
            [sys.executable, "-m", "targeting", "synth", "--scale", "force", "--out",
             str(base / "inputs")],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        started = time.perf_counter()
        _targeting("run", config)
        run_seconds = time.perf_counter() - started
        out_dir = json.loads(
            subprocess.run([sys.executable, "-c", (
                "import json,sys; from targeting.config import load_config;"
                f"print(json.dumps(str(load_config({config!r}).output.dir)))")],
                check=True, capture_output=True, text=True).stdout
        )  # fmt: skip
        store = base / "history.duckdb"
        started = time.perf_counter()
        _targeting("history", "add", out_dir, "--store", str(store), "--backfill", "51",
                   "--every", "week")  # fmt: skip
        history_seconds = time.perf_counter() - started
        times = []
        for attempt in range(3):
            site = base / f"site{attempt}"
            started = time.perf_counter()
            _targeting("portal", "--store", str(store), "--out", str(site))
            times.append(time.perf_counter() - started)
        # the portal's own peak memory, in a process of its own
        peak = float(subprocess.run([sys.executable, "-c", (
            "import resource; from targeting.portal import build_portal;"
            f"build_portal({str(store)!r}, {str(base / 'site-memory')!r});"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")],
            check=True, capture_output=True, text=True).stdout)  # fmt: skip
        files = [p for p in site.rglob("*") if p.is_file()]
        result = {
            "dates": 52,
            "force_run_s": round(run_seconds, 1),
            "history_add_s": round(history_seconds, 1),
            "portal_build_s_median_of_3": round(statistics.median(times), 1),
            "portal_build_s_each": [round(t, 1) for t in times],
            "portal_peak_rss_mb": round(peak),
            "site_mb": round(sum(p.stat().st_size for p in files) / 1e6, 1),
            "pages": sum(p.suffix == ".html" for p in files),
            "store_mb": round(store.stat().st_size / 1e6, 1),
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "portal.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = ["# The portal for a year of weekly runs (force scale)", "", "| measure | value |",
             "|---|---:|", *(f"| {k} | {v} |" for k, v in result.items())]  # fmt: skip
    (RESULTS / "portal.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
