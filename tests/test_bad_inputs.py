"""The bad-input corpus (`tests/data/bad/`): every case is a clean stop (exit code, one message
naming the file and the fix, nothing written) or a run with the bad rows in `rejects/` with a
reason and counted in the manifest; never a traceback, never a silent drop."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin
from tiny import write_world
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
    config.write_text(config.read_text() + "\n[run]\nas_of = 2018-12-31\n", encoding="utf-8")
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
