"""A batch of runs (a national picture as a run per force): every run in its own process, a
failure reported without stopping the others, and a summary that adds up to the runs' own files."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from tiny import write_world
from typer.testing import CliRunner

from targeting.batch import check_batch, run_batch, run_labels, runs_that_fork
from targeting.cli import app
from targeting.errors import BatchError

runner = CliRunner()


@pytest.fixture(scope="module")
def two_forces(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("batch")
    configs = [write_world(root / "forces" / name) for name in ("east", "west")]
    result = run_batch(configs, out_dir=root / "national", jobs=2)
    assert not result.failed
    return root, configs


def test_batch_summary_adds_up_to_each_runs_own_outputs(two_forces) -> None:
    root, configs = two_forces
    summary = pd.read_csv(root / "national" / "batch.csv")
    assert summary["label"].tolist() == ["east", "west"]
    assert (summary["status"] == "ok").all()
    for label, config in zip(["east", "west"], configs, strict=True):
        row = summary.set_index("label").loc[label]
        out = config.parent / "out"
        cells = pd.read_parquet(out / "cells.parquet")
        assert row["residents"] == pytest.approx(cells["residents"].sum(), rel=1e-9)
        assert row["cells"] == cells["cell"].nunique()
        assert row["top_area_code"] == pd.read_csv(out / "ranked_areas.csv")["area_code"].iloc[0]
        assert row["peak_rss_mb"] > 50 and row["seconds"] > 0
    # each run ran in a process of its own, so each has its own peak memory, not a shared one
    assert summary["out_dir"].nunique() == 2


def test_batch_representation_is_each_runs_force_rows_unchanged(two_forces) -> None:
    root, configs = two_forces
    stacked = pd.read_csv(root / "national" / "representation_by_run.csv", dtype=str)
    assert set(stacked["level"]) == {"force"}
    for label, config in zip(["east", "west"], configs, strict=True):
        own = pd.read_csv(config.parent / "out" / "representation.csv", dtype=str)
        own = own[own["level"] == "force"].reset_index(drop=True)
        mine = stacked[stacked["run"] == label].drop(columns="run").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, own)
    # no national total is formed, so a count withheld in one force cannot be recovered from it
    assert "national" not in set(stacked["area_code"])


def test_batch_index_links_every_runs_pages_offline(two_forces) -> None:
    root, _ = two_forces
    page = (root / "national" / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+)"', page)
    assert len(links) == 6  # map, report and tasking pack of each of two runs
    for link in links:
        assert not link.startswith(("http:", "https:", "/"))
        assert (root / "national" / link).resolve().is_file()
    assert page.count("OFFICIAL-SENSITIVE") == 2


def test_a_failed_run_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    good = write_world(tmp_path / "good")
    bad = write_world(tmp_path / "bad")
    (bad.parent / "signups.csv").unlink()
    result = runner.invoke(app, ["batch", str(good), str(bad), "--out", str(tmp_path / "nat")])
    assert result.exit_code == 1
    assert "1 of 2 runs failed (bad)" in result.output
    summary = pd.read_csv(tmp_path / "nat" / "batch.csv").set_index("label")
    assert summary.loc["good", "status"] == "ok"
    assert summary.loc["bad", "status"] == "failed"
    assert "signups.csv" in summary.loc["bad", "error"]
    assert (good.parent / "out" / "map.html").is_file()
    assert "failed: " in (tmp_path / "nat" / "index.html").read_text(encoding="utf-8")


def test_batch_checks_every_config_before_any_run(tmp_path: Path) -> None:
    one = write_world(tmp_path / "a")
    two = write_world(tmp_path / "b")
    two.write_text(one.read_text(encoding="utf-8").replace('dir = "out"', 'dir = "../a/out"'))
    broken = write_world(tmp_path / "c")
    broken.write_text(broken.read_text(encoding="utf-8") + "\n[grid]\nresolutoin = 9\n")
    with pytest.raises(BatchError) as info:
        check_batch([one, two, broken])
    message = str(info.value)
    assert "b and a both write" in message
    assert "c: config" in message and "resolutoin" in message
    result = runner.invoke(app, ["batch", str(one), str(two), "--out", str(tmp_path / "n")])
    assert result.exit_code == 1 and "both write" in result.output
    assert not (tmp_path / "a" / "out").exists()  # nothing ran


def test_run_labels_are_folder_names_unless_folders_repeat(tmp_path: Path) -> None:
    configs = [
        tmp_path / "T00" / "synth.toml",
        tmp_path / "wm" / "a.toml",
        tmp_path / "wm" / "b.toml",
    ]
    assert run_labels(configs) == ["T00", "wm/a", "wm/b"]


def test_workers_are_forked_from_a_process_that_has_loaded_the_engine() -> None:
    """Each run still gets a fresh process, but forked from a server that loaded the engine
    once, not importing it again (about two seconds a force)."""
    import importlib
    import sys

    from targeting.batch import PRELOAD, _worker_context

    context = _worker_context()
    if sys.platform == "linux":
        assert context is not None and context.get_start_method() == "forkserver"
    for name in PRELOAD:  # every name is a module there is to load
        importlib.import_module(name)


def test_only_runs_that_would_leave_a_core_idle_fork() -> None:
    """Two at a time on two cores: only the last run forks (it ends alone); one at a time on
    two cores: every run; more workers than cores: none."""
    assert runs_that_fork(27, workers=2, cores=2) == [False] * 26 + [True]
    assert runs_that_fork(3, workers=1, cores=2) == [True, True, True]
    assert runs_that_fork(2, workers=2, cores=4) == [True, True]
    assert runs_that_fork(5, workers=4, cores=2) == [False] * 5
    assert runs_that_fork(0, workers=2, cores=2) == []
