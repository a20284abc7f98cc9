"""The bad-input corpus (`tests/data/bad/`): every case is a clean stop (exit code, one message
naming the file and the fix, nothing written) or a run with the bad rows in `rejects/` with a
reason and counted in the manifest; never a traceback, never a silent drop."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin
from tiny import REALDATA, needs_realdata, write_world
from typer.testing import CliRunner

from targeting.cli import app

BAD = Path(__file__).resolve().parent / "data" / "bad"
runner = CliRunner()


def _world(tmp_path: Path, **replace: str) -> Path:
    """The tiny world with some inputs replaced by corpus files (config key -> corpus file)."""
    config = write_world(tmp_path, with_bad_rows=False)
    text = config.read_text(encoding="utf-8")
    for key, name in replace.items():
        shutil.copy(BAD / name, tmp_path / name)
        lines = [f'{key} = "{name}"' if line.startswith(f"{key} =") else line
                 for line in text.splitlines()]  # fmt: skip
        if not any(line.startswith(f"{key} =") for line in text.splitlines()):
            lines.insert(1, f'{key} = "{name}"')
        text = "\n".join(lines) + "\n"
    config.write_text(text, encoding="utf-8")
    return config


def _add_input(config: Path, line: str) -> None:
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[inputs]\n", f"[inputs]\n{line}\n", 1), encoding="utf-8")


def _stop(config: Path, *fragments: str, code: int = 3) -> None:
    result = runner.invoke(app, ["--quiet", "run", str(config)])
    assert result.exit_code == code, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    message = " ".join(result.stderr.split())
    for fragment in fragments:
        assert fragment in message, message
    assert "Fix:" in result.stderr or "fix" in result.stderr.lower()
    assert not (config.parent / "out").exists()  # nothing written


def _run(config: Path) -> dict:
    result = runner.invoke(app, ["--quiet", "run", str(config)])
    assert result.exit_code == 0, result.output
    return json.loads((config.parent / "out" / "manifest.json").read_text())


@pytest.mark.parametrize(
    ("key", "name", "fragments"),
    [
        ("signups", "signups_no_location.csv", ["signups_no_location.csv", "location"]),
        ("signups", "signups_empty.csv", ["signups_empty.csv", "empty"]),
        ("areas", "areas_truncated.geojson", ["areas_truncated.geojson"]),
        ("areas", "areas_overlapping.geojson", ["areas overlap", "E05000001 and E05000002"]),
    ],
)
def test_unusable_files_stop_cleanly(
    tmp_path: Path, key: str, name: str, fragments: list[str]
) -> None:
    _stop(_world(tmp_path, **{key: name}), *fragments)


def test_bad_signup_rows_are_rejected_each_with_its_reason(tmp_path: Path) -> None:
    config = _world(tmp_path, signups="signups_bad_rows.csv")
    # its one odd origin label is half of the two usable rows: let the run go on
    config.write_text(
        config.read_text() + "\n[run]\nas_of = 2018-12-31\n\n[origins]\nmax_unmapped = 1\n",
        encoding="utf-8",
    )
    manifest = _run(config)
    rejects = pd.read_csv(tmp_path / "out" / "rejects" / "signups.csv", dtype=str)
    by_id = dict(zip(rejects["user_id"] + "@" + rejects["joined"], rejects["reason"], strict=True))
    assert by_id == {
        "S1@2018-01-02": "outside areas",  # latitude and longitude swapped
        "Z1@2018-01-03": "invalid latitude/longitude",  # 0,0 is a missing value, not a place
        "N1@2018-01-04": "no location",
        "B1@2018-01-05": "invalid latitude/longitude",  # British National Grid metres
        "G1@2018-01-06": "duplicate user_id",
        "F1@2019-06-01": "joined after as_of",
        "D1@someday": "unparseable joined date",
        "E1@2018-01-08": "unknown status",
    }
    entry = manifest["inputs"]["signups"]
    assert entry["rows_read"] == 10 and entry["rows_used"] == 2 and entry["rows_rejected"] == 8
    # an origin with no mapping is a counted warning, not a reject
    assert manifest["origins"]["unmapped_signup_origins"] == {"Martian": "<10"}


def test_bad_census_rows_are_rejected_and_parts_above_total_too(tmp_path: Path) -> None:
    config = _world(tmp_path / "a", population="census_bad_rows.csv")
    manifest = _run(config)
    assert manifest["inputs"]["population"]["reject_reasons"] == {
        "negative count": 1, "non-numeric count in column Pakistani": 1,
    }  # fmt: skip
    config = _world(tmp_path / "b", population="census_parts_above_total.csv")
    manifest = _run(config)
    assert manifest["inputs"]["population"]["reject_reasons"] == {
        "origins add up to more than Persons by over the tolerance": 1,
    }


def test_a_gap_between_areas_leaves_residents_unallocated_and_counted(tmp_path: Path) -> None:
    config = _world(tmp_path, areas="areas_with_gap.geojson")
    text = config.read_text()
    config.write_text(text.replace('areas = "wards.gpkg"\n', ""), encoding="utf-8")
    manifest = _run(config)
    # OA2 (all of old ward B, 200 residents) loses the 100 m strip in the gap: 10% of it
    assert manifest["unallocated_residents"] > 15


def test_shapefile_without_prj_stops(tmp_path: Path) -> None:
    config = write_world(tmp_path, with_bad_rows=False)
    wards = gpd.read_file(tmp_path / "wards.gpkg")
    wards.to_file(tmp_path / "wards.shp")
    (tmp_path / "wards.prj").unlink()
    config.write_text(config.read_text().replace("wards.gpkg", "wards.shp"), encoding="utf-8")
    _stop(config, "wards.shp", "CRS")


def test_zero_byte_raster_stops_and_a_raster_in_another_crs_works(tmp_path: Path) -> None:
    config = write_world(tmp_path / "a", with_bad_rows=False)
    (tmp_path / "a" / "pop.tif").write_bytes(b"")
    _add_input(config, 'population_raster = "pop.tif"')
    _stop(config, "pop.tif")
    config = write_world(tmp_path / "b", with_bad_rows=False)
    with rasterio.open(
        tmp_path / "b" / "pop.tif", "w", driver="GTiff", height=40, width=40, count=1,
        dtype="float32", crs="EPSG:4326", transform=from_origin(-2.02, 52.49, 0.001, 0.001),
    ) as dst:  # fmt: skip
        dst.write(np.ones((1, 40, 40), dtype="float32"))
    _add_input(config, 'population_raster = "pop.tif"')
    manifest = _run(config)
    assert manifest["inputs"]["population_raster"]["rows_read"] > 0


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8-sig", "crlf"])
def test_encodings_and_line_ends_read_the_same(tmp_path: Path, encoding: str) -> None:
    config = write_world(tmp_path, with_bad_rows=False)
    census = tmp_path / "census.csv"
    text = census.read_text(encoding="utf-8").replace("LAD", "Région")
    if encoding == "crlf":
        census.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    else:
        census.write_bytes(text.encode(encoding))
    manifest = _run(config)
    assert manifest["inputs"]["population"]["rows_rejected"] == 0
    assert manifest["unallocated_residents"] == pytest.approx(50, rel=1e-5)


def test_corrupt_geopackage_stops(tmp_path: Path) -> None:
    config = write_world(tmp_path, with_bad_rows=False)
    (tmp_path / "wards.gpkg").write_bytes(b"SQLite format 3\x00" + b"\x13" * 200)
    _stop(config, "wards.gpkg")


def test_fractional_residents_are_kept(tmp_path: Path) -> None:
    """Population estimates are often fractional (modelled); they are used as given."""
    config = write_world(tmp_path, with_bad_rows=False)
    census = tmp_path / "census.csv"
    census.write_text(
        census.read_text().replace("300,100,200", "300.5,100.25,200.25"), encoding="utf-8"
    )
    manifest = _run(config)
    assert manifest["inputs"]["population"]["rows_rejected"] == 0
    assert manifest["grid"]["residents_on_grid"] + manifest[
        "unallocated_residents"
    ] == pytest.approx(612.5)


# ---------------------------------------------------------------------------------------------
# Trust on real exports (issue 14): each row of its table of bad input that still got through


def _accounted(manifest: dict) -> None:
    """Every input's rows read are used or rejected."""
    for name, entry in manifest["inputs"].items():
        assert entry["rows_read"] == entry["rows_used"] + entry["rows_rejected"], name


def _append(config: Path, text: str) -> None:
    config.write_text(config.read_text(encoding="utf-8") + "\n" + text + "\n", encoding="utf-8")


def test_signups_without_an_origin_column_stop(tmp_path: Path) -> None:
    _stop(
        _world(tmp_path, signups="signups_no_origin.csv"),
        "signups_no_origin.csv column 'origin': is missing",
        '[columns.signups] origin = "Your column name"',
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_weight_that_is_not_a_number_is_a_config_error(tmp_path: Path, value: str) -> None:
    config = write_world(tmp_path, with_bad_rows=False)
    _append(config, f"[scoring]\nweights = {{ crime = {value} }}")
    _stop(config, "key 'scoring.weights.crime'", "must be a finite number", code=2)


def test_the_manifest_is_strict_json(tmp_path: Path) -> None:
    """NaN and Infinity are not JSON: a manifest holding them breaks the tools that read it."""
    config = write_world(tmp_path, with_bad_rows=False)
    _run(config)

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in manifest.json")

    json.loads((tmp_path / "out" / "manifest.json").read_text(), parse_constant=refuse)


@needs_realdata
def test_a_resolution_too_fine_for_the_areas_is_refused_before_any_work(tmp_path: Path) -> None:
    """Resolution 15 over the West Midlands (902 km2): about a billion cells. Refused from the
    areas alone (measured: 0.5 s), naming the resolution that fits."""
    config = write_world(tmp_path, with_bad_rows=False)
    wards = REALDATA / "boundaries" / "wm_wards_2025.geojson"
    config.write_text(
        config.read_text().replace('areas = "wards.gpkg"', f'areas = "{wards}"'), encoding="utf-8"
    )
    _append(config, "[grid]\nresolution = 15\n[representation]\nmap_resolution = 8")
    _stop(
        config,
        "key 'grid.resolution'",
        "resolution = 15 over these areas (902 km2) makes about 1,010,017,795 cells",
        "GB of memory",
        "use resolution 11 (about 462,357 cells) or coarser",
        code=2,
    )


def test_a_resolution_over_max_cells_is_refused(tmp_path: Path) -> None:
    config = write_world(tmp_path, with_bad_rows=False)
    _append(config, "[grid]\nresolution = 15")
    _stop(config, "key 'grid.resolution'", "resolution = 15", "[grid] max_cells is 2,000,000",
          "use resolution 14", code=2)  # fmt: skip


@pytest.mark.parametrize("resolution", [3, 4, 7])
def test_a_resolution_coarser_than_the_areas_names_the_setting_written(
    tmp_path: Path, resolution: int
) -> None:
    """Cells larger than the areas: the message is about [grid] resolution, the setting the
    user wrote, whether or not map_resolution was written too."""
    config = write_world(tmp_path, with_bad_rows=False)
    _append(
        config,
        f"[grid]\nresolution = {resolution}\n[representation]\nmap_resolution = {resolution}",
    )
    _stop(config, "key 'grid.resolution'", f"resolution = {resolution} makes cells of",
          "larger than the median area (1.00 km2)", "use resolution 8 or finer", code=2)  # fmt: skip


def test_a_coarse_grid_that_fits_the_areas_runs(tmp_path: Path) -> None:
    """Resolution 8 (0.74 km2 cells) over 1 km2 wards: no cell lies wholly inside a ward, and the
    run still completes, with the map's resolution following the grid's."""
    config = write_world(tmp_path, with_bad_rows=False)
    _append(config, "[grid]\nresolution = 8")
    manifest = _run(config)
    assert manifest["grid"]["resolution"] == 8
    assert manifest["representation"]["map_resolution"] == 8
    _accounted(manifest)


def test_areas_with_z_coordinates_are_read_flat(tmp_path: Path) -> None:
    manifest = _run(_world(tmp_path, areas="areas_3d.geojson"))
    assert manifest["inputs"]["areas"]["rows_used"] == 2
    assert manifest["inputs"]["signups"]["rows_rejected"] == 0
    _accounted(manifest)


def test_month_first_dates_are_read_month_first_for_the_whole_column(tmp_path: Path) -> None:
    config = _world(tmp_path, signups="signups_month_first.csv")
    manifest = _run(config)
    # 10/31/2018 can only be month-first, so 01/02/2018 is 2 January, not 1 February
    assert manifest["as_of"] == "2018-10-31"
    assert any("joined dates read month-first (e.g. 10/31/2018" in w for w in manifest["warnings"])
    with duckdb.connect(str(tmp_path / "out" / "targeting.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM cells").fetchone()[0] > 0
    _accounted(manifest)
    assert manifest["inputs"]["signups"]["rows_rejected"] == 0


def test_a_date_column_in_both_orders_stops_naming_an_example_of_each(tmp_path: Path) -> None:
    config = _world(tmp_path, signups="signups_mixed_date_orders.csv")
    _stop(config, "column 'joined': has dates in both orders: 31/10/2018 can only be day-first "
          "and 10/31/2018 only month-first", 'joined_format = "day-first"')  # fmt: skip
    # forcing one order reads the column that way and rejects what does not fit it
    _append(config, '[columns.signups]\njoined_format = "day-first"')
    manifest = _run(config)
    assert manifest["inputs"]["signups"]["reject_reasons"] == {"unparseable joined date": 1}
    _accounted(manifest)


def test_zoned_timestamps_are_dated_in_the_forces_local_time(tmp_path: Path) -> None:
    """00:30 BST on 1 October is in October, although it is 23:30 on 30 September in UTC; 23:30
    UTC on 30 September is 00:30 BST on 1 October."""
    config = _world(tmp_path, signups="signups_zoned.csv")
    _append(config, "[run]\nas_of = 2018-09-30")
    manifest = _run(config)
    rejects = pd.read_csv(tmp_path / "out" / "rejects" / "signups.csv", dtype=str)
    assert dict(zip(rejects["user_id"], rejects["reason"], strict=True)) == {
        "U2": "joined after as_of",
        "U4": "joined after as_of",
    }
    _accounted(manifest)


def test_two_outlines_sharing_a_code_stop_or_are_merged(tmp_path: Path) -> None:
    config = _world(tmp_path, areas="areas_duplicate_code.geojson")
    _stop(config, "1 code(s) have different outlines: E05000002 (features 2, 3)",
          "[areas] merge_duplicates = true")  # fmt: skip
    _append(config, "[areas]\nmerge_duplicates = true")
    manifest = _run(config)
    assert manifest["inputs"]["areas"]["reject_reasons"] == {
        "merged into the first row of its area_code": 1
    }
    # both halves of ward B are one area: no sign-up of B falls "outside areas"
    assert manifest["inputs"]["signups"]["rows_rejected"] == 0
    _accounted(manifest)


def test_an_area_with_no_geometry_stops_naming_it(tmp_path: Path) -> None:
    _stop(
        _world(tmp_path, areas="areas_empty_geometry.geojson"),
        "areas_empty_geometry.geojson area E05000002 (feature 2): has no geometry",
    )


def test_a_semicolon_separated_export_reads_like_a_comma_one(tmp_path: Path) -> None:
    manifest = _run(_world(tmp_path, signups="signups_semicolon.csv"))
    entry = manifest["inputs"]["signups"]
    assert (entry["rows_read"], entry["rows_used"], entry["rows_rejected"]) == (4, 4, 0)
    assert "file layout: semicolon-separated, decimal commas read as points" in entry["warnings"]
    with duckdb.connect(str(tmp_path / "out" / "targeting.duckdb"), read_only=True) as con:
        by_area = dict(
            con.execute("SELECT area_code, sum(registered) FROM cells GROUP BY 1").fetchall()
        )
    assert by_area == {"E05000001": 2, "E05000002": 1}  # as the comma-separated tiny world
    _accounted(manifest)


def test_a_raw_nomis_download_is_read_between_its_title_and_footer(tmp_path: Path) -> None:
    manifest = _run(_world(tmp_path, population="census_nomis_download.csv"))
    entry = manifest["inputs"]["population"]
    assert (entry["rows_read"], entry["rows_rejected"]) == (4, 0)
    assert entry["detected_origins"] == ["Pakistani", "White British"]
    assert any(
        "the table at line 8 (7 title line(s) above it and 2 footer line(s)" in w
        for w in entry["warnings"]
    )
    assert any("3 percentage column(s)" in w for w in entry["warnings"])
    # the same residents as the clean table: OA4's outside half unallocated
    assert manifest["grid"]["residents_on_grid"] + manifest["unallocated_residents"] == (
        pytest.approx(612)
    )
    _accounted(manifest)


def test_percentage_columns_beside_counts_are_not_origins(tmp_path: Path) -> None:
    manifest = _run(_world(tmp_path, population="census_with_percentages.csv"))
    entry = manifest["inputs"]["population"]
    assert entry["rows_rejected"] == 0
    assert entry["detected_origins"] == ["Pakistani", "White British"]
    assert any(
        "2 percentage column(s) beside the counts not read as origins: Pakistani %, "
        "WhiteBrit (percent)" in w
        for w in entry["warnings"]
    )
    _accounted(manifest)


def test_an_as_of_long_after_the_last_sign_up_is_a_warning(tmp_path: Path) -> None:
    config = write_world(tmp_path, with_bad_rows=False)
    _append(config, "[run]\nas_of = 2021-10-31")
    manifest = _run(config)
    assert any(
        "[run] as_of 2021-10-31 is 1,309 days after the last joined date (2018-04-01)" in w
        for w in manifest["warnings"]
    )


def test_representation_origin_typo_suggests_the_nearest(tmp_path: Path) -> None:
    config = write_world(tmp_path, with_bad_rows=False)
    _run(config)
    result = runner.invoke(app, ["representation", str(config), "--origin", "Pakistan"])
    assert result.exit_code == 2
    assert "did you mean Pakistani?" in " ".join(result.stderr.split())
    found = runner.invoke(app, ["representation", str(config), "--origin", "pakistani"])
    assert found.exit_code == 0 and "Pakistani" in found.stdout
    drawn = runner.invoke(app, ["--quiet", "map", str(config), "--origin", "white british"])
    assert drawn.exit_code == 0, drawn.output
    assert '"White British"' in (tmp_path / "out" / "map.html").read_text()


def test_every_missing_input_is_reported_at_once(tmp_path: Path) -> None:
    config = write_world(tmp_path, with_bad_rows=False)
    for name in ("census.csv", "signups.csv"):
        (tmp_path / name).unlink()
    _add_input(config, 'ratings = "ratings.csv"\ncrimes = ["crime/*.csv"]')
    _stop(config, "4 problem(s)", "census.csv: file not found", "signups.csv: file not found",
          "ratings.csv: file not found", "crime/*.csv: matches no file")  # fmt: skip


@pytest.mark.parametrize("command", ["representation", "map"])
def test_reading_a_run_before_any_run_has_its_own_exit_code(tmp_path: Path, command: str) -> None:
    config = write_world(tmp_path, with_bad_rows=False)
    result = runner.invoke(app, [command, str(config)])
    assert result.exit_code == 5
    message = " ".join(result.stderr.split())
    assert "no finished run in" in message and "targeting run" in message


def test_unmapped_origins_over_the_share_stop_and_say_how_to_map_them(tmp_path: Path) -> None:
    """One sign-up of three with an origin says "Martian": a third unmapped, over 5%."""
    config = write_world(tmp_path, with_bad_rows=False)
    signups = tmp_path / "signups.csv"
    signups.write_text(
        signups.read_text().replace("England,deleted", "Martian,deleted"), encoding="utf-8"
    )
    _stop(config, "signups.csv column 'origin': 33.3% of the sign-ups with a known origin have a "
          "label that maps to no population category ([origins] max_unmapped is 5%)",
          "'Martian' (<10): not a label the crosswalk knows",
          "a line such as 'Martian,<category>'", "the categories are: Pakistani, White British")  # fmt: skip
    _append(config, '[origins]\nmap = "map.csv"')
    (tmp_path / "map.csv").write_text("origin,population_origin\nmartian,white british\n")
    manifest = _run(config)
    labels = {row["label"]: row for row in manifest["origins"]["labels"]}
    assert labels["Martian"]["population_origin"] == "White British"
    assert labels["Martian"]["how"] == "your [origins] map"
    _accounted(manifest)
