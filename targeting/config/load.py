"""Reading the run configuration from TOML: every problem in a file collected into one error.

What a section may hold comes from its dataclass (`model`): the keys are its fields, the types
their annotations, the bounds and the error's words their metadata (`model.setting`). The
`[inputs]` and `[columns.<input>]` keys come from the input layers (`targeting.layers`). What
cannot be said field by field (tables of weights and yields, station pairs, census tables, and
checks across fields) is read by the small functions below, named by the field they read.
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from targeting.config.model import (
    DATE_ORDERS,
    DEFAULT_YIELDS,
    TACTICS,
    CensusTable,
    Config,
    InputFiles,
    sections,
)
from targeting.errors import ConfigError, Problem

_KINDS: Mapping[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


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


def _default(f: Field[Any]) -> Any:
    if f.default is MISSING and f.default_factory is not MISSING:
        return f.default_factory()
    return f.default


def _meets(value: Any, meta: Mapping[str, Any]) -> bool:
    """Whether a value meets its field's declared bounds, choices and check."""
    bounds = (
        (meta.get("minimum"), lambda v, b: v >= b),
        (meta.get("maximum"), lambda v, b: v <= b),
        (meta.get("above"), lambda v, b: v > b),
        (meta.get("below"), lambda v, b: v < b),
    )
    if any(b is not None and not ok(value, b) for b, ok in bounds):
        return False
    if meta.get("choices") and value not in meta["choices"]:
        return False
    return not (meta.get("check") and not meta["check"](value))


def _field(r: _Reader, section: Mapping[str, Any], f: Field[Any], prefix: str) -> Any:
    """One plain setting (a number, text, flag, path, date or list of text), checked against its
    declared bounds; a value that does not meet them is reported and the default used."""
    default, kind = _default(f), str(f.type)
    key = f"{prefix}.{f.name}"
    if kind == "Path":
        return r.path_value(section, f.name, prefix) or r.path.parent / default
    if kind == "Path | None":
        return r.path_value(section, f.name, prefix)
    if kind == "dt.date | None":
        return _date(r, section.get(f.name), key)
    if kind == "tuple[str, ...]":
        value = section.get(f.name, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            r.add(key, f.metadata.get("problem") or "must be a list of text", f.metadata["fix"])
            return default
        return tuple(value)
    if kind.endswith(" | None"):  # an optional text, number or flag: None when not given
        if f.name not in section:
            return default
        kind = kind.removesuffix(" | None")
    value = r.typed(section, f.name, _KINDS[kind], default, prefix)
    meta = f.metadata
    if meta and not _meets(value, meta):
        choices = meta.get("choices")
        problem = meta["problem"] or f"must be one of {', '.join(choices or ())}, got {{value!r}}"
        r.add(key, problem.format(value=value), meta["fix"])
        return default
    return value


def _date(r: _Reader, value: Any, key: str) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            r.add(key, f"is not a date: {value!r}", "write it as 2018-10-31")
            return None
    if value is not None and not isinstance(value, dt.date):
        r.add(key, f"must be a date, got {value!r}", "write it as 2018-10-31")
        return None
    return value


def _keyed(
    r: _Reader,
    section: Mapping[str, Any],
    key: str,
    default: Any,
    prefix: str,
    *,
    noun: str,
    example: str,
    read: Callable[[Mapping[str, Any], str, Any, str], Any],
) -> Any:
    """A table with known keys, each read by `read` and filled in from the default."""
    out = dict(default)
    raw, name = section.get(key, {}), f"{prefix}.{key}"
    if not isinstance(raw, Mapping):
        first = next(iter(default))
        r.add(name, f"must be a table of {noun}", f"e.g. {key} = {{ {first} = {example} }}")
        return MappingProxyType(out)
    r.unknown(raw, set(default), name)
    for item, value_default in default.items():
        out[item] = read(raw, item, value_default, name)
    return MappingProxyType(out)


def _numbers(r: _Reader, section: Mapping[str, Any], key: str, default: Any, prefix: str) -> Any:
    """A table of non-negative numbers with known keys (`weights = { crime = 0.25 }`)."""

    def number(raw: Mapping[str, Any], item: str, value_default: Any, name: str) -> float:
        value = r.typed(raw, item, float, value_default, name)
        if value < 0:
            r.add(f"{name}.{item}", "must not be negative", "use 0 to switch it off")
        return max(float(value), 0.0)

    return _keyed(r, section, key, default, prefix, noun="numbers", example="0.5", read=number)


def _texts(r: _Reader, section: Mapping[str, Any], key: str, default: Any, prefix: str) -> Any:
    """A table of text with known keys (`scripts = { door = "Hello..." }`)."""

    def text(raw: Mapping[str, Any], item: str, value_default: Any, name: str) -> str:
        return str(r.typed(raw, item, str, value_default, name))

    return _keyed(r, section, key, default, prefix, noun="text", example='"..."', read=text)


def _pairs(r: _Reader, section: Mapping[str, Any], key: str, default: Any, prefix: str) -> Any:
    """Points as [latitude, longitude] pairs (`[stations] fixed`)."""
    raw = section.get(key, [])
    if not isinstance(raw, list) or not all(
        isinstance(p, list)
        and len(p) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
        for p in raw
    ):
        r.add(f"{prefix}.{key}", "must be a list of [latitude, longitude] pairs",
              f"e.g. {key} = [[52.4862, -1.8904]]")  # fmt: skip
        return default
    pairs = tuple((float(a), float(b)) for a, b in raw)
    if any(not (-90 <= a <= 90 and -180 <= b <= 180) for a, b in pairs):
        r.add(f"{prefix}.{key}", "has a pair outside latitude/longitude ranges", "[lat, lon]")
    return pairs


def _census(r: _Reader, section: Mapping[str, Any], key: str, default: Any, prefix: str) -> Any:
    """Census tables for the open segmentation (`[segments] census`)."""
    raw = section.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(c, Mapping) for c in raw):
        r.add(f"{prefix}.{key}", "must be a list of tables", f'{key} = [{{ table = "age.csv" }}]')
        return default
    out = []
    for i, entry in enumerate(raw):
        at = f"{prefix}.{key}[{i}]"
        r.unknown(entry, {"table", "areas"}, at)
        table = r.path_value(entry, "table", at)
        if table is None:
            r.add(f"{at}.table", "is required", '{ table = "age.csv" }')
            continue
        out.append(CensusTable(table, r.path_value(entry, "areas", at)))
    return tuple(out)


def _tactic_tables(
    r: _Reader, section: Mapping[str, Any], key: str, default: Any, prefix: str
) -> Any:
    """A table of tactics' numbers per name (`[segments.yields.<segment>] <tactic>`)."""
    raw = section.get(key, {})
    if not isinstance(raw, Mapping):
        r.add(f"{prefix}.{key}", "must be a table per segment", f"[{prefix}.{key}.S01] door = 3.0")
        return default
    yields: dict[str, Mapping[str, float]] = {}
    for segment, table in raw.items():
        name = f"{prefix}.{key}.{segment}"
        if not isinstance(table, Mapping):
            r.add(name, "must be a table of tactics", "door = 3.0")
            continue
        r.unknown(table, set(TACTICS), name)
        chosen = {}
        for tactic in (t for t in TACTICS if t in table):
            value = r.typed(table, tactic, float, DEFAULT_YIELDS[tactic], name)
            if value < 0:
                r.add(f"{name}.{tactic}", "must not be negative", "e.g. 2.7")
            chosen[tactic] = max(float(value), 0.0)
        yields[str(segment)] = MappingProxyType(chosen)
    return MappingProxyType(yields)


# settings that are not one plain value, read by the type of their field
_READERS: Mapping[str, Callable[[_Reader, Mapping[str, Any], str, Any, str], Any]] = {
    "Mapping[str, float]": _numbers,
    "Mapping[str, str]": _texts,
    "tuple[tuple[float, float], ...]": _pairs,
    "tuple[CensusTable, ...]": _census,
    "Mapping[str, Mapping[str, float]]": _tactic_tables,
}


def _section(r: _Reader, raw: Mapping[str, Any], name: str, cls: type) -> Any:
    """One section: unknown keys reported, every field read and checked."""
    section = r.table(raw, name)
    r.unknown(section, {f.name for f in fields(cls)}, name)
    values = {}
    for f in fields(cls):
        read = _READERS.get(str(f.type))
        values[f.name] = (
            read(r, section, f.name, _default(f), name) if read else _field(r, section, f, name)
        )
    return cls(**values)


def _inputs(r: _Reader, raw: Mapping[str, Any]) -> InputFiles:
    """`[inputs]`: a file per input layer, or a list of paths or globs for a layer that takes
    them; the required layers must be given."""
    from targeting.layers import LAYERS  # the layers read the config: named here, when used

    section = r.table(raw, "inputs")
    r.unknown(section, {layer.name for layer in LAYERS}, "inputs")
    files: dict[str, Any] = {}
    for layer in LAYERS:
        if layer.required and layer.name not in section:
            r.add(f"inputs.{layer.name}", "is required",
                  f'add {layer.name} = "path/to/file" under [inputs]')  # fmt: skip
        if not layer.globs:
            files[layer.name] = r.path_value(section, layer.name, "inputs")
            continue
        patterns = section.get(layer.name, [])
        patterns = [patterns] if isinstance(patterns, str) else patterns
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            r.add(f"inputs.{layer.name}", "must be a list of paths or globs",
                  f'e.g. {layer.name} = ["crime/*.csv"]')  # fmt: skip
            patterns = []
        files[layer.name] = tuple(
            str(p if (p := Path(c).expanduser()).is_absolute() else r.path.parent / p)
            for c in patterns
        )
    return InputFiles(files, names=[layer.name for layer in LAYERS])


def _columns(r: _Reader, raw: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """`[columns.<input>]`: canonical column -> the file's column, per input layer that reads a
    table; `<date column>_format` sets how a date column is read."""
    from targeting.layers import LAYERS

    known = {layer.name: layer.columns for layer in LAYERS if layer.columns is not None}
    columns_t = r.table(raw, "columns")
    r.unknown(columns_t, set(known), "columns")
    out: dict[str, Mapping[str, Any]] = {}
    for input_name, mapping in columns_t.items():
        spec = known.get(input_name)
        if spec is None:
            continue
        if not isinstance(mapping, Mapping):
            r.add(f"columns.{input_name}", "must be a table", f"write [columns.{input_name}]")
            continue
        r.unknown(mapping, set(spec.config_keys()), f"columns.{input_name}")
        clean: dict[str, Any] = {}
        for canon, name in mapping.items():
            key = f"columns.{input_name}.{canon}"
            if canon.endswith("_format") and canon in spec.config_keys():
                if isinstance(name, str) and (name in DATE_ORDERS or "%" in name):
                    clean[canon] = name
                else:
                    r.add(key, f"must be day-first, month-first or a strptime format, got {name!r}",
                          '"month-first" for 10/31/2018, or e.g. "%m/%d/%Y %H:%M"')  # fmt: skip
            elif canon in spec.columns and spec.columns[canon].many:
                if isinstance(name, list) and all(isinstance(n, str) for n in name):
                    clean[canon] = tuple(name)
                else:
                    r.add(key, "must be a list of column names", '["A", "B"]')
            elif canon in spec.columns:
                if isinstance(name, str) and name:
                    clean[canon] = name
                else:
                    r.add(key, f"must be a column name, got {name!r}", '"Name"')
        out[input_name] = MappingProxyType(clean)
    return MappingProxyType(out)


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
    kinds = sections()
    r.unknown(raw, {*kinds, "inputs", "columns"}, "")
    inputs = _inputs(r, raw)
    values = {name: _section(r, raw, name, cls) for name, cls in kinds.items()}
    values["representation"] = _map_resolution(r, raw, values)
    _segment_range(r, values["segments"])
    if not any(values["scoring"].weights.values()):
        r.add("scoring.weights", "are all 0: nothing to rank by", "give one a positive weight")
    columns = _columns(r, raw)
    if r.problems:
        raise ConfigError(path, r.problems)
    return Config(path=path, inputs=inputs, columns=columns, **values)


def _map_resolution(r: _Reader, raw: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
    """`[representation] map_resolution`: by default the coarser of 8 and the grid's own; never
    finer than the grid."""
    resolution = values["grid"].resolution
    chosen = values["representation"]
    given = r.table(raw, "representation").get("map_resolution")
    if given is None:
        return type(chosen)(map_resolution=min(chosen.map_resolution, resolution))
    if not 0 <= chosen.map_resolution <= resolution:
        r.add("representation.map_resolution",
              f"must be an H3 resolution from 0 to grid.resolution ({resolution}), got "
              f"{chosen.map_resolution}", "e.g. 8")  # fmt: skip
    return chosen


def _segment_range(r: _Reader, segments: Any) -> None:
    """`[segments] k, k_min, k_max`: k of 0 (chosen) or more, and 2 <= k_min <= k_max."""
    k, k_min, k_max = segments.k, segments.k_min, segments.k_max
    if k < 0 or not 2 <= k_min <= k_max:
        r.add("segments.k", f"needs k >= 0 and 2 <= k_min <= k_max, got {k}, {k_min}, {k_max}",
              "e.g. k = 0 (choose), k_min = 4, k_max = 10")  # fmt: skip
