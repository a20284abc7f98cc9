"""Checks a run makes as it reads its inputs, before any work: the grid's resolution against the
areas, and how many sign-up origins could not be mapped."""

from __future__ import annotations

import os

import geopandas as gpd

from targeting.config import Config
from targeting.disclosure import withhold_small_counts
from targeting.errors import ConfigError, InputError, Problem
from targeting.grid import GridSize, grid_size
from targeting.ingest.population import Population
from targeting.origins import OriginMapping

# memory a run takes, a fixed part and a part per estimated cell (fragment): the force-scale
# synthetic run peaked at 0.87, 1.18 and 2.96 GB with 10k, 66k and 446k fragments (resolutions 9
# to 11, about 5 KB a fragment), the national-density size sweep at 12 KB a cell; the larger is
# kept so that a refused grid is one that would not have fitted
BASE_BYTES = 0.8e9
BYTES_PER_CELL = 12e3


def machine_memory_bytes() -> float:
    """The machine's physical memory."""
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_grid_size(config: Config, areas: gpd.GeoDataFrame) -> GridSize:
    """Refuse a grid resolution that cannot work over these areas, before any work: cells
    larger than the median area (no hotspot could be told from its area), or more cells or
    memory than `[grid] max_cells` and the machine allow. The message names the resolution that
    fits."""
    resolution = config.grid.resolution
    size = grid_size(areas, resolution=resolution)
    limit = machine_memory_bytes()

    def fits(s: GridSize) -> bool:
        return s.cells <= config.grid.max_cells and BASE_BYTES + s.cells * BYTES_PER_CELL <= limit

    where = f"{config.path} key 'grid.resolution'"
    if size.cell_m2 > size.median_area_m2:
        finest = min(15, resolution + 1)
        while finest < 15 and grid_size(areas, resolution=finest).cell_m2 > size.median_area_m2:
            finest += 1
        raise ConfigError(config.path, [Problem(
            where,
            f"resolution = {resolution} makes cells of {size.cell_m2 / 1e6:,.1f} km2 on average, "
            f"larger than the median area ({size.median_area_m2 / 1e6:,.2f} km2): most areas "
            "would be one or two cells, and no hotspot could be told from its area",
            f"use resolution {finest} or finer; 9 (cells of about 0.1 km2, a few streets) suits "
            "door-knocking")])  # fmt: skip
    if not fits(size):
        coarser = resolution - 1
        while coarser > 0 and not fits(grid_size(areas, resolution=coarser)):
            coarser -= 1
        suggestion = grid_size(areas, resolution=coarser)
        raise ConfigError(config.path, [Problem(
            where,
            f"resolution = {resolution} over these areas ({size.total_m2 / 1e6:,.0f} km2) makes "
            f"about {size.cells:,} cells, needing about "
            f"{(BASE_BYTES + size.cells * BYTES_PER_CELL) / 1e9:,.0f} GB of memory (this "
            f"machine has {limit / 1e9:,.0f} GB; [grid] max_cells is {config.grid.max_cells:,})",
            f"use resolution {coarser} (about {suggestion.cells:,} cells) or coarser; 9 (cells "
            "of about 0.1 km2, a few streets) suits door-knocking")])  # fmt: skip
    return size


def check_unmapped(config: Config, mapping: OriginMapping, population: Population) -> None:
    """Stop when more than `[origins] max_unmapped` of the sign-ups with a known origin have a
    label that maps to no population category: the representation table would rest on a
    fraction of the data and flag the wrong origins."""
    share = mapping.unmapped_share
    if share <= config.origins.max_unmapped:
        return
    threshold = config.privacy.suppression_threshold
    unmapped = [m for m in mapping.labels if m.unmapped]
    shown = withhold_small_counts({m.label: m.signups for m in unmapped[:8]}, threshold=threshold)
    listed = "; ".join(
        f"'{m.label}' ({shown[m.label]}): {m.how.removeprefix('unmapped: ')}" for m in unmapped[:8]
    )
    more = f" and {len(unmapped) - 8} more" if len(unmapped) > 8 else ""
    example = unmapped[0].label
    raise InputError("signups", config.inputs.signups, [Problem(
        f"{config.inputs.signups} column 'origin'",
        f"{share:.1%} of the sign-ups with a known origin have a label that maps to no "
        f"population category ([origins] max_unmapped is {config.origins.max_unmapped:.0%}), so "
        f"the representation table would rest on the rest; labels: {listed}{more}",
        "map each label to one of the population's categories in a CSV named by [origins] map, "
        f"columns origin,population_origin (a line such as '{example},<category>'); the "
        f"categories are: {', '.join(population.origins)}; or raise [origins] max_unmapped")])  # fmt: skip
