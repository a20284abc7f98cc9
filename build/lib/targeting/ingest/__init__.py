"""Validated ingest of every input in the contract.

Each `read_*` function returns the usable rows in canonical columns and an `InputSummary` that
holds the rows it could not use (as read, with a `reason`), so nothing is dropped silently. A file
that cannot be used at all raises one `InputError` listing every problem found in it.
"""

from targeting.ingest.boundaries import check_raster, read_areas, read_schemes, read_small_areas
from targeting.ingest.common import ASB, STATUSES, WATCH_ROLES, InputSummary
from targeting.ingest.points import (
    Signups,
    normalise_postcode,
    read_crimes,
    read_postcodes,
    read_ratings,
    read_signups,
    read_visited,
)
from targeting.ingest.population import Population, read_population

__all__ = [
    "ASB",
    "STATUSES",
    "WATCH_ROLES",
    "InputSummary",
    "Population",
    "Signups",
    "check_raster",
    "normalise_postcode",
    "read_areas",
    "read_crimes",
    "read_population",
    "read_postcodes",
    "read_ratings",
    "read_schemes",
    "read_signups",
    "read_small_areas",
    "read_visited",
]
