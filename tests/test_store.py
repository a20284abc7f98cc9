"""Atomic output folders and the DuckDB store."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from pages import unpublished_numbers

from targeting.errors import OutputError
from targeting.store import (
    atomic_output_dir,
    round_as_published,
    write_csv,
    write_manifest,
    write_store,
)


def test_success_replaces_previous_output(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "manifest.json").write_text("{}")
    with atomic_output_dir(target, marker="manifest.json") as tmp:
        assert tmp.parent == tmp_path and tmp != target
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failure_keeps_previous_output_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "manifest.json").write_text("{}")
    with pytest.raises(RuntimeError), atomic_output_dir(target, marker="manifest.json") as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_previous_output_recovered_after_a_crash_between_renames(tmp_path: Path) -> None:
    prev = tmp_path / "out.prev"
    prev.mkdir()
    (prev / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_output_dir(tmp_path / "out", marker="old.txt"):
        raise RuntimeError("stop before writing")
    assert (tmp_path / "out" / "old.txt").read_text() == "old"


def test_refuses_to_replace_a_folder_that_is_not_an_output(tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.mkdir()
    (target / "wards.geojson").write_text("{}")
    with (
        pytest.raises(OutputError, match="not an output folder"),
        atomic_output_dir(target, marker="manifest.json"),
    ):
        pass
    assert (target / "wards.geojson").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_store_tables_are_queryable_with_plain_sql(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    write_store(path, {"cells": pd.DataFrame({"cell": ["89195da49b7ffff"], "residents": [3.5]})})
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT cell, residents FROM cells").fetchall() == [
            ("89195da49b7ffff", 3.5)
        ]


def test_a_store_takes_more_tables_later_and_a_new_one_replaces_it(tmp_path: Path) -> None:
    """A run writes most of its store while the plan is made and adds the plan's tables after;
    writing without `add` starts the file afresh."""
    path = tmp_path / "t.duckdb"
    write_store(path, {"cells": pd.DataFrame({"cell": ["89195da49b7ffff"]})})
    write_store(path, {"plan": pd.DataFrame({"hotspots": [2]})}, add=True)
    with duckdb.connect(str(path), read_only=True) as con:
        assert sorted(n for (n,) in con.execute("SHOW TABLES").fetchall()) == ["cells", "plan"]
        assert con.execute("SELECT hotspots FROM plan").fetchall() == [(2,)]
    write_store(path, {"plan": pd.DataFrame({"hotspots": [3]})})
    with duckdb.connect(str(path), read_only=True) as con:
        assert [n for (n,) in con.execute("SHOW TABLES").fetchall()] == ["plan"]


def test_manifest_hashes_every_output(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "rejects").mkdir()
    (tmp_path / "rejects" / "b.csv").write_text("")
    path = write_manifest(tmp_path, {"unallocated_residents": 0.0})
    manifest = json.loads(path.read_text())
    # sha256 of "x\n1\n", computed with sha256sum
    assert (
        manifest["outputs"]["a.csv"]
        == "daff832f802000e645771a60983c76c963f6ee602a6230e45237bd360e91cc1a"
    )
    assert set(manifest["outputs"]) == {"a.csv", "rejects/b.csv"}
    # a digest already worked out (the store's, while the map is drawn) is taken as given
    known = write_manifest(tmp_path, {}, known={"rejects/b.csv": "given"})
    assert json.loads(known.read_text())["outputs"]["rejects/b.csv"] == "given"


def test_csv_text_that_a_spreadsheet_would_run_is_neutralised(tmp_path) -> None:
    from targeting.store import write_csv

    frame = pd.DataFrame(
        {
            "area_name": ['=HYPERLINK("http://x")', "+44 cmd", "@SUM(A1)", "-2+3", "Tyburn"],
            "count": [1, -2, 3, 4, 5],
            "code": pd.Series(["-5", "E05", "x", "y", "z"], dtype="str"),
        }
    )
    path = tmp_path / "out.csv"
    write_csv(frame, path)
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert back["area_name"].tolist() == [
        "'=HYPERLINK(\"http://x\")", "'+44 cmd", "'@SUM(A1)", "'-2+3", "Tyburn",
    ]  # fmt: skip
    assert back["count"].tolist() == ["1", "-2", "3", "4", "5"]  # numbers stay numbers
    assert back["code"].tolist()[0] == "-5"  # a plain number in text is read as that number
    assert frame["area_name"].iloc[0].startswith("=")  # the input is not changed


def test_round_as_published_known_answers() -> None:
    frame = pd.DataFrame(
        {
            "registered": [3.0, np.nan, 1644.0],
            "households": [300.19446470404836, 12.5, 13.5],  # halves to even, as numpy rounds
            "target_rate": [0.937062937062937, 4.7612700000000005e-67, 1234567.891],
            "score": [0.12345, 0.9995, 1.0],
            "watch_gap": [0.8974358974358975, 0.0, 1.0],  # a score component, like the score
            "expected_signups": [32.400000000000006, 0.94, 2.0],
            "latitude": [52.4848821234, 52.0, 52.1],
            "area_name": ["Tyburn", "Aston", "Nechells"],
        }
    )
    out = round_as_published(frame)
    assert out["registered"].dtype == "Int64" and out["registered"].tolist() == [3, pd.NA, 1644]
    assert out["households"].tolist() == [300, 12, 14]
    assert out["target_rate"].tolist() == [0.937063, 4.76127e-67, 1234570.0]
    assert out["score"].tolist() == [0.123, 1.0, 1.0]
    assert out["watch_gap"].tolist() == [0.897, 0.0, 1.0]
    assert out["expected_signups"].tolist() == [32.4, 0.9, 2.0]
    assert out["latitude"].tolist() == [52.484882, 52.0, 52.1]
    assert out["area_name"].tolist() == frame["area_name"].tolist()
    assert frame["registered"].dtype == float  # the input is left alone


def test_write_csv_publishes_no_float_noise(tmp_path: Path) -> None:
    frame = pd.DataFrame({"parity_gap": [16.200000000000003], "score": [0.937062937062937]})
    write_csv(frame, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == "parity_gap,score\n16,0.937\n"
    # the reader's check finds what the writer would have left without rounding
    frame.to_csv(tmp_path / "raw.csv", index=False)
    assert len(unpublished_numbers(tmp_path)) == 2


def test_every_csv_of_the_demo_run_is_as_published(demo_output: Path) -> None:
    assert unpublished_numbers(demo_output) == []
    hotspots = pd.read_csv(demo_output / "hotspots.csv", dtype=str, keep_default_na=False)
    # every hotspot has its nearest postcode, written as published ("B35 6AB")
    assert hotspots["nearest_postcode"].str.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}").all()
