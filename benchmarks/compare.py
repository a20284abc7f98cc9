"""The engine against the approach an analyst would take with the usual tools, on the same
force-scale data in the same process: geopandas `sjoin` of sign-ups to wards, and tobler
`area_interpolate` of census counts to an H3 grid (`tobler.util.h3fy`) and to wards.

The engine's side is the same steps by the functions its run calls: the cells touching each ward
(found once), sign-ups to wards, and census counts to cell x ward fragments (so to cells and to
wards at once, including building the fragments). Its whole grid stage, which also places crimes, ratings and Watch schemes, is timed
alongside for context. Needs the `bench` extra (tobler).

Each step is timed three times and its median kept, on both sides.

Then the whole `targeting run` (every output: disclosure audit, plan, map, report, pack) against
the usual-tools script that produces the representation table alone (read the files, `sjoin`
sign-ups to wards, `h3fy` and `area_interpolate` census counts to cells and wards, then each
ward's and origin's target and actual rates and index), median of three each, on the
force-scale synthetic data and on a real-data scenario: the 2011 census by Output Area, the
2013 West Midlands wards, real police.uk files and 54,000 sign-ups at real postcodes
(`tests/realworld.py`; needs `../shared/realdata`). Both ratios are printed.

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
from pyproj import Transformer

from targeting.config import load_config
from targeting.grid import (
    allocate_to_fragments,
    area_locator,
    areas_to_fragments,
    cells_touching,
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

    # the engine: the same steps, by the functions its run calls; it finds the cells touching
    # each ward once, for its lookup of the wards and for the fragments (as h3fy's cells serve
    # both of the usual side's interpolations)
    lon, lat = signups["longitude"].to_numpy(), signups["latitude"].to_numpy()
    touching = timed("engine: the cells touching each ward (found once, for both)",
                     lambda: cells_touching(areas, resolution=9), log)  # fmt: skip
    timed("engine: sign-ups to wards (building its cell lookup included)", lambda: points_to_areas(
        lon, lat, areas, locator=area_locator(areas, resolution=9, touching=touching)), log)  # fmt: skip
    population = data.population.table
    position = pd.Series(np.arange(len(data.small_areas)), index=data.small_areas["area_code"])
    values = pd.DataFrame({
        "source": population["area_code"].map(position).to_numpy(),
        "origin": population["origin"].to_numpy(),
        "residents": population["residents"].to_numpy(dtype=float),
    })  # fmt: skip

    def census_to_cells_and_wards() -> pd.DataFrame:
        crs = equal_area_crs(areas)
        fragments = areas_to_fragments(areas, resolution=9, crs=crs, touching=touching)
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
    print(f"same steps: engine {engine:.2f} s, usual {usual:.2f} s: ratio {engine / usual:.3f}")
    result["whole_run"] = {
        "synthetic force": whole_run_against_usual(
            config_path, population_wide=_long_to_wide, labels=None
        ),
    }
    real = _real_scenario()
    if real is not None:
        result["whole_run"]["real 2011 OAs, 2013 wards"] = whole_run_against_usual(
            real, population_wide=_census_2011_wide, labels=REAL_LABELS
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compare.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, row in result["whole_run"].items():
        print(f"whole run against the usual representation table, {name}: "
              f"{row['targeting_run_s']} s against {row['usual_s']} s, ratio {row['ratio']}")  # fmt: skip


# the real scenario's sign-up labels (ORIGINS-style) as an analyst would map them to the 2011
# census columns by hand; blanks and "Not Found" are unknown
REAL_LABELS = {"England": "WhiteBrit", "Pakistani": "Pakistani", "Polish": "OtherWhite",
               "Hindu Indian": "Indian"}  # fmt: skip
CENSUS_2011_ORIGINS = ("WhiteBrit", "Irish", "OtherWhite", "Mixed", "Indian", "Pakistani",
                       "Bangladeshi", "Chinese", "OtherAsian", "BlkAfrican", "BlkCaribbean",
                       "OtherBlk", "Arab", "Other")  # fmt: skip


def _real_scenario() -> Path | None:
    """The 2011 OA run of `output_digests.py` with 54,000 sign-ups at real postcodes (None
    without `../shared/realdata`)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from output_digests import write_oa2011_inputs
    from tiny import REALDATA

    if not (REALDATA / "boundaries" / "wm_oa_2011.geojson").is_file():
        return None
    folder = Path(tempfile.mkdtemp(prefix="targeting-compare-real-"))
    return write_oa2011_inputs(folder, signups=54_000)


def _long_to_wide(path: Path) -> pd.DataFrame:
    """A long census table (`area_code, origin, residents`) as one column per origin."""
    long = pd.read_csv(path)
    return long.pivot_table(index="area_code", columns="origin", values="residents",
                            aggfunc="sum").fillna(0.0)  # fmt: skip


def _census_2011_wide(path: Path) -> pd.DataFrame:
    """The 2011 OA table as published: one column per origin (the total and codes left out)."""
    return pd.read_csv(path).set_index("OA")[list(CENSUS_2011_ORIGINS)].astype(float)


def usual_representation(config_path: Path, *, population_wide, labels) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The representation table as an analyst would make it with the usual tools, from the
    files: each ward and origin's residents, sign-ups, target and actual rates and index."""
    from tobler.area_weighted import area_interpolate
    from tobler.util import h3fy

    config = load_config(config_path)
    inputs = config.inputs
    wards = gpd.read_file(inputs.areas)
    wards = wards.rename(columns={"WD13CD": "area_code"})[["area_code", "geometry"]]
    oas = gpd.read_file(inputs.small_areas)
    oas = oas.rename(columns={"OA11CD": "area_code"})[["area_code", "geometry"]]
    census = population_wide(inputs.population)
    origins = list(census.columns)
    oas = oas.merge(census, left_on="area_code", right_index=True).to_crs(27700)
    wards_m = wards.to_crs(27700)
    by_ward = area_interpolate(oas, wards_m, extensive_variables=origins)
    area_interpolate(oas, h3fy(wards, resolution=9).to_crs(27700), extensive_variables=origins)
    signups = pd.read_csv(inputs.signups, dtype={"postcode": str, "origin": str})
    if "easting" in signups:  # rows located in British National Grid metres
        grid = signups["latitude"].isna() & signups["easting"].notna()
        if grid.any():
            lon, lat = Transformer.from_crs(27700, 4326, always_xy=True).transform(
                signups.loc[grid, "easting"].to_numpy(), signups.loc[grid, "northing"].to_numpy()
            )
            signups.loc[grid, "latitude"], signups.loc[grid, "longitude"] = lat, lon
    if "postcode" in signups and inputs.postcodes is not None:
        path = Path(inputs.postcodes)
        lookup = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        lookup = lookup.rename(columns={"Postcode": "pcds", "LAT": "lat", "LONG": "long"})
        lookup = lookup.drop_duplicates("pcds")
        key = lookup["pcds"].str.replace(" ", "").str.upper().to_numpy()
        normal = signups["postcode"].fillna("").str.replace(" ", "").str.upper()
        found = signups["latitude"].isna() & normal.isin(key)
        signups.loc[found, "latitude"] = normal[found].map(
            pd.Series(lookup["lat"].to_numpy(), index=key)
        )
        signups.loc[found, "longitude"] = normal[found].map(
            pd.Series(lookup["long"].to_numpy(), index=key)
        )
    signups = signups.dropna(subset=["latitude", "longitude"])
    origin = signups["origin"].map(labels) if labels is not None else signups["origin"]
    points = gpd.GeoDataFrame({"origin": origin.to_numpy()}, crs=4326,
                              geometry=gpd.points_from_xy(signups["longitude"], signups["latitude"]))  # fmt: skip
    joined = gpd.sjoin(points, wards, predicate="within")
    registered = joined.dropna(subset=["origin"]).groupby(["area_code", "origin"]).size()
    residents = by_ward.assign(area_code=wards_m["area_code"].to_numpy()).melt(
        id_vars="area_code", value_vars=origins, var_name="origin", value_name="residents"
    )
    table = residents.join(registered.rename("registered"), on=["area_code", "origin"]).fillna(
        {"registered": 0}
    )
    table["target_rate"] = table["residents"] / table.groupby("area_code")["residents"].transform(
        "sum"
    )
    table["actual_rate"] = table["registered"] / table.groupby("area_code")["registered"].transform(
        "sum"
    )
    table["representation_index"] = 100 * table["actual_rate"] / table["target_rate"]
    return table


def whole_run_against_usual(config_path: Path, *, population_wide, labels) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The whole `targeting run` and the usual representation table, median of three each, in
    this process."""
    from targeting.pipeline import run

    log: dict[str, float] = {}
    timed("targeting run (every output)", lambda: run(config_path), log)
    table = timed("usual tools: the representation table", lambda: usual_representation(
        config_path, population_wide=population_wide, labels=labels), log)  # fmt: skip
    engine, usual = (
        log["targeting run (every output)"],
        log["usual tools: the representation table"],
    )
    return {"targeting_run_s": engine, "usual_s": usual, "ratio": round(engine / usual, 3),
            "usual_rows": len(table)}  # type: ignore[arg-type]  # fmt: skip


if __name__ == "__main__":
    main()
