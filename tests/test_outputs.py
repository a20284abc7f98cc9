"""Writing a run's outputs: what needs no plan while the plan is made, the rest after."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from tiny import write_world

import targeting.outputs as outputs
from targeting.errors import OutputError
from targeting.pipeline import run

# the store's tables from the plan (or, for the segments, from its areas' deprivation)
OF_PLAN = {"ranked_areas", "hotspots", "stations", "plan"}


def test_the_store_holds_the_tables_written_before_and_after_the_plan(demo_output: Path) -> None:
    """Both writes land in one store: the tables that need no plan and the plan's."""
    with duckdb.connect(str(demo_output / "targeting.duckdb"), read_only=True) as con:
        tables = {name for (name,) in con.execute("SHOW TABLES").fetchall()}
        hotspots = con.execute("SELECT count(*) FROM hotspots").fetchone()
    assert tables >= OF_PLAN
    assert {"cells", "cell_origins", "representation", "area_gaps", "signup_days"} <= tables
    assert {"cell_segments", "segment_representation"} <= tables  # the demo has segments
    assert hotspots is not None
    assert hotspots[0] == len(pd.read_csv(demo_output / "hotspots.csv"))


def test_the_map_child_is_forked_only_once_the_early_writes_are_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child forked while another thread writes could inherit a lock that thread held: the
    map's child waits for the writes made while the plan was made, however slow."""
    events: list[tuple[str, float]] = []
    write_early = outputs.write_before_plan
    start_child = outputs.in_background

    def write_early_slowly(*args: object, **kwargs: object) -> None:
        time.sleep(0.5)
        write_early(*args, **kwargs)  # type: ignore[arg-type]
        events.append(("written", time.perf_counter()))

    def start_child_noting(*args: object, **kwargs: object) -> object:
        events.append(("forked", time.perf_counter()))
        return start_child(*args, **kwargs)  # type: ignore[arg-type]

    import targeting.pipeline as pipeline

    monkeypatch.setattr(pipeline, "write_before_plan", write_early_slowly)
    monkeypatch.setattr(outputs, "in_background", start_child_noting)
    out = run(write_world(tmp_path)).out_dir
    times = dict(events)
    assert times["written"] <= times["forked"]
    assert (out / "representation.csv").is_file() and (out / "map.html").is_file()


def test_an_error_writing_before_the_plan_stops_the_run_and_keeps_the_last_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_world(tmp_path)
    out = run(config).out_dir
    before = (out / "manifest.json").read_text()

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OutputError("no space left on device")

    import targeting.pipeline as pipeline

    monkeypatch.setattr(pipeline, "write_before_plan", full_disk)
    with pytest.raises(OutputError, match="no space left"):
        run(config)
    assert (out / "manifest.json").read_text() == before
    assert not list(out.parent.glob(f".{out.name}.tmp-*"))
