"""Reading the run configuration from TOML: every problem in a file collected into one error."""

from __future__ import annotations

import datetime as dt
import math
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from targeting.config.model import (
    CANONICAL_COLUMNS,
    DATE_COLUMNS,
    DATE_ORDERS,
    DEFAULT_SAC_TYPES,
    DEFAULT_YIELDS,
    SMALL_AREA_FITS,
    TACTICS,
    AreasConfig,
    CensusTable,
    Config,
    CrimesConfig,
    EmergingConfig,
    GeofencesConfig,
    GridConfig,
    HotspotsConfig,
    InputsConfig,
    OriginsConfig,
    OutputConfig,
    PopulationConfig,
    PrivacyConfig,
    RepresentationConfig,
    RunConfig,
    SchemesConfig,
    ScoringConfig,
    SegmentsConfig,
    StationsConfig,
    TacticsConfig,
)
from targeting.errors import ConfigError, Problem
from targeting.scoring import DEFAULT_WEIGHTS

_PATH_KEYS = {
    "areas",
    "population",
    "signups",
    "small_areas",
    "ratings",
    "schemes",
    "postcodes",
    "population_raster",
    "population_previous",
    "visited",
    "segments",
    "segment_descriptions",
}
_REQUIRED_INPUTS = ("areas", "population", "signups")


class _Reader:
    """Collects problems while converting raw TOML tables into typed values."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def add(self, key: str, problem: str, fix: str) -> None:
        self.problems.append(Problem(f"{self.path} key '{key}'", problem, fix))

    def table(self, raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = raw.get(key, {})
        if not isinstance(value, Mapping):
            self.add(key, f"must be a table, got {type(value).__name__}", f"write it as [{key}]")
            return {}
        return value

    def unknown(self, section: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
        for key in sorted(set(section) - allowed):
            name = f"{prefix}.{key}" if prefix else key
            self.add(
                name,
                "is not a known setting",
                f"remove it or use one of: {', '.join(sorted(allowed))}",
            )

    def path_value(self, section: Mapping[str, Any], key: str, prefix: str) -> Path | None:
        value = section.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.add(
                f"{prefix}.{key}", f"must be a file path string, got {value!r}", 'e.g. "file.csv"'
            )
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.path.parent / p)

    def typed(
        self, section: Mapping[str, Any], key: str, kind: type, default: Any, prefix: str
    ) -> Any:
        if key not in section:
            return default
        value = section[key]
        ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind is float and ok and not math.isfinite(value):
            self.add(
                f"{prefix}.{key}",
                f"must be a finite number, got {value!r}",
                f"give a number such as {default!r}",
            )
            return default
        if not ok:
            self.add(
                f"{prefix}.{key}",
                f"must be {kind.__name__}, got {type(value).__name__} {value!r}",
                f"give a {kind.__name__} value (default {default!r})",
            )
            return default
        return value


def _number_table(
    r: _Reader, section: Mapping[str, Any], key: str, defaults: Mapping[str, float], prefix: str
) -> dict[str, float]:
    """A table of non-negative numbers with known keys (`weights = { crime = 0.25 }`), filled in
    from `defaults`."""
    out = dict(defaults)
    raw = section.get(key, {})
    name = f"{prefix}.{key}"
    if not isinstance(raw, Mapping):
        example = next(iter(defaults))
        r.add(name, "must be a table of numbers", f"e.g. {key} = {{ {example} = 0.5 }}")
        return out
    r.unknown(raw, set(defaults), name)
    for item, default in defaults.items():
        value = r.typed(raw, item, float, default, name)
        if value < 0:
            r.add(f"{name}.{item}", "must not be negative", "use 0 to switch it off")
        out[item] = max(float(value), 0.0)
    return out


def _segments_section(r: _Reader, raw: Mapping[str, Any], path: Path) -> SegmentsConfig:
    """`[segments]`: k and its range, census tables, the base, yields by segment and tactic."""
    section = dict(r.table(raw, "segments"))
    census_raw = section.pop("census", [])
    yields_raw = section.pop("yields", {})
    base = section.pop("base", SegmentsConfig.base)
    r.unknown(section, {"k", "k_min", "k_max"}, "segments")
    k = r.typed(section, "k", int, SegmentsConfig.k, "segments")
    k_min = r.typed(section, "k_min", int, SegmentsConfig.k_min, "segments")
    k_max = r.typed(section, "k_max", int, SegmentsConfig.k_max, "segments")
    if k < 0 or not 2 <= k_min <= k_max:
        r.add("segments.k", f"needs k >= 0 and 2 <= k_min <= k_max, got {k}, {k_min}, {k_max}",
              "e.g. k = 0 (choose), k_min = 4, k_max = 10")  # fmt: skip
    if base not in ("households", "residents"):
        r.add("segments.base", f"must be households or residents, got {base!r}", '"households"')
        base = SegmentsConfig.base
    census: list[CensusTable] = []
    if not isinstance(census_raw, list) or not all(isinstance(c, Mapping) for c in census_raw):
        r.add("segments.census", "must be a list of tables", 'census = [{ table = "age.csv" }]')
    else:
        for i, entry in enumerate(census_raw):
            r.unknown(entry, {"table", "areas"}, f"segments.census[{i}]")
            table = r.path_value(entry, "table", f"segments.census[{i}]")
            if table is None:
                r.add(f"segments.census[{i}].table", "is required", '{ table = "age.csv" }')
                continue
            census.append(CensusTable(table, r.path_value(entry, "areas", f"segments.census[{i}]")))
    yields: dict[str, Mapping[str, float]] = {}
    if not isinstance(yields_raw, Mapping):
        r.add("segments.yields", "must be a table per segment", "[segments.yields.S01] door = 3.0")
    else:
        for segment, table in yields_raw.items():
            if not isinstance(table, Mapping):
                r.add(f"segments.yields.{segment}", "must be a table of tactics", "door = 3.0")
                continue
            r.unknown(table, set(TACTICS), f"segments.yields.{segment}")
            chosen = {}
            for tactic in TACTICS:
                if tactic in table:
                    v = r.typed(
                        table, tactic, float, DEFAULT_YIELDS[tactic], f"segments.yields.{segment}"
                    )
                    if v < 0:
                        r.add(
                            f"segments.yields.{segment}.{tactic}",
                            "must not be negative",
                            "e.g. 2.7",
                        )
                    chosen[tactic] = max(float(v), 0.0)
            yields[str(segment)] = MappingProxyType(chosen)
    return SegmentsConfig(
        k=k, k_min=k_min, k_max=k_max, census=tuple(census), base=str(base),
        yields=MappingProxyType(yields),
    )  # fmt: skip


def _simple_section(r: _Reader, raw: Mapping[str, Any], name: str, cls: type) -> dict[str, Any]:
    """Read a section of plain numbers into keyword arguments for `cls`: its fields' types and
    defaults; every value must be positive, except that a fraction, a cooldown or a count may be 0."""
    section = r.table(raw, name)
    simple = {f.name: f for f in fields(cls) if f.type in ("int", "float")}
    r.unknown(section, set(simple) | ({"fixed"} if name == "stations" else set()), name)
    values: dict[str, Any] = {}
    for key, f in simple.items():
        kind = int if f.type == "int" else float
        value = r.typed(section, key, kind, f.default, name)
        may_be_zero = {"max_extra_area", "cooldown_days", "count", "min_postcodes"}
        if value < 0 or (value == 0 and key not in may_be_zero):
            r.add(f"{name}.{key}", f"must be positive, got {value}", f"default {f.default}")
            value = f.default
        values[key] = value
    return values


def load_config(path: Path | str) -> Config:
    """Read and check a run's TOML config; raise one `ConfigError` listing every problem."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(
            path, [Problem(str(path), "file not found", "check the path to the config")]
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            path, [Problem(str(path), f"is not valid TOML ({exc})", "fix the syntax")]
        ) from exc
    return config_from_dict(raw, path=path)


def config_from_dict(raw: Mapping[str, Any], *, path: Path) -> Config:
    """Build a `Config` from an already parsed TOML mapping; paths are relative to `path`'s folder."""
    r = _Reader(path)
    sections = {
        "inputs", "origins", "areas", "grid", "run", "scoring", "output", "population", "privacy", "crimes",
        "schemes", "representation", "emerging", "tactics", "hotspots", "stations", "geofences", "segments",
        "columns",
    }  # fmt: skip
    r.unknown(raw, sections, "")

    inp = r.table(raw, "inputs")
    r.unknown(inp, _PATH_KEYS | {"crimes"}, "inputs")
    for key in _REQUIRED_INPUTS:
        if key not in inp:
            r.add(f"inputs.{key}", "is required", f'add {key} = "path/to/file" under [inputs]')
    paths = {k: r.path_value(inp, k, "inputs") for k in _PATH_KEYS}
    crimes_raw = inp.get("crimes", [])
    if isinstance(crimes_raw, str):
        crimes_raw = [crimes_raw]
    crimes: list[str] = []
    if not isinstance(crimes_raw, list) or not all(isinstance(c, str) for c in crimes_raw):
        r.add("inputs.crimes", "must be a list of paths or globs", 'e.g. crimes = ["crime/*.csv"]')
    else:
        for c in crimes_raw:
            p = Path(c).expanduser()
            crimes.append(str(p if p.is_absolute() else path.parent / p))

    origins_t = r.table(raw, "origins")
    r.unknown(origins_t, {"map", "max_unmapped"}, "origins")
    max_unmapped = r.typed(origins_t, "max_unmapped", float, OriginsConfig.max_unmapped, "origins")
    if not 0 <= max_unmapped <= 1:
        r.add(
            "origins.max_unmapped",
            f"must be a share from 0 to 1, got {max_unmapped}",
            "e.g. 0.05 (stop when over 5% of sign-ups with an origin cannot be mapped)",
        )
    areas_t = r.table(raw, "areas")
    r.unknown(areas_t, {"merge_duplicates"}, "areas")
    merge_duplicates = r.typed(
        areas_t, "merge_duplicates", bool, AreasConfig.merge_duplicates, "areas"
    )
    grid_t = r.table(raw, "grid")
    r.unknown(grid_t, {"resolution", "small_area_fit", "max_cells"}, "grid")
    max_cells = r.typed(grid_t, "max_cells", int, GridConfig.max_cells, "grid")
    if max_cells < 1:
        r.add("grid.max_cells", f"must be positive, got {max_cells}", "e.g. 2000000")
    resolution = r.typed(grid_t, "resolution", int, GridConfig.resolution, "grid")
    if not 0 <= resolution <= 15:
        r.add(
            "grid.resolution", f"must be an H3 resolution 0-15, got {resolution}", "use 8, 9 or 10"
        )
        resolution = 9
    small_area_fit = r.typed(grid_t, "small_area_fit", str, GridConfig.small_area_fit, "grid")
    if small_area_fit not in SMALL_AREA_FITS:
        r.add(
            "grid.small_area_fit",
            f"must be one of {', '.join(SMALL_AREA_FITS)}, got {small_area_fit!r}",
            'use "split" (surface shares), or, for small areas that nest in the areas, "best_fit" '
            '(largest share) or "centroid" (a point on the surface)',
        )
        small_area_fit = GridConfig.small_area_fit
    run_t = r.table(raw, "run")
    r.unknown(run_t, {"as_of", "seed", "timezone"}, "run")
    timezone = r.typed(run_t, "timezone", str, RunConfig.timezone, "run")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        r.add(
            "run.timezone",
            f"is not a time zone: {timezone!r}",
            'use an IANA name such as "Europe/London"',
        )
        timezone = RunConfig.timezone
    as_of = run_t.get("as_of")
    if isinstance(as_of, dt.datetime):
        as_of = as_of.date()
    elif isinstance(as_of, str):
        try:
            as_of = dt.date.fromisoformat(as_of)
        except ValueError:
            r.add("run.as_of", f"is not a date: {as_of!r}", "write it as 2018-10-31")
            as_of = None
    elif as_of is not None and not isinstance(as_of, dt.date):
        r.add("run.as_of", f"must be a date, got {as_of!r}", "write it as 2018-10-31")
        as_of = None
    seed = r.typed(run_t, "seed", int, RunConfig.seed, "run")

    scoring_t = r.table(raw, "scoring")
    r.unknown(scoring_t, {"weights", "low_rating", "rating_prior"}, "scoring")
    low_rating = r.typed(scoring_t, "low_rating", int, ScoringConfig.low_rating, "scoring")
    rating_prior = r.typed(scoring_t, "rating_prior", float, ScoringConfig.rating_prior, "scoring")
    if not 1 <= low_rating < 6:
        r.add("scoring.low_rating", f"must be 1 to 5, got {low_rating}", "e.g. 2")
    if rating_prior < 0:
        r.add("scoring.rating_prior", "must not be negative", "e.g. 20")
    weights = _number_table(r, scoring_t, "weights", DEFAULT_WEIGHTS, "scoring")
    if not any(weights.values()):
        r.add("scoring.weights", "are all 0: nothing to rank by", "give one a positive weight")

    out_t = r.table(raw, "output")
    r.unknown(out_t, {"dir", "protective_marking"}, "output")
    out_dir = r.path_value(out_t, "dir", "output") or path.parent / OutputConfig.dir
    marking = r.typed(out_t, "protective_marking", str, OutputConfig.protective_marking, "output")

    pop_t = r.table(raw, "population")
    r.unknown(pop_t, {"min_age", "total_tolerance"}, "population")
    min_age = r.typed(pop_t, "min_age", int, PopulationConfig.min_age, "population")
    tol = r.typed(pop_t, "total_tolerance", float, PopulationConfig.total_tolerance, "population")
    if not 0 <= tol < 1:
        r.add("population.total_tolerance", f"must be a fraction in [0, 1), got {tol}", "e.g. 0.01")

    priv_t = r.table(raw, "privacy")
    r.unknown(priv_t, {"suppression_threshold"}, "privacy")
    threshold = r.typed(
        priv_t, "suppression_threshold", int, PrivacyConfig.suppression_threshold, "privacy"
    )
    if threshold < 1:
        r.add("privacy.suppression_threshold", "must be at least 1", "the default is 10")

    crimes_t = r.table(raw, "crimes")
    r.unknown(crimes_t, {"sac_types"}, "crimes")
    sac = crimes_t.get("sac_types", list(DEFAULT_SAC_TYPES))
    if not isinstance(sac, list) or not all(isinstance(s, str) for s in sac):
        r.add(
            "crimes.sac_types", "must be a list of police.uk crime types", '["Burglary", "Robbery"]'
        )
        sac = list(DEFAULT_SAC_TYPES)

    schemes_t = r.table(raw, "schemes")
    r.unknown(schemes_t, {"point_radius_m"}, "schemes")
    radius = r.typed(schemes_t, "point_radius_m", float, SchemesConfig.point_radius_m, "schemes")
    if radius <= 0:
        r.add("schemes.point_radius_m", "must be positive", "e.g. 200")

    rep_t = r.table(raw, "representation")
    r.unknown(rep_t, {"map_resolution"}, "representation")
    # the default is the coarser of 8 and the grid's own, so a coarse grid needs no second setting
    map_res = r.typed(
        rep_t,
        "map_resolution",
        int,
        min(RepresentationConfig.map_resolution, resolution),
        "representation",
    )
    if not 0 <= map_res <= resolution:
        r.add(
            "representation.map_resolution",
            f"must be an H3 resolution from 0 to grid.resolution ({resolution}), got {map_res}",
            "e.g. 8",
        )

    em_t = r.table(raw, "emerging")
    r.unknown(em_t, {"min_growth", "min_increase"}, "emerging")
    min_growth = r.typed(em_t, "min_growth", float, EmergingConfig.min_growth, "emerging")
    min_increase = r.typed(em_t, "min_increase", float, EmergingConfig.min_increase, "emerging")
    if min_growth < 0 or min_increase < 0:
        r.add("emerging", "thresholds must not be negative", "e.g. min_growth = 0.5")

    tactics_t = r.table(raw, "tactics")
    r.unknown(tactics_t, {"yields"}, "tactics")
    yields = _number_table(r, tactics_t, "yields", DEFAULT_YIELDS, "tactics")
    hotspots = _simple_section(r, raw, "hotspots", HotspotsConfig)
    stations_t = dict(r.table(raw, "stations"))
    fixed_raw = stations_t.pop("fixed", [])
    fixed: list[tuple[float, float]] = []
    if not isinstance(fixed_raw, list) or not all(
        isinstance(p, list)
        and len(p) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
        for p in fixed_raw
    ):
        r.add(
            "stations.fixed",
            "must be a list of [latitude, longitude] pairs",
            "e.g. fixed = [[52.4862, -1.8904]]",
        )
    else:
        fixed = [(float(a), float(b)) for a, b in fixed_raw]
        if any(not (-90 <= a <= 90 and -180 <= b <= 180) for a, b in fixed):
            r.add("stations.fixed", "has a pair outside latitude/longitude ranges", "[lat, lon]")
    stations = _simple_section(r, {"stations": stations_t}, "stations", StationsConfig)
    geofences = _simple_section(r, raw, "geofences", GeofencesConfig)
    segments = _segments_section(r, raw, path)

    columns_t = r.table(raw, "columns")
    r.unknown(columns_t, set(CANONICAL_COLUMNS), "columns")
    columns: dict[str, Mapping[str, str | tuple[str, ...]]] = {}
    for input_name, mapping in columns_t.items():
        if input_name not in CANONICAL_COLUMNS:
            continue
        if not isinstance(mapping, Mapping):
            r.add(f"columns.{input_name}", "must be a table", f"write [columns.{input_name}]")
            continue
        formats = {f"{c}_format" for c in DATE_COLUMNS.get(input_name, ())}
        r.unknown(mapping, set(CANONICAL_COLUMNS[input_name]) | formats, f"columns.{input_name}")
        clean: dict[str, str | tuple[str, ...]] = {}
        for canon, name in mapping.items():
            if canon in formats:
                if isinstance(name, str) and (name in DATE_ORDERS or "%" in name):
                    clean[canon] = name
                else:
                    r.add(
                        f"columns.{input_name}.{canon}",
                        f"must be day-first, month-first or a strptime format, got {name!r}",
                        '"month-first" for 10/31/2018, or e.g. "%m/%d/%Y %H:%M"',
                    )
            elif canon == "origins":
                if isinstance(name, list) and all(isinstance(n, str) for n in name):
                    clean[canon] = tuple(name)
                else:
                    r.add(
                        f"columns.{input_name}.origins",
                        "must be a list of column names",
                        '["A", "B"]',
                    )
            elif isinstance(name, str) and name:
                clean[canon] = name
            elif canon in CANONICAL_COLUMNS[input_name]:
                r.add(
                    f"columns.{input_name}.{canon}",
                    f"must be a column name, got {name!r}",
                    '"Name"',
                )
        columns[input_name] = MappingProxyType(clean)

    if r.problems:
        raise ConfigError(path, r.problems)
    return Config(
        path=path,
        inputs=InputsConfig(
            areas=paths["areas"],  # type: ignore[arg-type]
            population=paths["population"],  # type: ignore[arg-type]
            signups=paths["signups"],  # type: ignore[arg-type]
            small_areas=paths["small_areas"],
            crimes=tuple(crimes),
            ratings=paths["ratings"],
            schemes=paths["schemes"],
            postcodes=paths["postcodes"],
            population_raster=paths["population_raster"],
            population_previous=paths["population_previous"],
            visited=paths["visited"],
            segments=paths["segments"],
            segment_descriptions=paths["segment_descriptions"],
        ),
        origins=OriginsConfig(
            map=r.path_value(origins_t, "map", "origins"), max_unmapped=max_unmapped
        ),
        areas=AreasConfig(merge_duplicates=merge_duplicates),
        grid=GridConfig(resolution=resolution, small_area_fit=small_area_fit, max_cells=max_cells),
        run=RunConfig(as_of=as_of, seed=seed, timezone=timezone),
        scoring=ScoringConfig(
            weights=MappingProxyType(weights), low_rating=low_rating, rating_prior=rating_prior
        ),
        output=OutputConfig(dir=out_dir, protective_marking=marking),
        population=PopulationConfig(min_age=min_age, total_tolerance=tol),
        privacy=PrivacyConfig(suppression_threshold=threshold),
        crimes=CrimesConfig(sac_types=tuple(sac)),
        schemes=SchemesConfig(point_radius_m=radius),
        representation=RepresentationConfig(map_resolution=map_res),
        emerging=EmergingConfig(min_growth=min_growth, min_increase=min_increase),
        tactics=TacticsConfig(yields=MappingProxyType(yields)),
        hotspots=HotspotsConfig(**hotspots),
        stations=StationsConfig(**stations, fixed=tuple(fixed)),
        geofences=GeofencesConfig(**geofences),
        segments=segments,
        columns=MappingProxyType(columns),
    )
