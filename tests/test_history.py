"""The history store: sign-ups and ratings by day, snapshots of a run and of earlier dates,
adding (once), refusing another configuration, and the commands."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from targeting.cli import app
from targeting.errors import HistoryError
from targeting.history import (
    add_run,
    add_snapshots,
    earlier_dates,
    list_snapshots,
    ratings_to_days,
    read_finished_run,
    read_history,
    run_snapshots,
    signups_to_days,
    visits_to_days,
)

runner = CliRunner()


def test_signups_by_day_leave_out_deleted_and_keep_unknown_origin() -> None:
    signups = pd.DataFrame({
        "area_code": ["A", "A", "A", "B", "A"],
        "origin": ["Polish", "Polish", None, "Polish", "Polish"],
        "joined": pd.to_datetime(["2018-01-02 09:00", "2018-01-02 18:30", "2018-01-03 00:00",
                                  "2018-01-02 00:00", "2018-01-02 00:00"]),
        "status": ["active", "active", "comms_issue", "active", "deleted"],
    })  # fmt: skip
    days = signups_to_days(signups)
    assert days["signups"].sum() == 4  # the deleted one is not counted
    two = days[(days["area_code"] == "A") & (days["origin"] == "Polish")]
    assert two["signups"].tolist() == [2]  # two times of one day are one day
    assert two["joined"].iloc[0] == pd.Timestamp("2018-01-02")
    unknown = days[days["origin"].isna()]
    assert unknown[["status", "signups"]].values.tolist() == [["comms_issue", 1]]


def test_ratings_by_day_count_low_ones_and_sum() -> None:
    ratings = pd.DataFrame({
        "area_code": ["A", "A", "A"], "rating": [1.0, 6.0, 2.0],
        "rated_at": pd.to_datetime(["2018-01-02 10:00", "2018-01-02 11:00", "2018-01-05 00:00"]),
    })  # fmt: skip
    days = ratings_to_days(ratings, low_rating=2)
    assert days[["ratings", "low_ratings", "rating_total"]].values.tolist() == [
        [2, 1, 7.0],
        [1, 1, 2.0],
    ]
    assert ratings_to_days(None, low_rating=2).empty


def test_visits_count_cells_by_first_visit_and_sign_ups_since() -> None:
    from targeting.h3cells import cell_centres, points_to_cells

    a, b = points_to_cells(np.array([52.48, 52.50]), np.array([-1.89, -1.80]), resolution=9)
    lat, lon = cell_centres(np.array([a, a, a, a]))
    visited = pd.DataFrame({"cell": [a, a, b],
                            "visited_on": pd.to_datetime(["2018-01-20", "2018-01-05",
                                                          "2018-02-01"])})  # fmt: skip
    signups = pd.DataFrame({
        "latitude": lat, "longitude": lon,
        "joined": pd.to_datetime(["2018-01-03 00:00", "2018-01-05 10:00", "2018-01-10 00:00",
                                  "2018-01-12 00:00"]),
        "status": ["active", "active", "comms_issue", "deleted"],
    })  # fmt: skip
    cells = pd.DataFrame({"cell": [a, a, b], "area_code": ["X", "Y", "X"],
                          "area_m2": [10.0, 20.0, 5.0]})  # fmt: skip
    days = visits_to_days(visited, signups, cells=cells, resolution=9)
    mine = days[days["cell"] == a]
    # the cell's area is the one holding most of it; sign-ups before the first visit and
    # deleted ones are not counted
    assert mine[["area_code", "signups"]].values.tolist() == [["Y", 1], ["Y", 1]]
    assert (mine["visited_on"] == pd.Timestamp("2018-01-05")).all()
    other = days[days["cell"] == b]
    assert other[["area_code", "signups"]].values.tolist() == [["X", 0]]
    assert visits_to_days(None, signups, cells=cells, resolution=9).empty


def test_earlier_dates_are_month_ends_or_weeks() -> None:
    assert earlier_dates(dt.date(2018, 10, 31), count=3, every="month") == [
        dt.date(2018, 7, 31), dt.date(2018, 8, 31), dt.date(2018, 9, 30),
    ]  # fmt: skip
    # from the middle of a month: the ends of the months before it
    assert earlier_dates(dt.date(2018, 3, 15), count=2, every="month") == [
        dt.date(2018, 1, 31), dt.date(2018, 2, 28),
    ]  # fmt: skip
    assert earlier_dates(dt.date(2018, 10, 31), count=2, every="week") == [
        dt.date(2018, 10, 17), dt.date(2018, 10, 24),
    ]  # fmt: skip
    with pytest.raises(HistoryError, match=r"month, week"):
        earlier_dates(dt.date(2018, 10, 31), count=2, every="day")


def test_the_run_snapshot_is_the_run(demo_output: Path) -> None:
    """Invariant across files: the history's last date holds exactly the run's counts."""
    snap = run_snapshots(demo_output)[-1]
    assert snap.source == "run" and snap.as_of == dt.date(2018, 10, 31)
    with duckdb.connect(str(demo_output / "targeting.duckdb"), read_only=True) as con:
        areas = (
            con.execute(
                "SELECT area_code, registered, registered_known, ratings, households FROM areas"
            )
            .df()
            .set_index("area_code")
        )
        by_origin = con.execute(
            "SELECT area_code, origin, sum(registered) AS registered FROM cell_origins GROUP BY ALL"
        ).df()
        hotspots = con.execute("SELECT count(*) FROM hotspots").fetchone()
    mine = snap.areas.set_index("area_code")
    assert (mine["signups"] == areas["registered"].reindex(mine.index)).all()
    assert (mine["signups_known"] == areas["registered_known"].reindex(mine.index)).all()
    assert mine["hotspots_planned"].sum() == (hotspots or (0,))[0]
    # the demo's pilot knocked on 24 of Tyburn's cells, and sign-ups followed
    tyburn = mine[mine["area_name"] == "Tyburn"].iloc[0]
    assert tyburn["hotspots_visited"] == 24 and tyburn["visit_signups"] > 0
    assert mine["hotspots_visited"].sum() == 24
    merged = snap.origins.merge(by_origin, on=["area_code", "origin"], suffixes=("", "_run"))
    assert len(merged) == len(snap.origins)
    assert (merged["registered"] == merged["registered_run"]).all()
    # ratings are those of the 91 days before the date, not all of them
    assert 0 < mine["ratings"].sum() < areas["ratings"].sum()


def test_reconstructed_dates_count_who_had_joined(demo_output: Path) -> None:
    snaps = run_snapshots(demo_output, backfill=3)
    assert [s.source for s in snaps] == ["reconstructed"] * 3 + ["run"]
    signups = pd.read_csv(demo_output.parent / "signups.csv", dtype=str)
    joined = pd.to_datetime(signups["joined"], errors="coerce", format="ISO8601")
    for snap in snaps[:3]:
        # no more than the sign-ups that had joined by then (rejects and deleted aside)
        assert snap.areas["signups"].sum() <= (joined <= pd.Timestamp(snap.as_of)).sum()
        assert snap.areas["hotspots_planned"].isna().all()
    totals = [s.areas["signups"].sum() for s in snaps]
    assert totals == sorted(totals) and totals[0] < totals[-1]


def test_adding_twice_is_a_no_op_and_a_run_replaces_its_reconstruction(
    demo_output: Path, tmp_path: Path
) -> None:
    store = tmp_path / "history.duckdb"
    first = add_run(demo_output, store=store, backfill=2)
    assert [a.outcome for a in first] == ["added"] * 3
    again = add_run(demo_output, store=store, backfill=2)
    assert [a.outcome for a in again] == ["unchanged"] * 3
    held = list_snapshots(store)
    assert len(held) == 3 and held["as_of"].astype(str).tolist()[-1] == "2018-10-31"
    # a reconstruction of the run's date is not stored over the run
    run_snap = run_snapshots(demo_output)[-1]
    fake = replace(run_snap, source="reconstructed",
                   areas=run_snap.areas.assign(signups=run_snap.areas["signups"] + 1))  # fmt: skip
    assert add_snapshots(store, [fake])[0].outcome == "kept"
    # other figures from a run for a date held are refused, and nothing is written
    other = replace(run_snap, areas=run_snap.areas.assign(signups=run_snap.areas["signups"] + 1))
    with pytest.raises(HistoryError, match="already holds other figures for 2018-10-31"):
        add_snapshots(store, [other])
    assert len(list_snapshots(store)) == 3


def test_another_configuration_is_refused(demo_output: Path, tmp_path: Path) -> None:
    store = tmp_path / "history.duckdb"
    add_run(demo_output, store=store)
    snap = run_snapshots(demo_output, backfill=1)[0]
    fewer = replace(
        snap,
        areas=snap.areas.iloc[1:],
        origins=snap.origins[snap.origins["area_code"] != snap.areas["area_code"].iloc[0]],
    )
    with pytest.raises(HistoryError, match=r"another configuration.*areas: 0 new.*1 missing"):
        add_snapshots(store, [fewer])
    renamed = replace(snap, origins=snap.origins.replace({"origin": {"Polish": "Pole"}}))
    with pytest.raises(HistoryError, match="origins: 1 new \\(Pole\\), 1 missing \\(Polish\\)"):
        add_snapshots(store, [renamed])


def test_read_history_names_the_force(demo_output: Path, tmp_path: Path) -> None:
    store = tmp_path / "history.duckdb"
    with pytest.raises(HistoryError, match="no history store"):
        read_history(store)
    add_run(demo_output, store=store, backfill=1)
    history = read_history(store)
    assert history.force == "Demo city"
    assert history.snapshots["as_of"].tolist() == [dt.date(2018, 9, 30), dt.date(2018, 10, 31)]
    assert history.areas["as_of"].nunique() == 2
    with pytest.raises(HistoryError, match="no force 'Elsewhere'"):
        read_history(store, force="Elsewhere")


def test_an_old_run_without_days_is_refused(demo_output: Path, tmp_path: Path) -> None:
    copy = tmp_path / "old"
    shutil.copytree(demo_output, copy)
    with duckdb.connect(str(copy / "targeting.duckdb")) as con:
        con.execute("DROP TABLE signup_days")
    with pytest.raises(HistoryError, match="older version"):
        read_finished_run(copy)


def test_the_config_store_gets_the_run(demo_output: Path) -> None:
    """The demo's config names `[history] store`: the run added itself."""
    held = list_snapshots(demo_output.parent / "history.duckdb")
    assert held[["source", "areas"]].values.tolist() == [["run", 40]]
    assert (
        int(held["signups"].iloc[0]) == read_finished_run(demo_output).signup_days["signups"].sum()
    )


def test_history_and_portal_commands(demo_output: Path, tmp_path: Path) -> None:
    store = tmp_path / "h.duckdb"
    added = runner.invoke(app, ["history", "add", str(demo_output), "--store", str(store),
                                "--backfill", "2"])  # fmt: skip
    assert added.exit_code == 0, added.stderr
    assert "2018-08-31 (reconstructed): added" in added.stderr
    listed = runner.invoke(app, ["history", "list", "--store", str(store)])
    assert listed.exit_code == 0
    assert "2018-10-31" in listed.stdout and "run" in listed.stdout and "Demo city" in listed.stdout
    site = tmp_path / "site"
    built = runner.invoke(app, ["portal", "--store", str(store), "--out", str(site)])
    assert built.exit_code == 0, built.stderr
    assert built.stdout.strip() == str(site.resolve() / "index.html")
    assert "3 dates, 51 pages" in built.stderr
    missing = runner.invoke(app, ["portal", "--store", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 6 and "no history store" in missing.stderr
    # the portal will not replace a folder that is not a portal
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep", encoding="utf-8")
    refused = runner.invoke(app, ["portal", "--store", str(store), "--out",
                                  str(tmp_path / "mine")])  # fmt: skip
    assert refused.exit_code == 4 and (tmp_path / "mine" / "notes.txt").is_file()
