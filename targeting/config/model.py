"""The run configuration's sections: frozen, typed, every setting, its default and its bounds
declared once, here, in the dataclass fields (`setting` puts the bounds and the words of the
error into the field's metadata, which the loader reads). The `[inputs]` keys and the
`[columns.<input>]` keys come from the input layers (`targeting.layers`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from targeting.scoring import DEFAULT_WEIGHTS

DEFAULT_SAC_TYPES = ("Burglary", "Robbery", "Vehicle crime", "Theft from the person")
# Crimes that happen where many people pass (a street engagement's footfall proxy): thefts from
# people, shops and bicycles and robbery are recorded where crowds are (high streets, stations,
# markets), unlike burglary or vehicle crime, which follow homes and car parks.
DEFAULT_PUBLIC_PLACE_TYPES = (
    "Theft from the person", "Shoplifting", "Robbery", "Bicycle theft", "Other theft",
)  # fmt: skip
DATE_ORDERS = ("day-first", "month-first")  # what a `<column>_format` may say, or a strptime
SMALL_AREA_FITS = ("split", "best_fit", "centroid")
TACTICS = ("door", "street", "social", "control", "station")
# Sign-ups per hotspot (per station visit for `station`) in one visit week. Only the ratio has a
# source: door-knocking gave about nine times control in the 2,124-hotspot test, whose 2,074
# sign-ups make about one per hotspot across its four arms. The absolute values are assumptions,
# to be replaced by a force's own trial results.
DEFAULT_YIELDS: Mapping[str, float] = MappingProxyType(
    {"door": 2.7, "street": 0.9, "social": 0.6, "control": 0.3, "station": 20.0}
)
# Officer hours per unit: a hotspot or street session is two officers for two hours, a station day
# two officers for eight, a geofenced post half an hour of an engagement officer's time.
# Assumptions, like the yields: a force sets its own.
DEFAULT_HOURS: Mapping[str, float] = MappingProxyType(
    {"door": 4.0, "street": 4.0, "social": 0.5, "control": 0.0, "station": 16.0}
)


def setting(
    default: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    choices: Sequence[str] | None = None,
    check: Callable[[Any], bool] | None = None,
    problem: str = "",
    fix: str = "",
) -> Any:
    """A config setting: its default and what it must be. `problem` and `fix` are the error's
    words when it is not (`{value}` is what was given); `check` is any other test it must pass."""
    metadata = {
        "minimum": minimum, "maximum": maximum, "above": above, "below": below,
        "choices": tuple(choices) if choices else None, "check": check,
        "problem": problem, "fix": fix,
    }  # fmt: skip
    if isinstance(default, Mapping):
        return field(default_factory=lambda: default, metadata=metadata)
    return field(default=default, metadata=metadata)


class InputFiles(Mapping[str, Any]):
    """The config's `[inputs]`: each input layer's file, or glob patterns for a layer that takes
    a list, resolved against the config's folder. Every layer of the registry is a key (None, or
    an empty tuple, when not given), so `config.inputs.ratings` reads like an attribute."""

    def __init__(self, files: Mapping[str, Any], *, names: Sequence[str]) -> None:
        self._files = MappingProxyType({name: files.get(name) for name in names})

    def __getitem__(self, name: str) -> Any:
        return self._files[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._files[name]
        except KeyError:
            raise AttributeError(f"no input layer {name!r}") from None


@dataclass(frozen=True)
class OriginsConfig:
    map: Path | None = None  # CSV origin,population_origin; default: the shipped crosswalk
    # a run stops when more than this share of sign-ups with a known origin have a label that
    # maps to no population category, rather than publishing rates built on the rest
    max_unmapped: float = setting(
        0.05, minimum=0, maximum=1, problem="must be a share from 0 to 1, got {value}",
        fix="e.g. 0.05 (stop when over 5% of sign-ups with an origin cannot be mapped)",
    )  # fmt: skip


@dataclass(frozen=True)
class AreasConfig:
    # areas (and small areas) whose code repeats with different outlines are merged into one
    # (multi)polygon instead of stopping the run
    merge_duplicates: bool = False


@dataclass(frozen=True)
class GridConfig:
    # H3 resolution; 9 is about 0.1 km2 per cell, a few streets
    resolution: int = setting(
        9, minimum=0, maximum=15, problem="must be an H3 resolution 0-15, got {value}",
        fix="use 8, 9 or 10",
    )  # fmt: skip
    # how a small area cut by an area boundary is shared: "split" by surface (or raster) shares;
    # "best_fit": wholly to the area holding its largest share; "centroid": wholly to the area
    # holding a point on its surface, as ONS best-fit lookups place census areas
    small_area_fit: str = setting(
        "split", choices=SMALL_AREA_FITS,
        fix='use "split" (surface shares), or, for small areas that nest in the areas, '
        '"best_fit" (largest share) or "centroid" (a point on the surface)',
    )  # fmt: skip
    # a grid estimated to hold more cells than this (or more memory than the machine has) is
    # refused before any work, naming the resolution that fits
    max_cells: int = setting(
        2_000_000, minimum=1, problem="must be positive, got {value}", fix="e.g. 2000000"
    )


def _is_time_zone(name: str) -> bool:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class RunConfig:
    as_of: dt.date | None = None  # the date every date rule uses; default: the latest `joined`
    seed: int = 2018  # for every random choice a later stage makes
    # the force's local time: a timestamp with a zone (2018-10-01T00:30:00+01:00) is dated by
    # the local clock, so a sign-up at 00:30 BST on 1 October counts in October
    timezone: str = setting(
        "Europe/London", check=_is_time_zone, problem="is not a time zone: {value!r}",
        fix='use an IANA name such as "Europe/London"',
    )  # fmt: skip


@dataclass(frozen=True)
class ScoringConfig:
    # the score components' weights (targeting.scoring.COMPONENTS); 0 switches one off
    weights: Mapping[str, float] = setting(DEFAULT_WEIGHTS)
    # ratings (1-6) at or below this count as low
    low_rating: int = setting(2, minimum=1, maximum=5, problem="must be 1 to 5, got {value}",
                              fix="e.g. 2")  # fmt: skip
    # ratings' weight of the force's low share, shrinking few ratings
    rating_prior: float = setting(20.0, minimum=0, problem="must not be negative", fix="e.g. 20")


POSITIVE_HOURS = "must be positive, got {value}"


@dataclass(frozen=True)
class TacticsConfig:
    yields: Mapping[str, float] = setting(DEFAULT_YIELDS)
    # officer hours per hotspot, street session, station day or social post
    hours: Mapping[str, float] = setting(DEFAULT_HOURS)


@dataclass(frozen=True)
class PlanConfig:
    # officer hours per NPU (parent area) per week; when not given, the week is [hotspots]
    # per_week door and street hotspots force-wide
    officer_hours: float | None = setting(None, above=0, problem=POSITIVE_HOURS, fix="e.g. 200")
    # geofenced social posts for the week, force-wide
    social_posts: int = setting(0, minimum=0, problem="must not be negative, got {value}",
                                fix="default 0")  # fmt: skip


POSITIVE = "must be positive, got {value}"
NOT_NEGATIVE = "must not be negative, got {value}"


@dataclass(frozen=True)
class HotspotsConfig:
    # hotspots on the week's list, across the force (the test used about 120)
    per_week: int = setting(120, above=0, problem=POSITIVE, fix="default 120")
    # so the list is spread over areas rather than all in one
    max_per_area: int = setting(12, above=0, problem=POSITIVE, fix="default 12")
    # a hotspot cell must hold this many households (or residents / 2.4)
    min_households: float = setting(40.0, above=0, problem=POSITIVE, fix="default 40.0")
    # ...and, when postcodes are given, this many postcode centroids
    min_postcodes: int = setting(1, minimum=0, problem=NOT_NEGATIVE, fix="default 1")
    # cells visited this recently (the visited log) stay off the list
    cooldown_days: int = setting(28, minimum=0, problem=NOT_NEGATIVE, fix="default 28")


@dataclass(frozen=True)
class StationsConfig:
    # mobile-station sites to choose, besides any fixed ones
    count: int = setting(5, minimum=0, problem=NOT_NEGATIVE, fix="default 5")
    radius_m: float = setting(800.0, above=0, problem=POSITIVE, fix="default 800.0")
    fixed: tuple[tuple[float, float], ...] = ()  # existing sites as [latitude, longitude] pairs


@dataclass(frozen=True)
class GeofencesConfig:
    # devices cap a geofence's vertices
    max_vertices: int = setting(100, above=0, problem=POSITIVE, fix="default 100")
    # extra area a simplified geofence may add before it is split
    max_extra_area: float = setting(0.2, minimum=0, problem=NOT_NEGATIVE, fix="default 0.2")
    # circular geofences written (iOS monitors at most 20 regions per app)
    circles: int = setting(20, above=0, problem=POSITIVE, fix="default 20")
    # smallest circle platforms monitor reliably
    min_radius_m: float = setting(100.0, above=0, problem=POSITIVE, fix="default 100.0")


@dataclass(frozen=True)
class OutputConfig:
    dir: Path = Path("out")  # relative to the config's folder
    protective_marking: str = "OFFICIAL-SENSITIVE"  # printed on every shared output


@dataclass(frozen=True)
class PopulationConfig:
    min_age: int = 18  # only adults sign up; used when the population has age bands
    # parts above the total by more than this fraction: the row is rejected
    total_tolerance: float = setting(
        0.01, minimum=0, below=1, problem="must be a fraction in [0, 1), got {value}",
        fix="e.g. 0.01",
    )  # fmt: skip


@dataclass(frozen=True)
class PrivacyConfig:
    # sign-up-derived counts 1..threshold-1 are withheld
    suppression_threshold: int = setting(
        10, minimum=1, problem="must be at least 1", fix="the default is 10"
    )


@dataclass(frozen=True)
class CrimesConfig:
    # serious acquisitive crime types
    sac_types: tuple[str, ...] = setting(
        DEFAULT_SAC_TYPES, problem="must be a list of police.uk crime types",
        fix='["Burglary", "Robbery"]',
    )  # fmt: skip
    # crime types of busy public places: their density places street engagement
    public_place_types: tuple[str, ...] = setting(
        DEFAULT_PUBLIC_PLACE_TYPES, problem="must be a list of police.uk crime types",
        fix='["Theft from the person", "Shoplifting"]',
    )  # fmt: skip


@dataclass(frozen=True)
class SchemesConfig:
    # a Watch scheme given as a point covers this radius
    point_radius_m: float = setting(200.0, above=0, problem="must be positive", fix="e.g. 200")


@dataclass(frozen=True)
class RepresentationConfig:
    # H3 resolution of the map's per-origin layers (coarser: fewer withheld); its default is the
    # coarser of 8 and the grid's, so a coarse grid needs no second setting
    map_resolution: int = 8


@dataclass(frozen=True)
class EmergingConfig:
    # an origin grew by more than this fraction of its earlier count...
    min_growth: float = setting(0.5, minimum=0, problem=NOT_NEGATIVE, fix="e.g. 0.5")
    # ...and by more than this many residents
    min_increase: float = setting(100.0, minimum=0, problem=NOT_NEGATIVE, fix="e.g. 100")


@dataclass(frozen=True)
class CensusTable:
    """A numeric census table for the open segmentation, keyed by the small areas or by the
    polygons of `areas` (e.g. LSOAs), which the small areas then take their values from."""

    table: Path
    areas: Path | None = None


@dataclass(frozen=True)
class DeprivationConfig:
    # the column of `[inputs] deprivation` to read; default: a published IMD score, rank or
    # decile (in that order), or census TS011's share of households deprived in any dimension
    column: str | None = None
    # which way the column runs; default: known for the published measures (an IMD rank or
    # decile counts 1 as the most deprived; a score or share counts higher as more deprived)
    higher_is_more_deprived: bool | None = None


@dataclass(frozen=True)
class SegmentsConfig:
    k: int = 0  # segments in the open segmentation; 0: chosen by silhouette in k_min..k_max
    k_min: int = 4
    k_max: int = 10
    census: tuple[CensusTable, ...] = ()  # census tables besides the population's origin shares
    # the base of the profile index
    base: str = setting("households", choices=("households", "residents"), fix='"households"')
    # expected sign-ups per hotspot by segment and tactic; a segment or tactic not listed takes
    # [tactics] yields
    yields: Mapping[str, Mapping[str, float]] = setting(MappingProxyType({}))


# what an officer says at each kind of visit, shown in the map's popups; a force words its own
DEFAULT_SCRIPTS: Mapping[str, str] = MappingProxyType({
    "door": "Hello, I'm from your neighbourhood policing team. We send local alerts about "
            "crime and safety where you live; can I show you how to sign up?",
    "street": "We're out talking to people about local alerts: news from your neighbourhood "
              "team, straight to your phone. Would you like to sign up?",
    "station": "Come and meet your neighbourhood team at the mobile police station, and sign "
               "up for local alerts while you are here.",
})  # fmt: skip


def _tile_url(value: object) -> bool:
    text = str(value)
    return all(part in text for part in ("{z}", "{x}", "{y}")) and text.startswith(
        ("http", "/", ".")
    )


@dataclass(frozen=True)
class MapConfig:
    # the map's title bar: the force's name (default: the config file's name)
    title: str | None = None
    # a tile server's URL template ({z}/{x}/{y}) for forces with their own; default: no tiles,
    # the map draws from its own data and works with no network
    tiles: str | None = setting(
        None, check=_tile_url, problem="must be a tile URL template with {{z}}, {{x}} and {{y}}, got {value}",
        fix='e.g. "https://tiles.example.police.uk/{z}/{x}/{y}.png"',
    )  # fmt: skip
    # attribution shown for those tiles
    tiles_attribution: str = ""
    # a line of what to say per tactic, in each hotspot's and station's popup
    scripts: Mapping[str, str] = setting(DEFAULT_SCRIPTS)
    # streets are kept this far around the week's hotspots and station sites (metres)
    streets_buffer_m: float = setting(800.0, above=0, problem=POSITIVE, fix="default 800")


@dataclass(frozen=True)
class HistoryConfig:
    # a history store (DuckDB) that each finished run adds its aggregates to, for the portal
    # (relative to the config's folder); default: none
    store: Path | None = None
    # the force's name in the history and the portal (default: [map] title, else the config
    # file's name)
    force: str | None = None
    # the portal's quality measures use the message ratings of this many days before each date
    quality_days: int = setting(91, minimum=1, problem="must be at least 1, got {value}",
                                fix="default 91 (three months)")  # fmt: skip


@dataclass(frozen=True)
class Config:
    """Everything a run needs to know, read once from TOML and passed explicitly."""

    path: Path
    inputs: InputFiles
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
    plan: PlanConfig = PlanConfig()
    hotspots: HotspotsConfig = HotspotsConfig()
    stations: StationsConfig = StationsConfig()
    geofences: GeofencesConfig = GeofencesConfig()
    segments: SegmentsConfig = SegmentsConfig()
    deprivation: DeprivationConfig = DeprivationConfig()
    map: MapConfig = MapConfig()
    history: HistoryConfig = HistoryConfig()
    columns: Mapping[str, Mapping[str, str | tuple[str, ...]]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def columns_for(self, input_name: str) -> Mapping[str, str | tuple[str, ...]]:
        """The `[columns.<input>]` mapping (canonical name -> file's name), empty if none."""
        return self.columns.get(input_name, MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy, for the manifest."""
        return _jsonable(self)


def sections() -> dict[str, type]:
    """The config's sections (TOML tables), by name: every field of `Config` but its path, its
    inputs and its column mappings."""
    return {
        f.name: type(f.default)
        for f in fields(Config)
        if f.name not in ("path", "inputs", "columns")
    }


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
