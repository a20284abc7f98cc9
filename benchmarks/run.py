"""Time `targeting demo` stages end to end and print a small table (not part of the test suite).

Usage: python benchmarks/run.py [--out DIR]. Reports wall time per stage and peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from targeting.demo import write_demo_inputs
from targeting.pipeline import run


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
    result = {
        "total_seconds": round(end - start, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "stages": rows,
    }
    print("| stage | seconds |\n|---|---:|")
    for row in rows:
        print(f"| {row['stage']} | {row['seconds']:.3f} |")
    print(
        f"| **total** | **{result['total_seconds']:.3f}** |\n\npeak RSS {result['peak_rss_mb']} MB"
    )
    (folder / "bench.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
