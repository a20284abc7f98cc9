"""The batch runs the CLI calls: validate the inputs, or run the whole engine into an output folder.

Each public function takes a config (or its path) and returns a result object; progress is
reported through an optional `on_step` callback so the library never prints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from targeting import __version__
from targeting.background import Pending, in_background
from targeting.config import Config, load_config
from targeting.disclosure import protect_breakdown, withhold_small_counts
from targeting.emerging import find_emerging
from targeting.errors import OutputError, TargetingError
from targeting.grid import (
    Grid,
    GridShapes,
    build_grid,
    grid_fragments,
    points_to_areas,
    weigh_small_areas,
)
from targeting.history import Added, add_run
from targeting.ingest import InputSummary
from targeting.ingest.checks import check_unmapped
from targeting.ingest.inputs import (
    INGEST_STEPS,
    Ingested,
    StepCallback,
    ingest_inputs,
    no_progress,
)
from targeting.layers import Read
from targeting.origins import label_table
from targeting.outputs import BeforePlan, Results, write_before_plan, write_outputs
from targeting.report import (
    build_headline,
    build_sections,
    segment_section,
)
from targeting.representation import (
    Representation,
    grid_to_representation,
    map_cells,
)
from targeting.scoring import DEPRIVATION
from targeting.segments import (
    points_to_segments,
    segment_portraits,
    segment_representation,
)
from targeting.store import (
    PreviousRun,
    atomic_output_dir,
    inputs_markdown,
    json_text,
    read_previous_run,
    write_rejects,
)
from targeting.streets import streets_near
from targeting.tasking import Plan, plan_week

if TYPE_CHECKING:
    pass  # the maps package loads folium

RUN_STEPS = (
    *INGEST_STEPS, "grid", "representation", "targeting", "report", "write outputs", "map",
)  # fmt: skip


def grid_inputs(
    data: Ingested,
    config: Config,
    *,
    shapes: GridShapes | None = None,
    on_step: StepCallback = no_progress,
    parallel: bool = False,
) -> Grid:
    """Every validated input's counts on the cell x area fragment grid (on `shapes` made ahead;
    with `parallel`, partly in a child process)."""
    on_step("grid")
    return build_grid(data, config=config, shapes=shapes, parallel=parallel)


@dataclass(frozen=True)
class RunResult:
    """Where a run wrote its outputs, and its manifest."""

    out_dir: Path
    manifest: Mapping[str, Any]
    history: tuple[Added, ...] = ()  # what adding the run to `[history] store` did


def _input_manifest(summary: InputSummary, *, threshold: int) -> dict[str, Any]:
    """An input's manifest entry; sign-up status and role counts protected against the total."""
    entry = summary.to_manifest()
    for key in ("status_counts", "watch_role_counts"):
        if key in entry:
            entry[key] = protect_breakdown(entry[key], total=summary.rows_used, threshold=threshold)
    return entry


def _manifest_base(config: Config, data: Ingested, *, labels: pd.DataFrame) -> dict[str, Any]:
    """The manifest's account of the config and the inputs; `labels` is `label_table` of the
    sign-up origins."""
    threshold = config.privacy.suppression_threshold
    return {
        "engine": "targeting",
        "engine_version": __version__,
        "config_path": str(config.path),
        "config": config.to_dict(),
        "as_of": data.as_of.isoformat(),
        "as_of_source": "config" if config.run.as_of else "latest joined date",
        "protective_marking": config.output.protective_marking,
        "inputs": {s.name: _input_manifest(s, threshold=threshold) for s in data.summaries},
        "origins": {
            "population_origins": list(data.population.origins),
            "population_columns": data.population.columns,
            "labels": labels.to_dict(orient="records"),
            "unmapped_signup_origins": withhold_small_counts(
                data.origins.unmapped, threshold=threshold
            ),
            "unmapped_share": round(data.origins.unmapped_share, 6),
            "not_found_or_empty": withhold_small_counts(
                {"n": data.origins.not_found}, threshold=threshold
            )["n"],
        },
        "warnings": data.warnings(threshold=threshold),
    }


def _area_table(areas: gpd.GeoDataFrame, grid: Grid) -> pd.DataFrame:
    """Areas with their attributes, outline (WKT) and the sums of their fragments' counts.

    A count whose input was not given stays null rather than becoming 0.
    """
    cells = grid.cells
    sums = cells.groupby("area_code")[list(grid.summed)].sum(min_count=1)
    sums["fragments"] = cells.groupby("area_code").size()
    table = pd.DataFrame(areas.drop(columns="geometry"))
    table["geometry_wkt"] = shapely.to_wkt(areas.geometry.values, rounding_precision=6)
    return table.merge(sums, left_on="area_code", right_index=True, how="left")


def _schemes_with_areas(
    schemes: gpd.GeoDataFrame | None, areas: gpd.GeoDataFrame
) -> pd.DataFrame | None:
    """Each scheme's area: the area holding a point on its surface (for per-area counts)."""
    if schemes is None:
        return None
    points = schemes.geometry.representative_point()
    index = points_to_areas(points.x.to_numpy(), points.y.to_numpy(), areas)
    codes = pd.Series(areas["area_code"].to_numpy()[np.maximum(index, 0)]).where(index >= 0)
    return pd.DataFrame(schemes.drop(columns="geometry")).assign(area_code=codes.to_numpy())


def segment_table(data: Ingested, grid: Grid, config: Config) -> pd.DataFrame | None:
    """Who is missing by segment (`segment_representation.csv`), or None without segments.

    The base is the segments' households placed on the grid (inside the areas), or their
    residents (each cell's residents shared out by its segments' households); sign-ups (not
    deleted) take the segment of the small area or nearest postcode they fall in.
    """
    if data.segments is None or grid.cell_segments is None:
        return None
    live = data.signups.table[data.signups.table["status"] != "deleted"]
    found = points_to_segments(
        live["latitude"].to_numpy(),
        live["longitude"].to_numpy(),
        segments=data.segments.table,
        keyed_by=data.segments.keyed_by,
        small_areas=data.small_areas,
        postcodes=data.postcodes,
    )
    signups = pd.Series(found).value_counts()
    cs = grid.cell_segments
    if config.segments.base == "residents":
        residents = grid.cells.set_index(["cell", "area_code"])["residents"]
        share = cs["households"] / cs.groupby(["cell", "area_code"])["households"].transform("sum")
        weight = (
            share
            * residents.reindex(pd.MultiIndex.from_frame(cs[["cell", "area_code"]])).to_numpy()
        )
        base = weight.groupby(cs["segment"]).sum()
    else:
        base = cs.groupby("segment")["households"].sum()
    table = segment_representation(
        base,
        signups,
        threshold=config.privacy.suppression_threshold,
        base_name=config.segments.base,
    )
    if data.segment_descriptions is not None:
        info = data.segment_descriptions.set_index("segment")[["group", "label"]]
        table = table.join(info, on="segment")
        table.insert(1, "group", table.pop("group"))
        table.insert(2, "label", table.pop("label"))
    return table


def check_output_dir(target: Path, config: Config) -> None:
    """Refuse an output folder that would swallow the config or an input when it is replaced."""
    target = target.resolve()
    inputs = [config.path, *(p for p in vars(config.inputs).values() if isinstance(p, Path))]
    inputs += [Path(g) for g in config.inputs.crimes]
    for path in inputs:
        resolved = path.resolve()
        if resolved == target or target in resolved.parents:
            raise OutputError(
                f"output folder {target} contains {path}; the run replaces the whole folder, "
                "so choose a folder of its own ([output] dir or --out)"
            )


def compute(
    data: Ingested,
    grid: Grid,
    config: Config,
    *,
    previous: PreviousRun | None = None,
    on_step: StepCallback = no_progress,
    parallel: bool = True,
    on_before_plan: Callable[[BeforePlan], None] = lambda _: None,
) -> Results:
    """Representation, emerging communities, segments, the week's plan and the report, from the
    inputs and their grid; `previous` (an earlier run) adds the change since then.

    With `parallel`, the plan is made in a child process on a second core (`in_background`).
    `on_before_plan` gets what needs no plan as soon as it is made, while the plan is made (a
    run starts writing it).
    """
    threshold = config.privacy.suppression_threshold
    on_step("representation")
    areas = pd.DataFrame(data.areas.drop(columns="geometry"))
    rep = grid_to_representation(grid.cell_origins, grid.cells, areas=areas, threshold=threshold)
    on_step("targeting")
    # the plan needs only the representation, and the rest up to the report's sections needs
    # nothing of the plan: the plan (with the map's streets around its visits) is made on the
    # second core while this process does the rest
    with in_background(
        lambda: _plan_and_streets(data, grid, config, areas=areas, rep=rep),
        name="the week's plan", fork=parallel,
    ) as planning:  # fmt: skip
        map_rep = map_cells(
            grid.cell_origins, resolution=config.representation.map_resolution,
            threshold=threshold,
        )  # fmt: skip
        emerging = (
            find_emerging(
                grid.cell_origins,
                grid.previous,
                areas=areas,
                cell_resolution=config.representation.map_resolution,
                min_growth=config.emerging.min_growth,
                min_increase=config.emerging.min_increase,
            )
            if grid.previous is not None
            else None
        )
        before_plan = BeforePlan(_area_table(data.areas, grid), rep, map_rep, emerging)
        on_before_plan(before_plan)
        segments = segment_table(data, grid, config)
        on_step("report")
        labels = label_table(data.origins, threshold=threshold)
        sections = build_sections(
            representation=rep,
            signups=data.signups.table,
            areas=areas,
            cells=grid.cells,
            schemes=_schemes_with_areas(data.schemes, data.areas),
            emerging=emerging,
            labels=labels,
            as_of=data.as_of,
            base=data.population.base,
            threshold=threshold,
        )
        manifest = _manifest_base(config, data, labels=labels)
        plan, streets = planning.result()
    portraits = (
        segment_portraits(
            grid.cell_segments, grid.cell_origins,
            area_deprivation=plan.ranked_areas.set_index("area_code")[DEPRIVATION],
        )
        if grid.cell_segments is not None
        else None
    )  # fmt: skip
    if segments is not None:
        if portraits is not None:
            segments = segments.assign(portrait=segments["segment"].map(portraits))
        sections = [*sections, segment_section(segments, base=config.segments.base)]
    headline = build_headline(representation=rep.table, ranked_areas=plan.ranked_areas,
                              previous=previous, base=data.population.base,
                              threshold=threshold)  # fmt: skip
    manifest |= _manifest_results(config, data, grid, rep, plan)
    return Results(before_plan, areas, segments, plan, sections, headline, portraits, streets,
                   manifest)  # fmt: skip


def _plan_and_streets(
    data: Ingested, grid: Grid, config: Config, *, areas: pd.DataFrame, rep: Representation
) -> tuple[Plan, gpd.GeoDataFrame | None]:
    """The week's plan, and the streets around its visits for the map (None without streets)."""
    labels_of_segments = (
        data.segment_descriptions.set_index("segment")["label"]
        if data.segment_descriptions is not None
        else None
    )
    plan = plan_week(config=config, grid=grid, areas=areas, area_gaps=rep.areas,
                     representation=rep.table, visited=data.visited, postcodes=data.postcodes,
                     as_of=data.as_of, segment_labels=labels_of_segments)  # fmt: skip
    streets = data.get("streets")
    if streets is None:
        return plan, None
    visits = pd.concat([plan.hotspots, plan.stations])[["latitude", "longitude"]]
    return plan, streets_near(streets, visits, buffer_m=config.map.streets_buffer_m)


def _manifest_results(
    config: Config, data: Ingested, grid: Grid, rep: Representation, plan: Plan
) -> dict[str, Any]:
    """The manifest's account of what the run computed."""
    return {
        "warnings": data.warnings(threshold=config.privacy.suppression_threshold)
        + list(grid.warnings),
        "scoring": {
            "notes": list(plan.notes),
            "areas": len(plan.ranked_areas),
            "hotspots": len(plan.hotspots),
            "stations": len(plan.stations),
            "geofences": len(plan.geofences),
            "plan": {
                "tactics": plan.ranked_areas["tactic"].value_counts().sort_index().to_dict(),
                "officer_hours": float(plan.plan["officer_hours"].sum()),
                "expected_signups": float(plan.plan["expected_signups"].sum()),
                "expected_gain": float(plan.plan["expected_gain"].sum()),
            },
        },
        "unallocated_residents": grid.unallocated.get("residents", 0.0),
        "unallocated": dict(grid.unallocated),
        "grid": {
            "resolution": grid.resolution,
            "cells": int(grid.cells["cell"].nunique()),
            "fragments": len(grid.cells),
            "equal_area_crs": grid.crs,
            "residents_on_grid": float(grid.cells["residents"].sum()),
        },
        "representation": {
            "base": data.population.base,
            "rows": len(rep.table),
            "suppressed_rows": int(rep.table["suppressed"].sum()),
            "map_resolution": config.representation.map_resolution,
        },
    }


class _ShapesAhead:
    """The grid's shapes, made while the inputs are read (they need only the outlines): the
    fragments from the areas' turn, and the small areas' weights over them from the first turn,
    from the small areas' on, at which the fragments are in; with `parallel`, each in a child
    on the second core. Either way from the areas' cells the areas' lookup uses, found here once
    (a forked child cannot find them: `targeting.grid.cells._cells_in`). None with a population
    raster, which weighs the small areas itself."""

    def __init__(self, config: Config, *, children: contextlib.ExitStack, parallel: bool) -> None:
        self._config = config
        self._children = children
        self._parallel = parallel
        self._pending: Pending[GridShapes] | None = None
        self._weighing = False

    def on_read(self, name: str, read: Read) -> None:
        """Start what the layers read so far allow (`ingest_inputs`' `on_read`)."""
        if self._config.inputs.population_raster is not None:
            return
        if name == "areas":
            fragments = partial(
                grid_fragments, read.data["areas"], config=self._config, touching=read.touching
            )
            self._pending = self._start(fragments, name="the grid's fragments")
        elif (
            read.get("small_areas") is not None
            and not self._weighing
            and self._pending is not None
            and self._pending.done()
        ):
            self._weigh(read.data["areas"], read.data["small_areas"])

    def result(self, data: Ingested) -> GridShapes | None:
        """The shapes, once every input is read (the weights started now if not yet)."""
        if self._pending is None:
            return None
        if not self._weighing and data.get("small_areas") is not None:
            self._weigh(data.data["areas"], data.data["small_areas"])
        return self._pending.result()

    def _weigh(self, areas: gpd.GeoDataFrame, small_areas: gpd.GeoDataFrame) -> None:
        assert self._pending is not None
        self._weighing = True
        fragments = self._pending.result()
        weights = partial(weigh_small_areas, fragments, areas, small_areas, config=self._config)
        self._pending = self._start(weights, name="the small areas' weights")

    def _start(self, work: Callable[[], GridShapes], *, name: str) -> Pending[GridShapes]:
        return self._children.enter_context(in_background(work, name=name, fork=self._parallel))


def run(
    config: Config | Path | str,
    *,
    previous: Path | None = None,
    on_step: StepCallback = no_progress,
    parallel: bool = True,
) -> RunResult:
    """The whole batch run: ingest, grid, compute, write; the outputs replace the config's output
    folder at the end, all at once.

    `previous`, an earlier run's output folder, adds the change since then to the tasking pack.
    With `parallel` (on Linux with two or more cores), work that needs nothing of the work beside
    it runs in a child process on a second core; the outputs are the same either way.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    previous_run = read_previous_run(previous)
    with contextlib.ExitStack() as children:  # a child still working when the run stops: stopped
        shaping = _ShapesAhead(cfg, children=children, parallel=parallel)
        reading = ingest_inputs(cfg, on_step=on_step, parallel=parallel, on_read=shaping.on_read)
        children.callback(reading.cancel)
        try:
            check_output_dir(cfg.output.dir, cfg)
            shapes = shaping.result(reading)
            grid = grid_inputs(reading, cfg, shapes=shapes, on_step=on_step, parallel=parallel)
            data = reading.collected()
        except TargetingError:
            reading.collected()  # an input's error comes first, as reading every input would
            raise
    with (
        atomic_output_dir(cfg.output.dir, marker="manifest.json") as tmp,
        ThreadPoolExecutor(max_workers=1) as writer,
    ):
        # the outputs that need no plan are written in a second thread from when they are made,
        # while the plan is made (DuckDB and pyarrow, which write most of them, let go of
        # Python's lock)
        early: list[Future[None]] = []

        def write_early(before_plan: BeforePlan) -> None:
            early.append(writer.submit(write_before_plan, tmp, data, grid, before_plan, config=cfg))

        out = compute(data, grid, cfg, previous=previous_run, on_step=on_step, parallel=parallel,
                      on_before_plan=write_early)  # fmt: skip
        on_step("write outputs")
        write_outputs(tmp, data, grid, out, config=cfg, previous=previous_run,
                      before_plan=early[0], on_step=on_step, parallel=parallel)  # fmt: skip
    added = add_run(cfg.output.dir, store=cfg.history.store) if cfg.history.store else []
    return RunResult(cfg.output.dir.resolve(), out.manifest, tuple(added))


def validate(
    config: Config | Path | str, *, out_dir: Path | None = None, on_step: StepCallback = no_progress
) -> RunResult:
    """Read and check every input; write the rejects and `validation.json`, compute nothing else.

    The report goes to `<output dir>/validation` unless `out_dir` is given, so a previous run's
    outputs are left alone. Sign-up origins a run would stop on (more unmapped than `[origins]
    max_unmapped`) are reported first, with where every label went, and then raised.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    data = ingest_inputs(cfg, on_step=on_step, check_origins=False)
    target = out_dir or cfg.output.dir / "validation"
    check_output_dir(target, cfg)
    labels = label_table(data.origins, threshold=cfg.privacy.suppression_threshold)
    report = _manifest_base(cfg, data, labels=labels)
    with atomic_output_dir(target, marker="validation.json") as tmp:
        write_rejects(tmp, {s.name: s.rejects for s in data.summaries})
        (tmp / "validation.json").write_text(json_text(report), encoding="utf-8")
        (tmp / "validation.md").write_text(inputs_markdown(report), encoding="utf-8")
    check_unmapped(cfg, data.origins, data.population)
    return RunResult(target.resolve(), report)


def demo_config_path(out_dir: Path) -> Path:
    """Write the demo inputs (deterministic) into `out_dir` and return their config."""
    from targeting.demo import write_demo_inputs

    return write_demo_inputs(out_dir)


def run_demo(out_dir: Path, *, on_step: StepCallback = no_progress) -> RunResult:
    """The whole run on the embedded demo city; inputs in `out_dir`, outputs in `out_dir/output`,
    and a history of twelve month-ends in `out_dir/history.duckdb` (the run and eleven dates
    reconstructed from it), which the demo starts afresh each time."""
    from targeting.demo.data import HISTORY_MONTHS

    on_step("demo data")
    config = demo_config_path(out_dir)
    cfg = load_config(config)
    if cfg.history.store is not None:
        cfg.history.store.unlink(missing_ok=True)
    result = run(cfg, on_step=on_step)
    if cfg.history.store is None:
        return result
    added = add_run(result.out_dir, store=cfg.history.store, backfill=HISTORY_MONTHS - 1)
    return replace(result, history=tuple(added))
