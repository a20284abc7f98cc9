"""The batch runs the CLI calls: validate the inputs, or run the whole engine into an output folder.

Each public function takes a config (or its path) and returns a result object; progress is
reported through an optional `on_step` callback so the library never prints.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from targeting import __version__
from targeting.config import Config, load_config
from targeting.grid import (
    allocate_to_fragments,
    areas_to_fragments,
    equal_area_crs,
    overlay_weights,
    points_to_cells,
    raster_to_points,
)
from targeting.ingest import (
    InputSummary,
    Population,
    Signups,
    check_raster,
    read_areas,
    read_crimes,
    read_population,
    read_postcodes,
    read_ratings,
    read_schemes,
    read_signups,
    read_small_areas,
)
from targeting.origins import REFERENCE_DIR, OriginMapping, map_origins, read_origin_map
from targeting.store import (
    CELLS_COLUMNS,
    STORE_NAME,
    atomic_output_dir,
    fsync_tree,
    inputs_markdown,
    write_manifest,
    write_rejects,
    write_store,
)

StepCallback = Callable[[str], None]
INGEST_STEPS = (
    "areas",
    "small areas",
    "population",
    "postcodes",
    "sign-ups",
    "crimes",
    "ratings",
    "schemes",
)
RUN_STEPS = (*INGEST_STEPS, "grid", "census to grid", "points to grid", "write outputs")


def _noop(_: str) -> None:
    return None


@dataclass(frozen=True)
class Ingested:
    """Every input, validated and in canonical columns, with what happened to each."""

    areas: gpd.GeoDataFrame
    small_areas: gpd.GeoDataFrame | None
    population: Population
    signups: Signups
    origins: OriginMapping
    crimes: pd.DataFrame | None
    ratings: pd.DataFrame | None
    schemes: gpd.GeoDataFrame | None
    summaries: tuple[InputSummary, ...]

    @property
    def as_of(self) -> dt.date:
        return self.signups.as_of

    def warnings(self) -> list[str]:
        out = [f"{s.name}: {w}" for s in self.summaries for w in s.warnings]
        if self.origins.unmapped:
            listed = ", ".join(f"{k} ({v})" for k, v in self.origins.unmapped.items())
            out.append(f"signups: origins with no mapping, counted as unknown: {listed}")
        return out


def ingest_inputs(config: Config, *, on_step: StepCallback = _noop) -> Ingested:
    """Read and validate every input the config names; stop at the first unusable file."""
    summaries: list[InputSummary] = []
    on_step("areas")
    areas, s = read_areas(config)
    summaries.append(s)
    on_step("small areas")
    small, s2 = read_small_areas(config)
    if s2:
        summaries.append(s2)
    on_step("population")
    population, s = read_population(
        config,
        area_codes=set(areas["area_code"]),
        small_area_codes=set(small["area_code"]) if small is not None else None,
    )
    summaries.append(s)
    raster = check_raster(config)
    if raster:
        summaries.append(raster)
    on_step("postcodes")
    postcodes, s3 = read_postcodes(config)
    if s3:
        summaries.append(s3)
    on_step("sign-ups")
    signups, s = read_signups(config, areas=areas, postcodes=postcodes)
    user_map = read_origin_map(config.origins.map) if config.origins.map else None
    mapped, mapping = map_origins(signups.table["label"], population.origins, user_map=user_map)
    table = signups.table.assign(origin=mapped.to_numpy())
    signups = Signups(table, signups.as_of)
    summaries.append(s)
    on_step("crimes")
    crime_types = pd.read_csv(REFERENCE_DIR / "police_uk_crime_types.csv", dtype=str)
    crimes, s4 = read_crimes(config, areas=areas, as_of=signups.as_of, crime_types=crime_types)
    if s4:
        summaries.append(s4)
    on_step("ratings")
    ratings, s5 = read_ratings(config, areas=areas, signups=table, as_of=signups.as_of)
    if s5:
        summaries.append(s5)
    on_step("schemes")
    schemes, s6 = read_schemes(config, areas=areas)
    if s6:
        summaries.append(s6)
    return Ingested(
        areas, small, population, signups, mapping, crimes, ratings, schemes, tuple(summaries)
    )


@dataclass(frozen=True)
class Grid:
    """The analysis grid: fragments with their counts, per-origin counts, and what fell outside."""

    cells: pd.DataFrame  # one row per cell x area fragment, CELLS_COLUMNS and more
    cell_origins: pd.DataFrame  # cell, area_code, origin, residents, registered
    unallocated: Mapping[str, float]
    crs: str


def _key_counts(
    frame: pd.DataFrame, *, resolution: int, columns: Mapping[str, Any]
) -> pd.DataFrame:
    """Aggregate located rows per (cell, area_code) with named aggregations."""
    keyed = frame.assign(
        cell=points_to_cells(
            frame["latitude"].to_numpy(), frame["longitude"].to_numpy(), resolution=resolution
        )
    )
    return keyed.groupby(["cell", "area_code"], sort=True).agg(**columns).reset_index()


def build_grid(data: Ingested, config: Config, *, on_step: StepCallback = _noop) -> Grid:
    """Put every count on the cell x area fragment grid, keeping track of what fell outside."""
    res = config.grid.resolution
    on_step("grid")
    crs = equal_area_crs(data.areas)
    fragments = areas_to_fragments(data.areas, resolution=res, crs=crs)
    keys = fragments[["cell", "area_code", "area_m2"]].copy()

    on_step("census to grid")
    pop = data.population
    unallocated: dict[str, float] = {}
    if pop.keyed_by == "small_areas" and data.small_areas is not None:
        sources = data.small_areas
        raster = (
            raster_to_points(str(config.inputs.population_raster), crs=crs)
            if config.inputs.population_raster
            else None
        )
        pairs = overlay_weights(sources.to_crs(crs).geometry, fragments, raster_weights=raster)
    else:
        sources = data.areas
        share = keys["area_m2"] / keys.groupby("area_code")["area_m2"].transform("sum")
        pos = pd.Series(np.arange(len(sources)), index=sources["area_code"])
        pairs = pd.DataFrame(
            {
                "source": keys["area_code"].map(pos).to_numpy(),
                "fragment": np.arange(len(keys)),
                "weight": share.to_numpy(),
            }
        )
    position = pd.Series(np.arange(len(sources)), index=sources["area_code"].to_numpy())
    values = pd.DataFrame(
        {
            "source": pop.table["area_code"].map(position).to_numpy(),
            "origin": pop.table["origin"].to_numpy(),
            "residents": pop.table["residents"].to_numpy(dtype=float),
        }
    )
    by_origin, left = allocate_to_fragments(pairs, values)
    unallocated["residents"] = float(left["residents"])
    by_origin = by_origin.join(keys[["cell", "area_code"]], on="fragment")

    frag = keys.copy()
    frag["residents"] = (
        by_origin.groupby("fragment")["residents"].sum().reindex(frag.index, fill_value=0.0)
    )
    if "households" in sources and sources["households"].notna().any():
        hh = pd.DataFrame(
            {
                "source": np.arange(len(sources)),
                "households": sources["households"].fillna(0).to_numpy(float),
            }
        )
        hh_alloc, hh_left = allocate_to_fragments(pairs, hh)
        frag["households"] = hh_alloc.set_index("fragment")["households"].reindex(
            frag.index, fill_value=0.0
        )
        unallocated["households"] = float(hh_left["households"])
    else:
        frag["households"] = np.nan

    if data.schemes is not None:
        schemes_proj = data.schemes.to_crs(crs)
        geoms = schemes_proj.geometry.values
        is_point = np.isin(shapely.get_type_id(geoms), [0, 4])
        geoms = np.where(is_point, shapely.buffer(geoms, config.schemes.point_radius_m), geoms)
        s_pairs = overlay_weights(gpd.GeoSeries(geoms, crs=crs), fragments)
        sv = pd.DataFrame(
            {
                "source": np.arange(len(geoms)),
                "watch_households": data.schemes["households"].to_numpy(float),
                "watch_scheme_members": data.schemes["members"].fillna(0).to_numpy(float),
            }
        )
        s_alloc, s_left = allocate_to_fragments(s_pairs, sv)
        s_alloc = s_alloc.set_index("fragment")
        for col in ("watch_households", "watch_scheme_members"):
            frag[col] = s_alloc[col].reindex(frag.index, fill_value=0.0)
            unallocated[col] = float(s_left[col])
    else:
        frag["watch_households"] = np.nan
        frag["watch_scheme_members"] = np.nan

    on_step("points to grid")
    cells = frag.copy()
    s = data.signups.table
    live = s[s["status"] != "deleted"].assign(
        known=lambda d: d["origin"].notna(),
        watch=lambda d: d["watch_role"].isin(["member", "coordinator", "deputy"]),
    )
    sign_counts = _key_counts(
        live, resolution=res,
        columns={"registered": ("known", "size"), "registered_known": ("known", "sum"), "watch_members": ("watch", "sum")},
    )  # fmt: skip
    parts = [sign_counts]
    if data.crimes is not None:
        c = data.crimes.assign(crime=lambda d: ~d["is_asb"])
        parts.append(
            _key_counts(
                c,
                resolution=res,
                columns={
                    "crimes": ("crime", "sum"),
                    "sac_crimes": ("is_sac", "sum"),
                    "asb": ("is_asb", "sum"),
                },
            )
        )
    if data.ratings is not None:
        parts.append(
            _key_counts(
                data.ratings,
                resolution=res,
                columns={"ratings": ("rating", "size"), "rating_sum": ("rating", "sum")},
            )
        )
    for part in parts:
        cells = cells.merge(part, on=["cell", "area_code"], how="outer")
    cells["area_m2"] = cells["area_m2"].fillna(0.0)
    for col in ("residents", "registered", "registered_known", "watch_members"):
        cells[col] = cells[col].fillna(0)
    if data.crimes is not None:
        for col in ("crimes", "sac_crimes", "asb"):
            cells[col] = cells[col].fillna(0).astype("int64")
    else:
        cells[["crimes", "sac_crimes", "asb"]] = np.nan
    if data.ratings is not None:
        cells["ratings"] = cells["ratings"].fillna(0).astype("int64")
        cells["mean_rating"] = cells["rating_sum"] / cells["ratings"].where(cells["ratings"] > 0)
        cells = cells.drop(columns="rating_sum")
    else:
        cells["ratings"] = 0
        cells["mean_rating"] = np.nan
    if data.small_areas is None or pop.keyed_by == "areas":
        cells["households"] = cells["households"].astype(float)
    for col in ("registered", "registered_known", "watch_members"):
        cells[col] = cells[col].astype("int64")
    cells = cells.sort_values(["cell", "area_code"], kind="stable").reset_index(drop=True)
    extra = [c for c in cells.columns if c not in CELLS_COLUMNS]
    cells = cells[[*CELLS_COLUMNS, *extra]]

    reg = (
        live.dropna(subset=["origin"])
        .assign(
            cell=lambda d: points_to_cells(
                d["latitude"].to_numpy(), d["longitude"].to_numpy(), resolution=res
            )
        )
        .groupby(["cell", "area_code", "origin"], sort=True)
        .size()
        .rename("registered")
        .reset_index()
    )
    cell_origins = (
        by_origin[["cell", "area_code", "origin", "residents"]]
        .merge(reg, on=["cell", "area_code", "origin"], how="outer")
        .fillna({"residents": 0.0, "registered": 0})
        .astype({"registered": "int64"})
        .sort_values(["cell", "area_code", "origin"], kind="stable")
        .reset_index(drop=True)
    )
    return Grid(cells, cell_origins, unallocated, crs.srs)


@dataclass(frozen=True)
class RunResult:
    """Where a run wrote its outputs, and its manifest."""

    out_dir: Path
    manifest: Mapping[str, Any]


def _manifest_base(config: Config, data: Ingested) -> dict[str, Any]:
    return {
        "engine": "targeting",
        "engine_version": __version__,
        "config_path": str(config.path),
        "config": config.to_dict(),
        "as_of": data.as_of.isoformat(),
        "as_of_source": "config" if config.run.as_of else "latest joined date",
        "protective_marking": config.output.protective_marking,
        "inputs": {s.name: s.to_manifest() for s in data.summaries},
        "origins": {
            "population_origins": list(data.population.origins),
            "signup_labels_mapped": dict(sorted(data.origins.to_population.items())),
            "unmapped_signup_origins": dict(data.origins.unmapped),
            "not_found_or_empty": data.origins.not_found,
            "default_map_census_scheme": data.origins.census_scheme,
        },
        "warnings": data.warnings(),
    }


def _area_table(data: Ingested, cells: pd.DataFrame) -> pd.DataFrame:
    sums = cells.groupby("area_code").agg(
        residents=("residents", "sum"),
        registered=("registered", "sum"),
        registered_known=("registered_known", "sum"),
        households=("households", "sum"),
        watch_households=("watch_households", "sum"),
        crimes=("crimes", "sum"),
        sac_crimes=("sac_crimes", "sum"),
        asb=("asb", "sum"),
        fragments=("cell", "size"),
    )
    areas = pd.DataFrame(data.areas.drop(columns="geometry"))
    areas["geometry_wkt"] = shapely.to_wkt(data.areas.geometry.values, rounding_precision=6)
    return areas.merge(sums, left_on="area_code", right_index=True, how="left")


def run(config: Config | Path | str, *, on_step: StepCallback = _noop) -> RunResult:
    """The whole batch run: ingest, grid, store; outputs replace the config's output folder at the end."""
    cfg = config if isinstance(config, Config) else load_config(config)
    data = ingest_inputs(cfg, on_step=on_step)
    grid = build_grid(data, cfg, on_step=on_step)
    on_step("write outputs")
    manifest = _manifest_base(cfg, data)
    manifest["unallocated_residents"] = grid.unallocated.get("residents", 0.0)
    manifest["unallocated"] = dict(grid.unallocated)
    manifest["grid"] = {
        "resolution": cfg.grid.resolution,
        "cells": int(grid.cells["cell"].nunique()),
        "fragments": len(grid.cells),
        "equal_area_crs": grid.crs,
        "residents_on_grid": float(grid.cells["residents"].sum()),
    }
    rejects = {s.name: s.rejects for s in data.summaries}
    with atomic_output_dir(cfg.output.dir) as tmp:
        grid.cells[list(CELLS_COLUMNS)].to_parquet(tmp / "cells.parquet", index=False)
        rejects_summary = pd.DataFrame(
            [(s.name, r, n) for s in data.summaries for r, n in s.reasons().items()],
            columns=["input", "reason", "rows"],
        )
        write_store(
            tmp / STORE_NAME,
            {
                "cells": grid.cells,
                "cell_origins": grid.cell_origins,
                "areas": _area_table(data, grid.cells),
                "rejects_summary": rejects_summary,
            },
        )
        write_rejects(tmp, rejects)
        write_manifest(tmp, manifest)
        fsync_tree(tmp)
    return RunResult(cfg.output.dir.resolve(), manifest)


def validate(
    config: Config | Path | str, *, out_dir: Path | None = None, on_step: StepCallback = _noop
) -> RunResult:
    """Read and check every input; write the rejects and `validation.json`, compute nothing else.

    The report goes to `<output dir>/validation` unless `out_dir` is given, so a previous run's
    outputs are left alone.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    data = ingest_inputs(cfg, on_step=on_step)
    target = out_dir or cfg.output.dir / "validation"
    report = _manifest_base(cfg, data)
    with atomic_output_dir(target) as tmp:
        write_rejects(tmp, {s.name: s.rejects for s in data.summaries})
        (tmp / "validation.json").write_text(
            json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8"
        )
        (tmp / "validation.md").write_text(inputs_markdown(report), encoding="utf-8")
    return RunResult(target.resolve(), report)


def demo_config_path(out_dir: Path) -> Path:
    """Write the demo inputs (deterministic) into `out_dir` and return their config."""
    from targeting.demo import write_demo_inputs

    return write_demo_inputs(out_dir)


def run_demo(out_dir: Path, *, on_step: StepCallback = _noop) -> RunResult:
    """The whole run on the embedded demo city; inputs in `out_dir`, outputs in `out_dir/output`."""
    on_step("demo data")
    return run(demo_config_path(out_dir), on_step=on_step)
