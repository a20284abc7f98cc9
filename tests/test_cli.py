"""The CLI: thin commands, one clear message and an exit code per kind of failure."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from pages import unpublished_numbers
from tiny import write_world
from typer.testing import CliRunner

from targeting import __version__
from targeting.cli import app
from targeting.config import load_config

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"targeting {__version__}"


@pytest.mark.parametrize("command", ["run", "validate", "demo"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example: targeting " + command in result.stdout


def test_run_prints_the_output_folder_and_writes_it(tmp_path: Path) -> None:
    config = write_world(tmp_path)
    result = runner.invoke(app, ["--quiet", "run", str(config)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str((tmp_path / "out").resolve())
    assert (tmp_path / "out" / "cells.parquet").is_file()
    assert result.stderr == ""


def test_run_summary_on_stderr_names_rejects_and_warnings(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(write_world(tmp_path))])
    assert result.exit_code == 0
    assert "signups" in result.stderr and "rejected" in result.stderr
    assert "Persons above the sum" in result.stderr


def test_bad_config_exits_2_naming_key_and_file(tmp_path: Path) -> None:
    config = write_world(tmp_path)
    config.write_text(config.read_text() + "\n[grid]\nresolution = 9\nsize = 3\n")
    result = runner.invoke(app, ["run", str(config)])
    assert result.exit_code == 2
    assert "grid.size" in result.stderr and str(config) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unusable_input_exits_3_with_file_problem_and_fix(tmp_path: Path) -> None:
    config = write_world(tmp_path)
    (tmp_path / "census.csv").write_text("", encoding="utf-8")
    result = runner.invoke(app, ["run", str(config)])
    assert result.exit_code == 3
    assert "census.csv" in result.stderr
    assert "empty" in result.stderr and "Fix:" in result.stderr
    assert not (tmp_path / "out").exists()


def test_validate_writes_report(tmp_path: Path) -> None:
    config = write_world(tmp_path)
    result = runner.invoke(app, ["-q", "validate", str(config), "--out", str(tmp_path / "check")])
    assert result.exit_code == 0
    assert (tmp_path / "check" / "validation.json").is_file()
    assert (tmp_path / "check" / "rejects" / "signups.csv").is_file()


def test_demo_runs_end_to_end_and_tells_the_story(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--quiet", "demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "demo" / "output"
    assert result.stdout.strip() == str(out.resolve())
    for name in ("cells.parquet", "manifest.json", "targeting.duckdb", "rejects/signups.csv"):
        assert (out / name).is_file(), name
    with duckdb.connect(str(out / "targeting.duckdb"), read_only=True) as con:
        lowest = con.execute(
            "SELECT area_name FROM areas ORDER BY registered / residents LIMIT 3"
        ).fetchall()
        shares = dict(
            con.execute(
                """SELECT origin, sum(registered) / (SELECT sum(registered) FROM cell_origins)
                   FROM cell_origins WHERE origin IN ('Pakistani', 'Bangladeshi') GROUP BY origin"""
            ).fetchall()
        )
        res = dict(
            con.execute(
                """SELECT origin, sum(residents) / (SELECT sum(residents) FROM cell_origins)
                   FROM cell_origins WHERE origin IN ('Pakistani', 'Bangladeshi') GROUP BY origin"""
            ).fetchall()
        )
    assert ("Tyburn",) in lowest
    assert res["Pakistani"] == pytest.approx(0.0485, abs=0.0002)
    assert shares["Pakistani"] == pytest.approx(0.0324, abs=0.001)
    assert res["Bangladeshi"] == pytest.approx(0.0136, abs=0.0002)
    assert shares["Bangladeshi"] == pytest.approx(0.0078, abs=0.0005)
    # representation.csv reproduces the report's shares the demo was built from
    table = pd.read_csv(out / "representation.csv")
    force = table[(table["level"] == "force") & (table["origin_level"] == "origin")].set_index(
        "origin"
    )
    assert force.loc["Pakistani", "target_rate"] == pytest.approx(0.0485, abs=0.0002)
    assert force.loc["Pakistani", "actual_rate"] == pytest.approx(0.0324, abs=0.001)
    assert force.loc["Bangladeshi", "actual_rate"] == pytest.approx(0.0078, abs=0.0005)
    assert bool(force.loc["Pakistani", "under_represented"]) is True
    # Tyburn: fewest sign-ups per resident, the least representative of them, the largest gap
    with duckdb.connect(str(out / "targeting.duckdb"), read_only=True) as con:
        gaps = con.execute(
            """SELECT area_name FROM area_gaps WHERE level = 'area'
               ORDER BY parity_gap_per_100 DESC LIMIT 1"""
        ).fetchone()
        largest = con.execute(
            """SELECT area_name FROM area_gaps WHERE level = 'area'
               ORDER BY parity_gap DESC LIMIT 1"""
        ).fetchone()
        fewest = con.execute(
            """SELECT area_name FROM area_gaps WHERE level = 'area'
               ORDER BY signups_per_1000 LIMIT 1"""
        ).fetchone()
    assert gaps == ("Tyburn",) and fewest == ("Tyburn",) and largest == ("Tyburn",)
    tyburn = table[(table["area_name"] == "Tyburn") & (table["origin_level"] == "origin")]
    assert tyburn["under_represented"].fillna(False).astype(bool).sum() >= 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["signups"]["rows_read"] == 53_408
    assert manifest["inputs"]["schemes"]["rows_used"] == 653
    assert manifest["inputs"]["signups"]["watch_role_counts"]["coordinator"] <= 1_146

    # the week's plan: Tyburn among the top areas for door-knocking, and the reason says why
    ranked = pd.read_csv(out / "ranked_areas.csv")
    contract = ["rank", "area_code", "area_name", "parent_code", "score", "tactic", "parity_gap",
                "penetration_gap", "expected_signups", "reason", "representation_gap",
                "watch_gap", "crime", "sac", "low_satisfaction", "low_penetration"]  # fmt: skip
    assert set(contract) <= set(ranked.columns)
    assert ranked["rank"].tolist() == list(range(1, 41))
    assert ranked["score"].is_monotonic_decreasing
    tyburn_row = ranked.set_index("area_name").loc["Tyburn"]
    assert tyburn_row["rank"] <= 3 and tyburn_row["tactic"] == "door"
    assert "sign-ups short of parity" in tyburn_row["reason"]
    assert "Pakistani" in tyburn_row["reason"]
    hotspots = pd.read_csv(out / "hotspots.csv")
    assert len(hotspots) == 120
    assert {"rank", "hotspot_id", "cell", "area_code", "area_name", "parent_code", "tactic",
            "latitude", "longitude", "score", "parity_gap"} <= set(hotspots.columns)  # fmt: skip
    assert hotspots.groupby("area_code").size().max() <= 12
    assert (hotspots["households"] >= 40).all()
    assert (hotspots["parity_gap"] % 10 == 0).all()  # rounded: a cell's few sign-ups stay hidden
    stations = pd.read_csv(out / "stations.csv")
    assert len(stations) == 5 and (stations["covered_parity_gap"] % 10 == 0).all()
    fences = gpd.read_file(out / "geofences.geojson")
    kml = pyogrio.read_dataframe(out / "geofences.kml")
    assert len(fences) == len(kml) > 0
    assert len(pd.read_csv(out / "geofences_circles.csv")) == 20
    pack = (out / "tasking.html").read_text(encoding="utf-8")
    assert pack.count("OFFICIAL-SENSITIVE") >= 2 and "http" not in pack
    assert "Tyburn" in pack and "B35" in pack  # nearest postcodes of Tyburn's hotspots

    # a rerun against this one shows no movement
    again = runner.invoke(
        app, ["--quiet", "run", str(tmp_path / "demo" / "demo.toml"), "--previous", str(out)]
    )
    assert again.exit_code == 0, again.stderr
    tasking = pd.read_csv(out / "tasking.csv")
    areas_rows = tasking[tasking["item"] == "area"]
    assert len(areas_rows) == 40 and (areas_rows["rank_change"] == 0).all()
    assert set(tasking["item"]) == {"area", "hotspot", "station"}
    assert unpublished_numbers(out) == []  # the change columns too
    # the report's first screen says what changed: nothing, against the same run
    report = (out / "report.md").read_text(encoding="utf-8")
    since = report[report.index("### Since the last run") : report.index("## Under-represented")]
    assert (
        "Sign-ups with a known origin: " in since
        and ", – 0 more since the run to 31 October 2018." in since
    )
    gaps = pd.read_csv(out / "ranked_areas.csv")["parity_gap"].sum()
    assert f"parity gaps add up to {gaps:,.0f}, – unchanged since the run to 31 October" in since
    assert "– same place as last run." in report


@pytest.mark.parametrize("name", ["nhw_week", "weekly_tasking"])
def test_shipped_pipelines_are_valid_configs(name: str) -> None:
    config = load_config(Path(__file__).resolve().parents[1] / "pipelines" / f"{name}.toml")
    assert config.inputs.areas.name == "areas.geojson"
    assert config.output.dir.name == name


def test_quiet_works_after_the_command_too(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(write_world(tmp_path)), "--quiet"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""


def test_output_folder_holding_the_inputs_is_refused(tmp_path: Path) -> None:
    config = write_world(tmp_path)
    config.write_text(config.read_text().replace('dir = "out"', 'dir = "."'))
    result = runner.invoke(app, ["run", str(config)])
    assert result.exit_code == 4
    assert "choose a folder of its own" in result.stderr
    assert (tmp_path / "signups.csv").is_file() and config.is_file()


def test_representation_command_prints_a_finished_runs_table(tmp_path: Path) -> None:
    config = write_world(tmp_path)
    missing = runner.invoke(app, ["representation", str(config)])
    assert missing.exit_code == 5  # no finished run yet: its own exit code
    assert "run `targeting run`" in missing.stderr
    runner.invoke(app, ["-q", "run", str(config)])
    result = runner.invoke(
        app, ["representation", str(config), "--level", "area", "--origin", "pakistani"],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "Pakistani" in result.stdout and "White British" not in result.stdout
    # two sign-ups in ward A (one Pakistani): below the threshold, so shown as suppressed
    assert "suppressed" in result.stdout
    bad = runner.invoke(app, ["representation", str(config), "--level", "ward"])
    assert bad.exit_code != 0


def test_segments_build_then_a_run_reports_who_is_missing_by_segment(tmp_path: Path) -> None:
    config = write_world(tmp_path)
    built = runner.invoke(
        app, ["segments", "build", str(config), "--k", "2", "--out", str(tmp_path / "seg")]
    )
    assert built.exit_code == 0, built.output
    folder = tmp_path / "seg"
    assert built.stdout.strip() == str(folder.resolve())
    assert "segments = " in built.stderr  # tells the user what to add to the config
    table = pd.read_csv(folder / "segments.csv")
    assert sorted(table["area_code"]) == ["OA1", "OA2", "OA3", "OA4"]
    assert set(table["segment"]) == {"S01", "S02"}
    assert json.loads((folder / "segments.json").read_text())["k_chosen_by"] == "given"
    text = config.read_text(encoding="utf-8").replace(
        "[inputs]\n",
        f'[inputs]\nsegments = "{folder / "segments.csv"}"\n'
        f'segment_descriptions = "{folder / "segment_descriptions.csv"}"\n',
    )
    config.write_text(text, encoding="utf-8")
    done = runner.invoke(app, ["--quiet", "run", str(config)])
    assert done.exit_code == 0, done.output
    out = Path(done.stdout.strip())
    by_segment = pd.read_csv(out / "segment_representation.csv")
    # three sign-ups in all: every count is under the threshold, so every one is withheld
    assert by_segment["suppressed"].all() and by_segment["signups"].isna().all()
    assert by_segment["households"].sum() > 0


# what an instant answer must not load: the libraries of the work itself
HEAVY = ("pandas", "numpy", "geopandas", "shapely", "duckdb", "sklearn", "statsmodels", "folium",
         "scipy", "highspy", "pyarrow", "plotly", "rasterio", "h3", "matplotlib")  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["run", "--help"], ["trial", "--help"], ["portal", "--help"]],
)
def test_help_and_version_load_none_of_the_heavy_libraries(args: list[str]) -> None:
    """`targeting --help` and friends import the command line only (`python -X importtime`
    lists every module a process imports)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "targeting", *args],
                          capture_output=True, text=True, check=True)  # fmt: skip
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}  # fmt: skip
    assert "targeting.cli" in imported  # the listing is what it claims to be
    loaded = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert loaded == [], loaded
    assert "targeting" in done.stdout or "Usage" in done.stdout
