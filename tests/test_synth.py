"""Synthetic inputs for benchmarks, and the benchmark harness on a test-sized run so it cannot
rot."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from tiny import write_world

from targeting.pipeline import validate
from targeting.synth import SCALES, tile_centre, write_synthetic_forces, write_synthetic_inputs

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def test_synthetic_tiles_are_stretched_moved_and_prefixed(tmp_path: Path) -> None:
    config = write_synthetic_inputs(tmp_path / "s", scale="force", tiles=2)
    areas = gpd.read_file(tmp_path / "s" / "areas.geojson").to_crs(27700)
    assert len(areas) == 80 and areas["area_code"].is_unique
    assert set(areas["area_code"].str[:3]) == {"T00", "T01"}
    # each tile stretched by the force scale: 1.22 squared times the demo's 607 km2
    per_tile = areas.groupby(areas["area_code"].str[:3]).apply(lambda g: g.area.sum() / 1e6)
    assert ((per_tile > 607 * SCALES["force"].stretch ** 2 * 0.97)
            & (per_tile < 607 * SCALES["force"].stretch ** 2 * 1.03)).all()  # fmt: skip
    signups = pd.read_csv(tmp_path / "s" / "signups.csv", dtype=str)
    tiles = signups.groupby(signups["user_id"].str[:3])["user_id"].apply(set)
    assert not tiles["T00"] & tiles["T01"]  # the demo's own duplicates stay within a tile
    result = validate(config)
    used = result.manifest["inputs"]
    # the demo's deliberate bad rows, and nothing more, are rejected in each tile
    assert used["signups"]["rows_rejected"] == 2 * 40
    assert used["ratings"]["rows_rejected"] == 0


def test_national_inputs_are_written_a_folder_per_force(tmp_path: Path) -> None:
    configs = write_synthetic_forces(tmp_path / "nat", tiles=2)
    assert configs == [tmp_path / "nat" / "forces" / f"T0{i}" / "synth.toml" for i in (0, 1)]
    first, second = (gpd.read_file(c.parent / "areas.geojson").to_crs(27700) for c in configs)
    assert set(first["area_code"].str[:3]) == {"T00"} and set(second["area_code"].str[:3]) == {
        "T01"
    }
    # stretched to national density and placed apart: the forces do not overlap
    assert first.area.sum() / 1e6 == pytest.approx(607 * SCALES["national"].stretch ** 2, rel=0.03)
    assert not first.union_all().intersects(second.union_all())
    # every one of the 27 forces stays on the grid's valid eastings and northings, so sign-ups
    # given by easting/northing are not rejected
    minx, miny, maxx, maxy = first.total_bounds
    half_w, half_h = (maxx - minx) / 2, (maxy - miny) / 2
    centres = np.array([tile_centre(i) for i in range(SCALES["national"].tiles)])
    assert (centres[:, 0] - half_w).min() > 0 and (centres[:, 0] + half_w).max() < 700_000
    assert (centres[:, 1] - half_h).min() > 0 and (centres[:, 1] + half_h).max() < 1_300_000
    crimes = pd.concat(
        pd.read_csv(f, dtype=str) for f in (configs[1].parent / "crime").glob("*.csv")
    )
    assert set(crimes["Crime ID"].dropna().str[:3]) == {"T01"}
    # 4 million sign-ups over 27 forces: the demo's own and copies of its clean rows
    signups = pd.read_csv(configs[1].parent / "signups.csv", dtype=str)
    assert len(signups) == SCALES["national"].signups == 148_000
    copies = signups[signups["user_id"].str.startswith("T01X")]
    assert len(copies) == 148_000 - 53_408 and copies["user_id"].is_unique
    # only the demo's deliberate bad rows are rejected: the copies are all clean
    assert validate(configs[1]).manifest["inputs"]["signups"]["rows_rejected"] == 40


def _bench_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_run", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


def test_benchmark_harness_runs_a_batch_of_tiny_forces(tmp_path: Path) -> None:
    module = _bench_module()
    configs = [write_world(tmp_path / name) for name in ("east", "west")]
    result = module.measure_batch(configs, out=tmp_path / "batch", jobs=2)
    assert result["forces"] == 2 and result["jobs"] == 2
    # each tiny world has 612 residents in its origin columns, 50 of them outside both wards
    assert result["residents"] == pytest.approx(2 * (612 - 50), abs=1e-6)
    # the whole tree's sampled peak holds the batch process as well as a force's own
    assert result["peak_rss_mb_whole_batch"] > 0.5 * result["peak_rss_mb_largest_force"] > 0
    assert result["map_mb_max"] > 0


def test_benchmark_harness_runs_on_a_tiny_world(tmp_path: Path) -> None:
    module = _bench_module()
    result = module.run_once(write_world(tmp_path))
    assert result["run_seconds"] > 0 and result["peak_rss_mb"] > 0
    stages = [s["stage"] for s in result["stages"]]
    assert stages[0] == "areas" and "grid" in stages and stages[-1] == "map"
    assert "| **run total** |" in module.table(result)
