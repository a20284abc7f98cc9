"""The H3 analysis grid, held as cell x area fragments, and allocation of counts onto it.

H3 cells and areas do not nest, so every count is held per fragment: the part of a cell inside one
area. Area figures are sums of their fragments (exact); cell figures are sums over a cell's
fragments. Census counts are spread from small areas to fragments by the share of each small
area's surface (or raster weight) that lies in the fragment; points go to the area that contains
them and the cell that contains them. Geometry work happens in a Lambert azimuthal equal-area
projection centred on the areas, so surface shares are true shares.
"""

from targeting.grid.build import (
    Grid,
    GridShapes,
    build_grid,
    grid_fragments,
    grid_shapes,
    weigh_small_areas,
)
from targeting.grid.cells import (
    AreaLocator,
    GridSize,
    area_locator,
    areas_to_fragments,
    cells_touching,
    equal_area_crs,
    grid_size,
    points_to_areas,
    points_to_fragments,
)
from targeting.grid.overlay import (
    RasterWeights,
    allocate_to_fragments,
    best_fit_weights,
    centroid_areas,
    home_areas,
    overlay_weights,
    own_area_pairs,
    raster_to_points,
    split_share,
)

__all__ = [
    "AreaLocator",
    "Grid",
    "GridShapes",
    "GridSize",
    "RasterWeights",
    "allocate_to_fragments",
    "area_locator",
    "areas_to_fragments",
    "best_fit_weights",
    "build_grid",
    "cells_touching",
    "centroid_areas",
    "equal_area_crs",
    "grid_fragments",
    "grid_shapes",
    "grid_size",
    "home_areas",
    "overlay_weights",
    "own_area_pairs",
    "points_to_areas",
    "points_to_fragments",
    "raster_to_points",
    "split_share",
    "weigh_small_areas",
]
