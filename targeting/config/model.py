"""The run configuration's sections: frozen, typed, every setting and its default documented
once, here, in the dataclass fields."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from targeting.scoring import DEFAULT_WEIGHTS

DEFAULT_SAC_TYPES = ("Burglary", "Robbery", "Vehicle crime", "Theft from the person")

# Canonical column names per input; `[columns.<input>]` maps these to the names in a file.
CANONICAL_COLUMNS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "areas": ("area_code", "area_name", "parent_code", "parent_name"),
        "small_areas": ("area_code", "households"),
        "population": ("area_code", "origin", "residents", "age_band", "total", "origins"),
        "signups": (
            "user_id",
            "joined",
            "latitude",
            "longitude",
            "easting",
            "northing",
            "postcode",
            "origin",
            "status",
            "watch_role",
        ),
        "crimes": ("crime_id", "month", "longitude", "latitude", "crime_type"),
        "ratings": ("rated_at", "rating", "user_id", "latitude", "longitude"),
        "schemes": ("scheme_id", "scheme_name", "scheme_type", "households", "members"),
        "postcodes": ("postcode", "latitude", "longitude"),
        "visited": ("cell", "visited_on"),
        "segments": ("area_code", "postcode", "segment", "households"),
        "segment_descriptions": ("segment", "group", "label", "description"),
    }
)


@dataclass(frozen=True)
class InputsConfig:
    """Input files, resolved against the config file's folder."""

    areas: Path
    population: Path
    signups: Path
    small_areas: Path | None = None
    crimes: tuple[str, ...] = ()  # glob patterns, absolute after resolution
    ratings: Path | None = None
    schemes: Path | None = None
    postcodes: Path | None = None
    population_raster: Path | None = None
    population_previous: Path | None = None  # an earlier census snapshot, for emerging communities
    visited: Path | None = None  # log of visited hotspot cells (`cell, visited_on`), for cooldown
    segments: Path | None = None  # segment per small area or postcode, with households
    segment_descriptions: Path | None = None  # segment, group, label, description


# date columns whose order (day-first or month-first) or format `[columns.<input>]
# <column>_format` can set, e.g. `[columns.signups] joined_format = "month-first"`
DATE_COLUMNS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"signups": ("joined",), "ratings": ("rated_at",), "visited": ("visited_on",)}
)
DATE_ORDERS = ("day-first", "month-first")


@dataclass(frozen=True)
class OriginsConfig:
    map: Path | None = None  # CSV origin,population_origin; default: the shipped crosswalk
    # a run stops when more than this share of sign-ups with a known origin have a label that
    # maps to no population category, rather than publishing rates built on the rest
    max_unmapped: float = 0.05


@dataclass(frozen=True)
class AreasConfig:
    # areas (and small areas) whose code repeats with different outlines are merged into one
    # (multi)polygon instead of stopping the run
    merge_duplicates: bool = False


SMALL_AREA_FITS = ("split", "best_fit", "centroid")


@dataclass(frozen=True)
class GridConfig:
    resolution: int = 9  # H3 resolution; 9 is about 0.1 km2 per cell, a few streets
    # how a small area cut by an area boundary is shared: "split" by surface (or raster) shares,
    # or "best_fit": wholly to the area holding its largest share, as ONS best-fit lookups do
    # for census areas built to nest in the areas but drawn with different generalisation
    small_area_fit: str = "split"
    # a grid estimated to hold more cells than this (or more memory than the machine has) is
    # refused before any work, naming the resolution that fits
    max_cells: int = 2_000_000


@dataclass(frozen=True)
class RunConfig:
    as_of: dt.date | None = None  # the date every date rule uses; default: the latest `joined`
    seed: int = 2018  # for every random choice a later stage makes
    # the force's local time: a timestamp with a zone (2018-10-01T00:30:00+01:00) is dated by
    # the local clock, so a sign-up at 00:30 BST on 1 October counts in October
    timezone: str = "Europe/London"


@dataclass(frozen=True)
class ScoringConfig:
    weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_WEIGHTS)
    low_rating: int = 2  # ratings (1-6) at or below this count as low
    rating_prior: float = 20.0  # ratings' weight of the force's low share, shrinking few ratings


TACTICS = ("door", "street", "social", "control", "station")
# Sign-ups per hotspot (per station visit for `station`) in one visit week. Only the ratio has a
# source: door-knocking gave about nine times control in the 2,124-hotspot test, whose 2,074
# sign-ups make about one per hotspot across its four arms. The absolute values are assumptions,
# to be replaced by a force's own trial results.
DEFAULT_YIELDS: Mapping[str, float] = MappingProxyType(
    {"door": 2.7, "street": 0.9, "social": 0.6, "control": 0.3, "station": 20.0}
)


@dataclass(frozen=True)
class TacticsConfig:
    yields: Mapping[str, float] = field(default_factory=lambda: DEFAULT_YIELDS)


@dataclass(frozen=True)
class HotspotsConfig:
    per_week: int = 120  # hotspots on the week's list, across the force (the test used about 120)
    max_per_area: int = 12  # so the list is spread over areas rather than all in one
    min_households: float = 40.0  # a hotspot cell must hold this many households (or residents/2.4)
    min_postcodes: int = 1  # ...and, when postcodes are given, this many postcode centroids
    cooldown_days: int = 28  # cells visited this recently (the visited log) stay off the list


@dataclass(frozen=True)
class StationsConfig:
    count: int = 5  # mobile-station sites to choose, besides any fixed ones
    radius_m: float = 800.0  # walking radius a site covers
    fixed: tuple[tuple[float, float], ...] = ()  # existing sites as [latitude, longitude] pairs


@dataclass(frozen=True)
class GeofencesConfig:
    max_vertices: int = 100  # devices cap a geofence's vertices
    max_extra_area: float = 0.2  # extra area a simplified geofence may add before it is split
    circles: int = 20  # circular geofences written (iOS monitors at most 20 regions per app)
    min_radius_m: float = 100.0  # smallest circle platforms monitor reliably


@dataclass(frozen=True)
class OutputConfig:
    dir: Path = Path("out")
    protective_marking: str = "OFFICIAL-SENSITIVE"  # printed on every shared output


@dataclass(frozen=True)
class PopulationConfig:
    min_age: int = 18  # only adults sign up; used when the population has age bands
    total_tolerance: float = 0.01  # parts above the total by more than this fraction: reject


@dataclass(frozen=True)
class PrivacyConfig:
    suppression_threshold: int = 10  # sign-up-derived counts 1..threshold-1 are withheld


@dataclass(frozen=True)
class CrimesConfig:
    sac_types: tuple[str, ...] = DEFAULT_SAC_TYPES  # serious acquisitive crime types


@dataclass(frozen=True)
class SchemesConfig:
    point_radius_m: float = 200.0  # a Watch scheme given as a point covers this radius


@dataclass(frozen=True)
class RepresentationConfig:
    map_resolution: int = (
        8  # H3 resolution of the map's per-origin layers (coarser: fewer withheld)
    )


@dataclass(frozen=True)
class EmergingConfig:
    min_growth: float = 0.5  # an origin grew by more than this fraction of its earlier count...
    min_increase: float = 100.0  # ...and by more than this many residents


@dataclass(frozen=True)
class CensusTable:
    """A numeric census table for the open segmentation, keyed by the small areas or by the
    polygons of `areas` (e.g. LSOAs), which the small areas then take their values from."""

    table: Path
    areas: Path | None = None


@dataclass(frozen=True)
class SegmentsConfig:
    k: int = 0  # segments in the open segmentation; 0: chosen by silhouette in k_min..k_max
    k_min: int = 4
    k_max: int = 10
    census: tuple[CensusTable, ...] = ()  # census tables besides the population's origin shares
    base: str = "households"  # the base of the profile index: households or residents
    # expected sign-ups per hotspot by segment and tactic; a segment or tactic not listed takes
    # [tactics] yields
    yields: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Config:
    """Everything a run needs to know, read once from TOML and passed explicitly."""

    path: Path
    inputs: InputsConfig
    origins: OriginsConfig = OriginsConfig()
    areas: AreasConfig = AreasConfig()
    grid: GridConfig = GridConfig()
    run: RunConfig = RunConfig()
    scoring: ScoringConfig = ScoringConfig()
    output: OutputConfig = OutputConfig()
    population: PopulationConfig = PopulationConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    crimes: CrimesConfig = CrimesConfig()
    schemes: SchemesConfig = SchemesConfig()
    representation: RepresentationConfig = RepresentationConfig()
    emerging: EmergingConfig = EmergingConfig()
    tactics: TacticsConfig = TacticsConfig()
    hotspots: HotspotsConfig = HotspotsConfig()
    stations: StationsConfig = StationsConfig()
    geofences: GeofencesConfig = GeofencesConfig()
    segments: SegmentsConfig = SegmentsConfig()
    columns: Mapping[str, Mapping[str, str | tuple[str, ...]]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def columns_for(self, input_name: str) -> Mapping[str, str | tuple[str, ...]]:
        """The `[columns.<input>]` mapping (canonical name -> file's name), empty if none."""
        return self.columns.get(input_name, MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy, for the manifest."""
        return _jsonable(self)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path | dt.date):
        return str(value)
    return value
