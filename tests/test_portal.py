"""The engagement portal: its disclosure rule, its measures from rounded counts only, the audit
of the whole published series over time, and the pages in a browser."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import scipy.sparse as sp
from browser import evaluate, needs_chromium
from conftest import HOSTILE_NAME
from hypothesis import given
from hypothesis import strategies as st
from portal_audit import clear_over_time, intervals, leaf_moves, movable, pinned_exactly

from targeting.history import add_run, read_history
from targeting.origins import origin_groups
from targeting.portal import build_portal, interval_of, publish_counts
from targeting.portal.site import page_path

TYBURN = "E05001215"


@pytest.fixture(scope="module")
def demo_portal(demo_output: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's twelve month-ends (its run and eleven reconstructed) as a portal."""
    folder = tmp_path_factory.mktemp("portal")
    add_run(demo_output, store=folder / "history.duckdb", backfill=11)
    build_portal(folder / "history.duckdb", folder / "site")
    return folder


def _csv(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / "site" / name, dtype={"code": str}, keep_default_na=False,
                       na_values=[""])  # fmt: skip


# the rule, by hand


def test_publish_counts_by_hand() -> None:
    values = np.array([0, 1, 9, 10, 14, 15, 24, 25, 104, 105, 1234])
    expected = [0, np.nan, np.nan, 10, 10, 20, 20, 30, 100, 110, 1230]
    np.testing.assert_array_equal(publish_counts(values, threshold=10), expected)
    # another threshold is another base: 1..4 withheld, then the nearest 5
    np.testing.assert_array_equal(
        publish_counts(np.array([0, 4, 5, 7, 8]), threshold=5), [0, np.nan, 5, 5, 10]
    )


@given(st.integers(min_value=0, max_value=10**7), st.sampled_from([5, 10, 20]))
def test_a_count_lies_in_what_its_published_value_allows(count: int, threshold: int) -> None:
    published = publish_counts(np.array([count]), threshold=threshold)
    low, high = interval_of(published, threshold=threshold)
    assert low[0] <= count <= high[0]
    # and a reader never learns a non-zero count exactly
    assert count == 0 or high[0] > low[0]


# the published series


def test_measures_are_computed_from_the_rounded_counts_only(demo_portal: Path) -> None:
    places, origins = _csv(demo_portal, "places.csv"), _csv(demo_portal, "origins.csv")
    # sign-ups per 1,000 residents: the published count over the public residents
    np.testing.assert_allclose(
        places["per_1000"], places["signups"] / places["residents"] * 1000, rtol=1e-5
    )
    assert (places["signups"].dropna() % 10 == 0).all()
    assert (origins["registered"].dropna() % 10 == 0).all()
    # the index: the published origin count over the published known total, against the share
    known = places.set_index(["as_of", "level", "code"])["signups_known"]
    n = known.reindex(pd.MultiIndex.from_frame(origins[["as_of", "level", "code"]])).to_numpy()
    index = 100 * (origins["registered"] / n) / origins["target_rate"]
    shown = origins["representation_index"].notna()
    np.testing.assert_allclose(origins.loc[shown, "representation_index"], index[shown], rtol=1e-5)
    # a withheld count withholds everything worked out from it
    withheld = origins["registered"].isna()
    assert withheld.any()
    assert origins.loc[withheld, ["representation_index", "parity_gap"]].isna().all().all()


def test_series_totals_are_the_run_at_its_date(demo_output: Path, demo_portal: Path) -> None:
    """The last date is the run itself: its published force count is the run's count of live
    sign-ups rounded, and the run's census residents are the portal's."""
    import duckdb

    places = _csv(demo_portal, "places.csv")
    force = places[(places["level"] == "force")].set_index("as_of")
    with duckdb.connect(str(demo_output / "targeting.duckdb"), read_only=True) as con:
        registered, residents = con.execute(
            "SELECT sum(registered), sum(residents) FROM areas"
        ).fetchone() or (0, 0)
    assert (
        force.loc["2018-10-31", "signups"]
        == publish_counts(np.array([registered]), threshold=10)[0]
    )
    assert force.loc["2018-10-31", "residents"] == pytest.approx(residents, abs=0.5)
    # sign-ups accumulate month by month
    assert force["signups"].is_monotonic_increasing


def _moves(leaves: pd.DataFrame, parent: pd.Series) -> sp.csc_matrix:
    """Single leaves, pairs of origins in an area, pairs of areas with an origin, and the
    rectangles of each NPU's area x origin table."""
    positions = leaves.assign(parent=parent.to_numpy(), i=np.arange(len(leaves)))
    by_area = [g["i"].to_numpy() for _, g in positions.groupby("area_code")]
    by_origin = [g["i"].to_numpy() for _, g in positions.groupby("origin")]
    tables = [g.pivot(index="area_code", columns="origin", values="i").to_numpy().astype(int)
              for _, g in positions.groupby("parent")]  # fmt: skip
    return leaf_moves(len(leaves), by_area + by_origin, tables)


@dataclass(frozen=True)
class SeriesSystem:
    """The demo's published sign-up series as an attacker sees it, with the true counts."""

    leaves: pd.DataFrame  # area_code, origin, parent
    leaf_counts: np.ndarray  # (dates, leaves)
    variables: pd.DataFrame  # level, code, origin_level, origin
    members: sp.csr_matrix  # variable x leaf
    true: np.ndarray  # (dates, variables)
    bounds: tuple[np.ndarray, np.ndarray]  # what the published counts allow
    groups: dict[str, str]


@pytest.fixture(scope="module")
def series_system(demo_portal: Path) -> SeriesSystem:
    history = read_history(demo_portal / "history.duckdb")
    origins = _csv(demo_portal, "origins.csv")
    places = _csv(demo_portal, "places.csv")
    areas = history.areas.drop_duplicates("area_code").set_index("area_code")
    groups = origin_groups(sorted(history.origins["origin"].unique()))
    dates = sorted(places["as_of"].unique())
    # the true leaves: area x origin, per date
    leaf = history.origins.assign(as_of=history.origins["as_of"].astype(str))
    leaf = leaf.pivot_table(index=["area_code", "origin"], columns="as_of", values="registered",
                            aggfunc="sum").reindex(columns=dates)  # fmt: skip
    leaves = leaf.index.to_frame(index=False)
    leaves["parent"] = leaves["area_code"].map(areas["parent_code"])
    # every variable a leaf adds into: geography (area, NPU, force) x origin (origin, group, all)
    geo = {"area": leaves["area_code"], "parent": leaves["parent"],
           "force": pd.Series("ALL", index=leaves.index)}  # fmt: skip
    node = {"origin": leaves["origin"], "group": leaves["origin"].map(groups),
            "total": pd.Series("(all)", index=leaves.index)}  # fmt: skip
    keys = pd.concat(
        [pd.DataFrame({"leaf": leaves.index, "level": g, "code": geo[g].to_numpy(),
                       "origin_level": o, "origin": node[o].to_numpy()})
         for g in geo for o in node], ignore_index=True,
    )  # fmt: skip
    names = ["level", "code", "origin_level", "origin"]
    variables = keys[names].drop_duplicates().reset_index(drop=True)
    keys = keys.merge(variables.reset_index(names="v"), on=names)
    members = sp.csr_matrix(
        (np.ones(len(keys)), (keys["v"], keys["leaf"])), shape=(len(variables), len(leaves))
    )
    counts = leaf.to_numpy().T.astype(float)
    # what is published for each variable: origins.csv, and the all-origins totals in places.csv
    totals = places.assign(origin_level="total", origin="(all)", registered=places["signups_known"])
    published_rows = pd.concat([origins[["as_of", *names, "registered"]],
                                totals[["as_of", *names, "registered"]]])  # fmt: skip
    published = (
        published_rows.pivot_table(index=names, columns="as_of", values="registered",
                                   aggfunc="first", dropna=False)
        .reindex(pd.MultiIndex.from_frame(variables[names]))
        .reindex(columns=dates)
        .to_numpy().T
    )  # fmt: skip
    true = np.asarray((members @ counts.T).T)
    return SeriesSystem(leaves, counts, variables, members, true, intervals(published), groups)


def _moves(leaves: pd.DataFrame) -> sp.csc_matrix:
    """Single leaves, pairs of origins in an area, pairs of areas with an origin, and the
    rectangles of each NPU's area x origin table."""
    positions = leaves.assign(i=np.arange(len(leaves)))
    by_area = [g["i"].to_numpy() for _, g in positions.groupby("area_code")]
    by_origin = [g["i"].to_numpy() for _, g in positions.groupby("origin")]
    tables = [g.pivot(index="area_code", columns="origin", values="i").to_numpy().astype(int)
              for _, g in positions.groupby("parent")]  # fmt: skip
    return leaf_moves(len(leaves), by_area + by_origin, tables)


def _small_changes(true: np.ndarray) -> np.ndarray:
    """[t1, t2, v]: the changes from 1 to 9 (either way) between two dates, t1 < t2."""
    change = true[None, :, :] - true[:, None, :]
    later = np.triu(np.ones((true.shape[0], true.shape[0]), dtype=bool), k=1)
    return (np.abs(change) >= 1) & (np.abs(change) <= 9) & later[:, :, None]


def test_the_whole_series_hides_every_small_count_and_every_small_change(
    series_system: SeriesSystem,
) -> None:
    """The audit over all twelve dates: no non-zero count at any date, level, origin or group
    can be pinned by the published figures together with how counts add up, so no count from 1
    to 9 is known, and no change between two dates either (each date's counts would both have
    to be pinned). Simple moves clear almost all; an exact integer program the rest."""
    s = series_system
    low, high = s.bounds
    assert ((low <= s.true) & (s.true <= high)).all(), "a published count does not cover its count"
    moved = movable(s.true, s.bounds, s.members, _moves(s.leaves), monotone=False)
    small = (s.true >= 1) & (s.true <= 9)
    assert small.sum() > 5000  # the demo has many small counts to protect
    left = np.argwhere((s.true > 0) & ~moved.level)
    assert len(left) < 0.01 * (s.true > 0).sum()  # the moves clear almost everything
    assert pinned_exactly(s.bounds, s.members, left) == [], "a count is pinned"
    # hence no small change between two dates is pinned either: a zero is the only count
    # published exactly, and two zeros differ by nothing
    small_change = _small_changes(s.true)
    assert small_change.sum() > 10000
    both_zero = (s.true[:, None, :] == 0) & (s.true[None, :, :] == 0)
    assert not (small_change & both_zero).any()


@pytest.mark.slow
def test_the_series_hides_small_counts_from_one_who_knows_sign_ups_accumulate(
    series_system: SeriesSystem,
) -> None:
    """A stronger attacker also knows the demo's history is cumulative (reconstructed from
    today's sign-ups, no count ever falls), which ties the dates together: a 1 that stays a 1
    for months can only become a 2 if it does so at every one of those dates. Still no count
    from 1 to 9, and no change of 1 to 9 between two dates, is pinned: moves that keep every
    series non-decreasing clear most; integer programs over an NPU with every area's count of
    the origin (then of its group), all dates at once, the rest."""
    s = series_system
    assert (np.diff(s.leaf_counts, axis=0) >= 0).all()  # the attacker's assumption holds
    moved = movable(s.true, s.bounds, s.members, _moves(s.leaves), monotone=True)
    small = (s.true >= 1) & (s.true <= 9)
    small_change = _small_changes(s.true)
    level = small & ~moved.level
    change = small_change & ~np.transpose(moved.change, (1, 2, 0))
    by_npu = {p: np.flatnonzero(s.leaves["parent"].to_numpy() == p)
              for p in s.leaves["parent"].unique()}  # fmt: skip
    group_of = s.leaves["origin"].map(s.groups).to_numpy()
    origin_of = s.leaves["origin"].to_numpy()

    def blocks(v: int) -> list[np.ndarray]:
        row = s.variables.iloc[v]
        under = s.members[v].indices
        same = (origin_of == row["origin"]) if row["origin_level"] == "origin" else (
            group_of == (row["origin"] if row["origin_level"] == "group" else group_of[under[0]])
        )  # fmt: skip
        wider = group_of == group_of[under[0]]
        npus = np.unique(s.leaves["parent"].to_numpy()[under])
        return [np.union1d(by_npu[p], np.flatnonzero(mask)) for mask in (same, wider)
                for p in npus]  # fmt: skip

    level, change = clear_over_time(s.leaf_counts, s.bounds, s.members, level=level,
                                    change=change, blocks_of=blocks)  # fmt: skip
    assert not level.any(), s.variables.iloc[np.argwhere(level)[:5, 1]]
    assert not change.any(), s.variables.iloc[np.argwhere(change)[:5, 2]]


def test_place_counts_hide_small_counts_over_time(demo_portal: Path) -> None:
    """The per-place counts (all sign-ups, unreachable sign-ups, ratings and low ratings) are
    each a hierarchy of areas into NPUs into the force: the same audit."""
    history = read_history(demo_portal / "history.duckdb")
    places = _csv(demo_portal, "places.csv")
    areas = history.areas.drop_duplicates("area_code").set_index("area_code")
    dates = sorted(places["as_of"].unique())
    codes = areas.index.to_numpy()
    variables = pd.DataFrame({
        "level": ["area"] * len(codes) + ["parent"] * areas["parent_code"].nunique() + ["force"],
        "code": [*codes, *sorted(areas["parent_code"].unique()), "ALL"],
    }).reset_index(names="v")  # fmt: skip
    position = variables.set_index(["level", "code"])["v"]
    rows = np.r_[position.loc[[("area", c) for c in codes]],
                 position.loc[[("parent", p) for p in areas["parent_code"]]],
                 np.full(len(codes), position[("force", "ALL")])]  # fmt: skip
    members = sp.csr_matrix(
        (np.ones(3 * len(codes)), (rows, np.tile(np.arange(len(codes)), 3))),
        shape=(len(variables), len(codes)),
    )
    table = history.areas.assign(as_of=history.areas["as_of"].astype(str))
    shown = places.set_index(["level", "code"])
    npus = [np.flatnonzero(areas["parent_code"].to_numpy() == p)
            for p in areas["parent_code"].unique()]  # fmt: skip
    moves = leaf_moves(len(codes), npus)
    for column in ("signups", "comms_issue", "incommunicado", "ratings", "low_ratings",
                   "visit_signups"):  # fmt: skip
        leaf = table.pivot(index="area_code", columns="as_of", values=column).reindex(
            index=codes, columns=dates
        )
        true = np.asarray((members @ leaf.to_numpy()).T, dtype=float)
        published = np.column_stack([
            shown.loc[(level, code)].set_index("as_of")[column].reindex(dates).to_numpy()
            for level, code in zip(variables["level"], variables["code"], strict=True)
        ])  # fmt: skip
        cap = None
        if column == "low_ratings":
            ratings = table.pivot(index="area_code", columns="as_of", values="ratings")
            cap = np.asarray((members @ ratings.reindex(index=codes, columns=dates)).T)
        bounds = intervals(published)
        moved = movable(true, bounds, members, moves, monotone=False, cap=cap)
        left = np.argwhere((true > 0) & ~moved.level)
        assert pinned_exactly(bounds, members, left, cap=cap) == [], f"{column}: pinned"


def test_a_tiny_world_with_exact_counts_fails_the_audit() -> None:
    """The audit catches what it should: with the small count withheld but the others exact (cell
    suppression without a secondary cell), the small count is pinned by the total; rounded, it
    is not."""
    true = np.array([[3.0, 40.0, 43.0], [5.0, 40.0, 45.0]])  # two dates: leaf a, leaf b, total
    members = sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 1]]))
    moves = leaf_moves(2, [np.array([0, 1])])
    small = true < 10
    exact = (np.where(small, 1.0, true), np.where(small, 9.0, true))
    assert not movable(true, exact, members, moves, monotone=False).level[:, 0].any()
    assert pinned_exactly(exact, members, np.array([[0, 0], [1, 0]])) == [(0, 0), (1, 0)]
    rounded = intervals(publish_counts(true, threshold=10))
    moved = movable(true, rounded, members, moves, monotone=False)
    assert moved.level[:, 0].all() and moved.change[0, 0, 1]
    assert pinned_exactly(rounded, members, np.array([[0, 0], [1, 0]])) == []


def test_plotly_accepts_every_kind_of_figure(demo_portal: Path) -> None:
    """The figures are written as plain JSON: plotly's own schema must accept each kind."""
    page = (demo_portal / "site" / "index.html").read_text(encoding="utf-8")
    specs = re.findall(r'<script type="application/json">(.*?)</script>', page)
    assert len(specs) == 6
    for spec in specs:
        figure = json.loads(spec.replace("<\\/", "</"))
        go.Figure(figure)  # raises on any property plotly does not know


def test_pages_and_links(demo_portal: Path) -> None:
    site = demo_portal / "site"
    places = _csv(demo_portal, "places.csv")
    latest = places[places["as_of"] == places["as_of"].max()]
    for level, code in zip(latest["level"], latest["code"], strict=True):
        assert (site / page_path(level, code)).is_file()
    assert len(list((site / "area").glob("*.html"))) == 40
    assert len(list((site / "npu").glob("*.html"))) == 10
    index = (site / "index.html").read_text(encoding="utf-8")
    # every relative link resolves; the run's own files are linked from its date
    for href in re.findall(r'href="([^"#]+)"', index):
        assert (site / href).resolve().is_file(), href
    assert "report.html" in index and "tasking.html" in index
    # a hostile area name is text, never markup
    assert HOSTILE_NAME not in index
    assert "&lt;script&gt;" in index
    # the bundle is written once, beside the pages
    assert "plotly.min.js" in index and (site / "plotly.min.js").stat().st_size > 1_000_000
    assert not re.search(r'src="https?://', index)


@needs_chromium
def test_force_npu_and_tyburn_pages_in_a_browser(demo_portal: Path, tmp_path: Path) -> None:
    """Offline Chromium: no script error, the charts drawn (measured on a screenshot), Tyburn's
    sign-ups per 1,000 rising month on month, and the area table sorts."""
    from PIL import Image

    site = demo_portal / "site"
    read = (
        "const charts=[...document.querySelectorAll('.chart')].map(c=>({id:c.id,"
        "traces:(c.querySelector('.plot').data||[]).length,"
        "paths:c.querySelectorAll('.scatterlayer path.js-line, .barlayer path').length}));"
    )
    checks = {}
    npu = next((site / "npu").glob("*.html")).relative_to(site)
    for name, relative in (("force", Path("index.html")), ("npu", npu),
                           ("tyburn", Path("area") / f"{TYBURN}.html")):  # fmt: skip
        # the probe runs the page where it is, so its relative scripts load: a copy of the site
        copy = tmp_path / name
        shutil.copytree(site, copy)
        page = copy / relative
        body = read + (
            "const per=document.getElementById('chart-per1000').querySelector('.plot').data[0].y;"
            "const t=document.getElementById('areas');"
            "let sorted=null;"
            "if(t){const b=t.querySelector('th[data-key=per_1000] button');b.click();"
            "const up=[...t.tBodies[0].rows].map(r=>parseFloat(r.cells[2].dataset.value));"
            "b.click();"
            "const down=[...t.tBodies[0].rows].map(r=>parseFloat(r.cells[2].dataset.value));"
            "sorted={up,down,sort:t.querySelector('th[data-key=per_1000]')"
            ".getAttribute('aria-sort')}}"
            "return {errors:window.__errors,charts,per,sorted,"
            "plotly:typeof Plotly,h1:document.querySelector('h1').textContent};"
        )
        shot = tmp_path / f"{name}.png"
        checks[name] = evaluate(page, body, width=1400, height=2200, home=page.parent,
                                screenshot=shot)  # fmt: skip
        got = checks[name]
        assert got["errors"] == [], (name, got["errors"])
        assert got["plotly"] == "object"
        assert all(c["traces"] >= 1 and c["paths"] >= 1 for c in got["charts"]), got["charts"]
        # the chart area is drawn: many colours, not a blank box
        image = np.asarray(Image.open(shot).convert("RGB").crop((0, 400, 1400, 2200)))
        colours = len(np.unique(image.reshape(-1, 3), axis=0))
        assert colours > 200, (name, colours)
    per = [v for v in checks["tyburn"]["per"] if v is not None]
    assert len(per) == 12 and all(b >= a for a, b in itertools.pairwise(per))
    assert per[-1] > 1.5 * per[0]  # the pilot shows
    assert checks["tyburn"]["h1"] == "Tyburn"
    for name in ("force", "npu"):
        order = checks[name]["sorted"]
        assert order["sort"] == "descending"
        assert order["up"] == sorted(order["up"]) and order["down"] == sorted(order["down"])[::-1]
    assert len(checks["force"]["sorted"]["up"]) == 40


@needs_chromium
def test_tyburn_on_a_phone(demo_portal: Path, tmp_path: Path) -> None:
    """At 390 x 844 the page does not scroll sideways (the tables scroll in their own box) and
    the charts fit the screen."""
    body = (
        "return {doc:document.documentElement.scrollWidth,window:window.innerWidth,"
        "widest:Math.max(...[...document.querySelectorAll('.chart')].map(c=>"
        "c.getBoundingClientRect().width)),errors:window.__errors};"
    )
    copy = tmp_path / "site"
    shutil.copytree(demo_portal / "site", copy)
    page = copy / "area" / f"{TYBURN}.html"
    got = evaluate(page, body, width=390, height=844, home=page.parent)
    assert got["errors"] == []
    assert got["doc"] <= got["window"]
    assert got["widest"] <= got["window"]
