"""The engine against the approach an analyst would take with the usual tools, on the same
force-scale data in the same process: geopandas `sjoin` of sign-ups to wards, and tobler
`area_interpolate` of census counts to an H3 grid (`tobler.util.h3fy`) and to wards.

The engine's side is the same steps by the functions its grid stage calls: sign-ups to wards, and
census counts to cell x ward fragments (so to cells and to wards at once, including building the
fragments). Its whole grid stage, which also places crimes, ratings and Watch schemes, is timed
alongside for context. Needs the `bench` extra (tobler).

Each step is timed three times and its median kept, on both sides.

Usage: python benchmarks/compare.py [--inputs DIR]   (default: synthetic force-scale inputs)
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from targeting.config import load_config
from targeting.grid import (
    allocate_to_fragments,
    area_locator,
    areas_to_fragments,
    equal_area_crs,
    overlay_weights,
    points_to_areas,
)
from targeting.ingest.inputs import ingest_inputs
from targeting.pipeline import grid_inputs
from targeting.synth import write_synthetic_inputs

RESULTS = Path(__file__).resolve().parent / "results"


def timed(label: str, fn, log: dict, *, repeat: int = 3) -> object:  # type: ignore[no-untyped-def]
    """Run `fn` `repeat` times and log the median seconds (the first call pays for warming up)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    log[label] = round(statistics.median(times), 3)
    print(f"{label}: {log[label]} s", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", type=Path, default=None)
    args = parser.parse_args()
    folder = args.inputs or Path(tempfile.mkdtemp(prefix="targeting-compare-"))
    config_path = folder / "synth.toml"
    if not config_path.is_file():
        write_synthetic_inputs(folder, scale="force")
    config = load_config(config_path)
    data = ingest_inputs(config)
    areas = data.areas
    signups = data.signups.table
    log: dict[str, float] = {}
    # as `targeting run` does after ingest: both sides are timed without the cyclic collector
    # rescanning the loaded inputs
    gc.freeze()

    # the engine: the same three steps, by the functions its grid stage calls
    lon, lat = signups["longitude"].to_numpy(), signups["latitude"].to_numpy()
    timed("engine: sign-ups to wards (building its cell lookup included)", lambda: points_to_areas(
        lon, lat, areas, locator=area_locator(areas, resolution=9)), log)  # fmt: skip
    population = data.population.table
    position = pd.Series(np.arange(len(data.small_areas)), index=data.small_areas["area_code"])
    values = pd.DataFrame({
        "source": population["area_code"].map(position).to_numpy(),
        "origin": population["origin"].to_numpy(),
        "residents": population["residents"].to_numpy(dtype=float),
    })  # fmt: skip

    def census_to_cells_and_wards() -> pd.DataFrame:
        crs = equal_area_crs(areas)
        fragments = areas_to_fragments(areas, resolution=9, crs=crs)
        pairs = overlay_weights(data.small_areas.to_crs(crs).geometry, fragments)
        allocated, _ = allocate_to_fragments(pairs, values)
        return allocated.join(fragments[["cell", "area_code"]], on="fragment")

    timed("engine: census to cell x ward fragments (so to cells and to wards)",
          census_to_cells_and_wards, log)  # fmt: skip
    context: dict[str, float] = {}
    timed("the engine's whole grid stage (every input)", lambda: grid_inputs(data, config),
          context)  # fmt: skip

    # the usual approach
    from tobler.area_weighted import area_interpolate
    from tobler.util import h3fy

    points = gpd.GeoDataFrame(
        signups[["user_id"]], geometry=gpd.points_from_xy(signups["longitude"], signups["latitude"]),
        crs=4326,
    )  # fmt: skip
    timed("usual: sjoin sign-ups to wards", lambda: gpd.sjoin(
        points, areas[["area_code", "geometry"]], predicate="within").groupby("area_code").size(), log)  # fmt: skip
    wide = data.population.table.pivot_table(
        index="area_code", columns="origin", values="residents", aggfunc="sum"
    ).fillna(0.0)
    origins = list(wide.columns)
    oas = data.small_areas.merge(wide, left_on="area_code", right_index=True).to_crs(27700)
    wards = areas.to_crs(27700)
    hexes = timed("usual: h3fy wards at resolution 9", lambda: h3fy(areas, resolution=9), log)
    timed("usual: area_interpolate census to H3", lambda: area_interpolate(
        oas, hexes.to_crs(27700), extensive_variables=origins), log)  # fmt: skip
    timed("usual: area_interpolate census to wards", lambda: area_interpolate(
        oas, wards, extensive_variables=origins), log)  # fmt: skip

    engine = sum(v for k, v in log.items() if k.startswith("engine"))
    usual = sum(v for k, v in log.items() if k.startswith("usual"))
    result = {"seconds": log, "context_seconds": context, "engine_total": round(engine, 3), "usual_total": round(usual, 3),
              "ratio": round(engine / usual, 3), "small_areas": len(oas), "signups": len(points),
              "hexes": len(hexes)}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compare.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"engine {engine:.2f} s, usual {usual:.2f} s: ratio {engine / usual:.3f}")


if __name__ == "__main__":
    main()
