"""Reliability and privacy across the whole run: reruns give the same bytes, a killed run leaves
the previous output intact, no person's id or point leaves in a shared output, and hostile text
is escaped in HTML, neutralised in CSV and kept exactly in GeoJSON and KML."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd
import pytest
from tiny import write_world

from targeting.pipeline import run

# template syntax too: a page put together by Jinja must not run a name as template code
HOSTILE = (
    '=HYPERLINK("http://x")<img src=x onerror=alert(1)>{{ 7*7 }}{% if %}\u202eevil\u0007'
    + "x" * 3000
)


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_output: Path) -> dict[str, object]:
    """A copy of the shared demo run, inputs and output, that these tests may run again in place
    (its config's paths are relative, so the copy runs on its own files)."""
    folder = tmp_path_factory.mktemp("reliable") / "demo"
    shutil.copytree(demo_output.parent, folder)
    out = folder / demo_output.name
    # the manifest names its inputs by absolute path: read as if the run had been made here
    manifest = (out / "manifest.json").read_text().replace(str(demo_output.parent), str(folder))
    return {"config": folder / "demo.toml", "out": out, "digests": _digests(out),
            "manifest": json.loads(manifest)}  # fmt: skip


def test_killed_run_leaves_the_previous_output_and_a_rerun_is_identical(
    demo: dict[str, object],
) -> None:
    out = Path(str(demo["out"]))
    before = _digests(out)
    process = subprocess.Popen(
        [sys.executable, "-m", "targeting", "--quiet", "run", str(demo["config"])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(6)  # into ingest or the grid, well before the swap
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert _digests(out) == before  # nothing of the killed run reached the output
    again = run(Path(str(demo["config"])))
    leftovers = [p.name for p in out.parent.iterdir() if ".tmp-" in p.name]
    assert leftovers == []  # the killed run's temporary folder was cleared
    after = _digests(again.out_dir)
    differ = sorted(k for k in after if after[k] != before.get(k))
    # the store's bytes and the manifest (its time) change; every shared file is identical
    assert differ == ["manifest.json", "targeting.duckdb"]
    m1 = dict(demo["manifest"])  # type: ignore[call-overload]
    m2 = json.loads((again.out_dir / "manifest.json").read_text())
    m1.pop("created_at"), m2.pop("created_at")
    assert m1 == m2  # including the store's digest by table contents


def test_no_person_leaves_in_a_shared_output(demo: dict[str, object]) -> None:
    out = Path(str(demo["out"]))
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["restricted_outputs"]) >= {"targeting.duckdb", "cells.parquet"}
    shared = [out / name for name in manifest["shareable_outputs"]]
    assert {p.name for p in shared} >= {"map.html", "report.html", "tasking.csv", "hotspots.csv"}
    signups = pd.read_csv(Path(str(demo["config"])).parent / "signups.csv", dtype=str,
                          keep_default_na=False)  # fmt: skip
    ids = set(signups["user_id"].sample(500, random_state=3))
    points = signups[signups["latitude"] != ""].sample(300, random_state=4)
    # a point as any of our formats would write it (one coordinate alone can match by chance)
    pairs = [
        form.format(lat=lat, lon=lon)
        for lat, lon in zip(points["latitude"], points["longitude"], strict=True)
        for form in ("{lat},{lon}", "{lon},{lat}", "{lon}, {lat}", "[{lat},{lon}]")
    ]
    user_postcodes = {p for p in signups["postcode"] if p}
    for path in shared:
        text = path.read_text(encoding="utf-8", errors="ignore")
        assert not any(uid in text for uid in ids), path.name
        assert not any(pair in text for pair in pairs), path.name
        if path.suffix == ".csv" and path.name not in (
            "tasking.csv",
            "hotspots.csv",
            "stations.csv",
        ):
            # the week's lists give a hotspot's or station's nearest postcode (a place officers
            # find their way by, not a person's home)
            assert not any(pc in text for pc in list(user_postcodes)[:300]), path.name


def test_hostile_names_are_escaped_neutralised_and_kept(tmp_path: Path) -> None:
    config = write_world(tmp_path)
    wards = gpd.read_file(tmp_path / "wards.gpkg")
    wards.loc[0, "WD13NM"] = HOSTILE
    wards.to_file(tmp_path / "wards.gpkg", driver="GPKG")
    out = run(config).out_dir
    for page in ("report.html", "tasking.html", "map.html"):
        html = (out / page).read_text(encoding="utf-8")
        assert "<img src=x" not in html, page
        assert "onerror=alert(1)>" not in html, page
        assert "{{ 7*7 }}{% if %}" in html, page  # as text, not run as a template
    ranked = pd.read_csv(out / "ranked_areas.csv", dtype=str, keep_default_na=False)
    hostile = ranked[ranked["area_code"] == "E05000001"]["area_name"].iloc[0]
    assert hostile.startswith("'=HYPERLINK")  # neutralised for spreadsheets
    assert hostile[1:] == HOSTILE  # otherwise kept whole: long, right-to-left mark and all
    with duckdb.connect(str(out / "targeting.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT area_name FROM areas WHERE area_code = 'E05000001'").fetchone()
    assert stored == (HOSTILE,)  # the analyst store keeps the name exactly
