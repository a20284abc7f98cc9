"""Atomic output folders and the DuckDB store."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from targeting.errors import OutputError
from targeting.store import atomic_output_dir, write_manifest, write_store


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
