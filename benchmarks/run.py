"""Time `targeting demo` stages end to end and print a small table (not part of the test suite).

Usage: python benchmarks/run.py [--out DIR]. Reports wall time per stage, peak resident memory,
and the map's size and the time headless Chromium (when installed) takes to draw it offline
(median of 3 loads, until the page's layers are built and Leaflet's map is ready).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from targeting.demo import write_demo_inputs
from targeting.pipeline import run


def map_ready_ms(page: Path, *, loads: int = 3) -> float | None:
    """Median milliseconds until the offline map is drawn, in headless Chromium with every
    network request refused; None without Chromium."""
    browser = shutil.which("chromium")
    if browser is None:
        return None
    times = []
    for i in range(loads):
        profile = Path(tempfile.mkdtemp(prefix=f"targeting-chromium-{i}-"))
        dom = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu",
             "--proxy-server=http://127.0.0.1:9", f"--user-data-dir={profile}",
             "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120, check=False,
        ).stdout  # fmt: skip
        found = re.search(r'data-map-ready-ms="(\d+)"', dom)
        if found:
            times.append(float(found.group(1)))
    return statistics.median(times) if times else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the demo (default: a temp dir)"
    )
    args = parser.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="targeting-bench-"))
    start = time.perf_counter()
    marks: list[tuple[str, float]] = [("generate demo data", start)]
    config = write_demo_inputs(folder)
    run(config, on_step=lambda step: marks.append((step, time.perf_counter())))
    end = time.perf_counter()
    ends = [t for _, t in marks[1:]] + [end]
    rows = [
        {"stage": name, "seconds": round(stop - begin, 3)}
        for (name, begin), stop in zip(marks, ends, strict=True)
    ]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    page = config.parent / "output" / "map.html"
    result = {
        "total_seconds": round(end - start, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "stages": rows,
        "map_mb": round(page.stat().st_size / 1e6, 2),
        "map_ready_ms": map_ready_ms(page),
    }
    print("| stage | seconds |\n|---|---:|")
    for row in rows:
        print(f"| {row['stage']} | {row['seconds']:.3f} |")
    print(
        f"| **total** | **{result['total_seconds']:.3f}** |\n\npeak RSS {result['peak_rss_mb']} MB"
    )
    print(
        f"map.html {result['map_mb']} MB, drawn offline in {result['map_ready_ms']} ms (median of 3)"
    )
    (folder / "bench.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
