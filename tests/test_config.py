"""The run configuration: defaults, path resolution, and errors that name the key and the file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import build_config
from hypothesis import given
from hypothesis import strategies as st

from targeting.config import config_from_dict, load_config
from targeting.errors import ConfigError
from targeting.scoring import COMPONENT_NAMES

REQUIRED = {"areas": "wards.geojson", "population": "census.csv", "signups": "signups.csv"}
FAKE = Path("/configs/force/run.toml")  # config_from_dict never touches the file system


def raw(**sections: Any) -> dict[str, Any]:
    inputs = {**REQUIRED, **sections.pop("inputs", {})}
    return {"inputs": inputs, **sections}


def problem_for(err: ConfigError, key: str) -> str:
    """The one problem line about `key` (fails if there is none)."""
    hits = [str(p) for p in err.problems if f"key '{key}'" in p.where]
    assert len(hits) == 1, (key, [str(p) for p in err.problems])
    return hits[0]


# --- defaults -------------------------------------------------------------------------------


def test_minimal_config_has_the_documented_defaults(tmp_path: Path) -> None:
    config = config_from_dict({"inputs": dict(REQUIRED)}, path=tmp_path / "run.toml")
    assert config.grid.resolution == 9
    assert config.population.min_age == 18
    assert config.population.total_tolerance == 0.01
    assert config.privacy.suppression_threshold == 10
    assert dict(config.scoring.weights) == {
        "representation_gap": 1.0,
        "watch_gap": 0.5,
        "crime": 0.25,
        "sac": 0.25,
        "low_satisfaction": 0.25,
        "low_penetration": 0.5,
        "deprivation": 0.0,  # off until a force weights it: adding the layer changes no ranking
    }
    assert config.run.as_of is None
    assert config.crimes.sac_types == (
        "Burglary",
        "Robbery",
        "Vehicle crime",
        "Theft from the person",
    )
    assert config.schemes.point_radius_m == 200.0
    assert config.output.dir == tmp_path / "out"
    assert config.output.protective_marking == "OFFICIAL-SENSITIVE"
    assert config.inputs.small_areas is None
    assert config.inputs.crimes == ()
    assert config.inputs.postcodes is None
    assert config.origins.map is None
    assert config.columns_for("signups") == {}


def test_weights_given_override_only_their_component() -> None:
    config = config_from_dict(raw(scoring={"weights": {"crime": 0, "sac": 2}}), path=FAKE)
    w = config.scoring.weights
    assert w["crime"] == 0.0 and isinstance(w["crime"], float)
    assert w["sac"] == 2.0 and isinstance(w["sac"], float)
    assert w["representation_gap"] == 1.0
    assert w["low_penetration"] == 0.5


@given(
    st.dictionaries(
        st.sampled_from(COMPONENT_NAMES),
        st.floats(min_value=0, max_value=1e6, allow_nan=False) | st.integers(0, 1000),
    )
)
def test_any_non_negative_weights_are_taken_as_floats(weights: dict[str, float]) -> None:
    defaults_left = set(COMPONENT_NAMES) - set(weights)
    if not defaults_left and not any(weights.values()):
        with pytest.raises(ConfigError, match="all 0: nothing to rank by"):
            config_from_dict(raw(scoring={"weights": weights}), path=FAKE)
        return
    config = config_from_dict(raw(scoring={"weights": weights}), path=FAKE)
    assert set(config.scoring.weights) == set(COMPONENT_NAMES)
    for key, value in weights.items():
        assert config.scoring.weights[key] == float(value)
        assert type(config.scoring.weights[key]) is float


# --- paths ----------------------------------------------------------------------------------


def test_paths_resolve_relative_to_the_config_file(tmp_path: Path) -> None:
    cfg_dir = tmp_path / "force" / "runs"
    absolute = tmp_path / "elsewhere" / "pc.csv"
    config = config_from_dict(
        raw(
            inputs={
                "areas": "data/wards.geojson",
                "small_areas": "../oa.geojson",
                "crimes": ["crime/*.csv", "extra.csv"],
                "postcodes": str(absolute),
            },
            origins={"map": "map.csv"},
            output={"dir": "results"},
        ),
        path=cfg_dir / "run.toml",
    )
    assert config.inputs.areas == cfg_dir / "data" / "wards.geojson"
    assert config.inputs.small_areas == cfg_dir / ".." / "oa.geojson"
    assert config.inputs.population == cfg_dir / "census.csv"
    assert config.inputs.postcodes == absolute
    assert config.inputs.crimes == (str(cfg_dir / "crime" / "*.csv"), str(cfg_dir / "extra.csv"))
    assert config.origins.map == cfg_dir / "map.csv"
    assert config.output.dir == cfg_dir / "results"
    assert config.path.parent == cfg_dir


def test_single_crimes_glob_string_is_a_list_of_one(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"crimes": "crime/*.csv"})
    assert config.inputs.crimes == (str(tmp_path / "crime" / "*.csv"),)


def test_load_config_reads_toml_relative_to_its_folder_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "run.toml").write_text(
        '[inputs]\nareas = "w.geojson"\npopulation = "p.csv"\nsignups = "s.csv"\n\n'
        "[run]\nas_of = 2018-10-31\n\n[grid]\nresolution = 8\n"
        '[columns.areas]\narea_code = "WD13CD"\n'
        '[columns.population]\ntotal = "Persons"\norigins = ["A", "B"]\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    config = load_config("cfg/run.toml")
    assert config.path == folder / "run.toml"
    assert config.inputs.areas == folder / "w.geojson"
    assert config.run.as_of == dt.date(2018, 10, 31)
    assert type(config.run.as_of) is dt.date
    assert config.grid.resolution == 8
    assert config.columns_for("areas")["area_code"] == "WD13CD"
    assert config.columns_for("population")["origins"] == ("A", "B")
    assert config.columns_for("population")["total"] == "Persons"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.date(2018, 10, 31), dt.date(2018, 10, 31)),
        (dt.datetime(2018, 10, 31, 23, 59), dt.date(2018, 10, 31)),
        ("2018-10-31", dt.date(2018, 10, 31)),
    ],
)
def test_as_of_is_a_date(value: object, expected: dt.date) -> None:
    config = config_from_dict(raw(run={"as_of": value}), path=FAKE)
    assert config.run.as_of == expected
    assert type(config.run.as_of) is dt.date


def test_config_is_frozen() -> None:
    config = config_from_dict(raw(), path=FAKE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.grid.resolution = 10  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.inputs = config.inputs  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.scoring.weights["crime"] = 5.0  # type: ignore[index]
    with pytest.raises(TypeError):
        config.columns["areas"] = {}  # type: ignore[index]
    assert config.grid.resolution == 9
    assert config.scoring.weights["crime"] == 0.25


def test_to_dict_is_json_with_dates_and_paths_as_text() -> None:
    config = config_from_dict(raw(run={"as_of": dt.date(2018, 10, 31)}), path=FAKE)
    data = json.loads(json.dumps(config.to_dict()))
    assert data["run"]["as_of"] == "2018-10-31"
    assert data["inputs"]["areas"] == str(FAKE.parent / "wards.geojson")
    assert data["scoring"]["weights"]["watch_gap"] == 0.5


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sections", "key"),
    [
        ({"tasking": {"day": "Monday"}}, "tasking"),
        ({"inputs": {"wards": "w.geojson"}}, "inputs.wards"),
        ({"grid": {"size": 9}}, "grid.size"),
        ({"run": {"asof": "2018-10-31"}}, "run.asof"),
        ({"scoring": {"weights": {"crime_rate": 1.0}}}, "scoring.weights.crime_rate"),
        ({"scoring": {"weight": {"crime": 1.0}}}, "scoring.weight"),
        ({"columns": {"signups": {"ethnicity": "Ethnicity"}}}, "columns.signups.ethnicity"),
        ({"columns": {"sign_ups": {"origin": "Ethnicity"}}}, "columns.sign_ups"),
        ({"population": {"min_agee": 16}}, "population.min_agee"),
    ],
)
def test_unknown_key_is_an_error_naming_the_key_and_the_file(
    sections: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw(**sections), path=FAKE)
    err = info.value
    assert len(err.problems) == 1
    line = problem_for(err, key)
    assert "is not a known setting" in line
    assert "Fix: remove it or use one of:" in line
    message = str(err)
    assert f"'{key}'" in message
    assert str(FAKE) in message


def test_unknown_key_fix_lists_the_known_keys() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw(grid={"size": 9}), path=FAKE)
    assert "use one of: max_cells, resolution, small_area_fit" in str(info.value)


@pytest.mark.parametrize(
    ("sections", "key", "said"),
    [
        ({"grid": {"resolution": "9"}}, "grid.resolution", "must be int, got str '9'"),
        ({"grid": {"resolution": 9.5}}, "grid.resolution", "must be int, got float"),
        ({"grid": {"resolution": 16}}, "grid.resolution", "must be an H3 resolution 0-15"),
        (
            {"scoring": {"weights": dict.fromkeys(COMPONENT_NAMES, 0)}},
            "scoring.weights",
            "are all 0: nothing to rank by",
        ),
        ({"tactics": {"yields": {"door": -1}}}, "tactics.yields.door", "must not be negative"),
        ({"hotspots": {"per_week": 0}}, "hotspots.per_week", "must be positive"),
        ({"stations": {"fixed": [[52.5]]}}, "stations.fixed", "[latitude, longitude] pairs"),
        (
            {"grid": {"small_area_fit": "nearest"}},
            "grid.small_area_fit",
            "must be one of split, best_fit, centroid, got 'nearest'",
        ),
        ({"grid": 9}, "grid", "must be a table"),
        ({"population": {"min_age": True}}, "population.min_age", "must be int, got bool"),
        ({"population": {"total_tolerance": "1%"}}, "population.total_tolerance", "must be float"),
        ({"population": {"total_tolerance": 1.5}}, "population.total_tolerance", "[0, 1)"),
        ({"privacy": {"suppression_threshold": 2.5}}, "privacy.suppression_threshold", "int"),
        ({"privacy": {"suppression_threshold": 0}}, "privacy.suppression_threshold", "at least 1"),
        ({"scoring": {"weights": {"crime": "high"}}}, "scoring.weights.crime", "must be float"),
        ({"scoring": {"weights": {"crime": -1}}}, "scoring.weights.crime", "must not be negative"),
        ({"scoring": {"weights": [1, 2]}}, "scoring.weights", "must be a table of numbers"),
        ({"inputs": {"areas": 3}}, "inputs.areas", "must be a file path string"),
        ({"inputs": {"signups": ""}}, "inputs.signups", "must be a file path string"),
        ({"inputs": {"crimes": 7}}, "inputs.crimes", "must be a list of paths or globs"),
        ({"run": {"as_of": 20181031}}, "run.as_of", "must be a date"),
        ({"run": {"as_of": "31/10/2018"}}, "run.as_of", "is not a date"),
        ({"run": {"seed": "x"}}, "run.seed", "must be int"),
        ({"crimes": {"sac_types": "Burglary"}}, "crimes.sac_types", "must be a list"),
        ({"schemes": {"point_radius_m": 0}}, "schemes.point_radius_m", "must be positive"),
        ({"output": {"dir": 1}}, "output.dir", "must be a file path string"),
        ({"columns": {"areas": {"area_code": 5}}}, "columns.areas.area_code", "column name"),
        ({"columns": {"areas": "WD13CD"}}, "columns.areas", "must be a table"),
        ({"columns": {"population": {"origins": "A"}}}, "columns.population.origins", "list"),
        ({"scoring": {"weights": {"crime": float("nan")}}}, "scoring.weights.crime", "finite"),
        ({"tactics": {"yields": {"door": float("inf")}}}, "tactics.yields.door", "finite"),
        ({"origins": {"max_unmapped": 5}}, "origins.max_unmapped", "a share from 0 to 1"),
        ({"run": {"timezone": "Mars/Olympus"}}, "run.timezone", "is not a time zone"),
        ({"grid": {"max_cells": 0}}, "grid.max_cells", "must be positive"),
        ({"areas": {"merge_duplicates": "yes"}}, "areas.merge_duplicates", "must be bool"),
        ({"columns": {"signups": {"joined_format": "US"}}}, "columns.signups.joined_format",
         "must be day-first, month-first or a strptime format"),
        ({"columns": {"crimes": {"month_format": "%Y"}}}, "columns.crimes.month_format",
         "is not a known setting"),
    ],
)  # fmt: skip
def test_wrong_type_or_value_names_the_key_and_the_file(
    sections: dict[str, Any], key: str, said: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw(**sections), path=FAKE)
    line = problem_for(info.value, key)
    assert said in line
    assert "Fix:" in line
    assert str(FAKE) in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    sections = {
        "inputs": {"wards": "w.geojson"},
        "grid": {"resolution": "nine"},
        "scoring": {"weights": {"crime": "high", "burglary": 1}},
        "columns": {"signups": {"ethnicity": "E"}},
        "colour": "blue",
    }
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw(**sections), path=FAKE)
    err = info.value
    keys = [
        "colour",
        "inputs.wards",
        "grid.resolution",
        "scoring.weights.crime",
        "scoring.weights.burglary",
        "columns.signups.ethnicity",
    ]
    assert len(err.problems) == len(keys)
    for key in keys:
        problem_for(err, key)
    assert f"has {len(keys)} problem(s)" in str(err)
    assert err.path == FAKE


def test_missing_required_inputs_are_each_named() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"inputs": {"crimes": ["c/*.csv"]}}, path=FAKE)
    err = info.value
    assert len(err.problems) == 3
    for key in ("areas", "population", "signups"):
        line = problem_for(err, f"inputs.{key}")
        assert "is required" in line
        assert f'add {key} = "path/to/file" under [inputs]' in line


def test_no_inputs_table_at_all_is_three_problems() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({}, path=FAKE)
    assert len(info.value.problems) == 3


@given(st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True))
def test_any_unknown_top_level_key_is_named(key: str) -> None:
    known = {"inputs", "origins", "grid", "run", "scoring", "output", "population", "privacy",
             "crimes", "schemes", "columns"}  # fmt: skip
    if key in known:
        return
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw(**{key: {}}), path=FAKE)
    assert f"key '{key}'" in str(info.value)


def test_load_config_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert str(tmp_path / "nope.toml") in str(info.value)
    assert "file not found" in str(info.value)


def test_load_config_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text("[inputs\nareas = ", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "is not valid TOML" in str(info.value)
    assert "Fix: fix the syntax" in str(info.value)


def test_load_config_reports_unknown_keys_with_the_real_file(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        '[inputs]\nareas = "a"\npopulation = "p"\nsignups = "s"\n[grid]\nres = 9\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "'grid.res'" in str(info.value)


def test_settings_added_for_real_exports() -> None:
    config = config_from_dict(
        raw(
            origins={"max_unmapped": 0.2},
            areas={"merge_duplicates": True},
            grid={"resolution": 7, "max_cells": 50_000},
            run={"timezone": "Europe/Dublin"},
            columns={"signups": {"joined_format": "month-first"},
                     "ratings": {"rated_at_format": "%d.%m.%Y %H:%M"}},
        ),
        path=FAKE,
    )  # fmt: skip
    assert config.origins.max_unmapped == 0.2
    assert config.areas.merge_duplicates is True
    assert config.grid.max_cells == 50_000
    assert config.run.timezone == "Europe/Dublin"
    assert config.columns_for("signups")["joined_format"] == "month-first"
    assert config.columns_for("ratings")["rated_at_format"] == "%d.%m.%Y %H:%M"
    # the map's resolution follows a grid coarser than its default of 8
    assert config.representation.map_resolution == 7
    defaults = config_from_dict(raw(), path=FAKE)
    assert (defaults.origins.max_unmapped, defaults.run.timezone) == (0.05, "Europe/London")
    assert defaults.representation.map_resolution == 8
