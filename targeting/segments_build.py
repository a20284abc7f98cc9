"""`targeting segments build`: the open segmentation of a config's census geography, written as
files a run reads as `inputs.segments` (the same reading as a run, without its grid)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from targeting.config import Config, load_config
from targeting.ingest import read_areas, read_population, read_small_areas
from targeting.ingest.segments import read_census_variables
from targeting.pipeline import check_output_dir
from targeting.segments import Segmentation, build_segments
from targeting.store import atomic_output_dir, write_csv
from targeting.tasking import PERSONS_PER_HOUSEHOLD


def build_open_segments(
    config: Config | Path | str, *, k: int | None = None, out_dir: Path | None = None
) -> tuple[Path, Segmentation]:
    """The open segmentation of the config's small areas (or areas, without small areas), written
    as `segments.csv`, `segment_descriptions.csv`, `segment_profiles.csv` and `segments.json`
    into `out_dir` (default: `segments/` beside the config), ready to use as `inputs.segments`.

    `k` (or `[segments] k`; 0 or None: chosen by the silhouette score) and `[run] seed` make it
    reproducible.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    started = time.perf_counter()
    areas, _ = read_areas(cfg)
    small, _ = read_small_areas(cfg)
    population, _ = read_population(
        cfg,
        area_codes=set(areas["area_code"]),
        small_area_codes=set(small["area_code"]) if small is not None else None,
    )
    units = small if small is not None and population.keyed_by == "small_areas" else areas
    variables = read_census_variables(cfg, small_areas=units, population=population.table)
    residents = population.table.groupby("area_code")["residents"].sum()
    chosen = k if k else (cfg.segments.k or None)
    seg = build_segments(
        variables,
        k=chosen,
        seed=cfg.run.seed,
        k_min=cfg.segments.k_min,
        k_max=cfg.segments.k_max,
        weights=residents,
    )
    households = (
        units.set_index("area_code")["households"].astype(float)
        if "households" in units.columns and units["households"].notna().any()
        else residents / PERSONS_PER_HOUSEHOLD
    )
    table = seg.assignments.assign(
        households=seg.assignments["area_code"].map(households).fillna(0.0).round(1)
    )
    sizes = table.groupby("segment").agg(
        small_areas=("area_code", "size"), households=("households", "sum")
    )
    sizes["residents"] = (
        table.assign(r=table["area_code"].map(residents)).groupby("segment")["r"].sum()
    )
    descriptions = seg.descriptions.join(sizes, on="segment")
    profiles = seg.profiles.merge(seg.descriptions[["segment", "group", "label"]], on="segment")
    target = (out_dir or cfg.path.parent / "segments").resolve()
    check_output_dir(target, cfg)
    with atomic_output_dir(target, marker="segments.json") as tmp:
        write_csv(table, tmp / "segments.csv")
        write_csv(descriptions, tmp / "segment_descriptions.csv")
        write_csv(
            profiles[["segment", "group", "label", "variable", "share", "overall", "index", "z"]],
            tmp / "segment_profiles.csv",
        )
        (tmp / "segments.json").write_text(
            json.dumps(
                {
                    "k": seg.k,
                    "k_chosen_by": "given" if chosen else "silhouette score (highest)",
                    "silhouettes": {str(key): round(v, 4) for key, v in seg.silhouettes.items()},
                    "seed": cfg.run.seed,
                    "units": "small_areas" if units is small else "areas",
                    "variables": list(variables.columns),
                    "seconds": round(time.perf_counter() - started, 2),
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return target, seg
