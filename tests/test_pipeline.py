"""End-to-end runs: the tiny world by hand, and the real West Midlands data for integration."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from realworld import write_postcode_signups
from tiny import REALDATA, needs_realdata, write_world

from targeting.config import Config, load_config
from targeting.errors import InputError
from targeting.maps import map_to_html, read_map_data
from targeting.maps.data import SEQUENTIAL
from targeting.pipeline import run, validate
from targeting.store import CELLS_COLUMNS


def test_tiny_world_counts_by_hand(tmp_path: Path) -> None:
    result = run(write_world(tmp_path))
    cells = pd.read_parquet(result.out_dir / "cells.parquet")
    assert list(cells.columns) == list(CELLS_COLUMNS)
    assert cells["cell"].map(type).eq(str).all()
    by_area = cells.groupby("area_code")[["residents", "registered", "households"]].sum()
    # ward A: OA1 (300) + the tiny OA3 (12) + the inside half of OA4 (50); ward B: OA2 (200)
    assert by_area.loc["E05000001", "residents"] == pytest.approx(362, rel=1e-6)
    assert by_area.loc["E05000002", "residents"] == pytest.approx(200, rel=1e-9)
    # U1, U2 in A; U4 (unknown origin) in B; U3 is deleted so not registered
    assert by_area["registered"].to_dict() == {"E05000001": 2, "E05000002": 1}
    assert by_area.loc["E05000001", "households"] == pytest.approx(100 + 10 + 25, rel=1e-6)
    m = result.manifest
    assert m["unallocated_residents"] == pytest.approx(50, rel=1e-5)
    assert cells["residents"].sum() + m["unallocated_residents"] == pytest.approx(612, rel=1e-12)
    assert m["inputs"]["signups"]["reject_reasons"] == {
        "duplicate user_id": 1,
        "outside areas": 1,
        "unparseable joined date": 1,
    }
    assert m["as_of"] == "2018-04-01"


def test_manifest_digests_the_store_and_cells_as_finished_although_written_alongside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store and cells.parquet are written in a second thread (most of the store while the
    plan is made, the plan's tables after): the manifest, written last, holds the digests of the
    finished files even when that thread is the slower one."""
    import time

    import targeting.outputs as outputs
    from targeting.store import sha256_file, store_digest

    slow_store = outputs.write_store

    def write_store_slowly(path: Path, tables: object, *, add: bool = False) -> None:
        time.sleep(1.0)
        slow_store(path, tables, add=add)  # type: ignore[arg-type]

    monkeypatch.setattr(outputs, "write_store", write_store_slowly)
    out = run(write_world(tmp_path)).out_dir
    outputs = json.loads((out / "manifest.json").read_text())["outputs"]
    assert outputs["targeting.duckdb"] == store_digest(out / "targeting.duckdb")
    assert outputs["cells.parquet"] == sha256_file(out / "cells.parquet")


def test_a_run_loads_neither_matplotlib_nor_scipy_stats(tmp_path: Path) -> None:
    """The pictures are SVG text and the intervals and tests closed forms on scipy.special:
    loading matplotlib (a third of a second) or scipy.stats (0.8 s) would be a run's waste."""
    config = write_world(tmp_path)
    code = (
        "import sys\nfrom targeting.pipeline import run\n"
        f"run({str(config)!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'statsmodels')"
        " or m == 'scipy.stats'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_outputs_store_rejects_and_manifest(tmp_path: Path) -> None:
    result = run(write_world(tmp_path))
    out = result.out_dir
    rejects = pd.read_csv(out / "rejects" / "signups.csv", dtype=str, keep_default_na=False)
    assert set(rejects["user_id"]) == {"U4", "U5", "U6"}
    assert "reason" in rejects.columns
    with duckdb.connect(str(out / "targeting.duckdb"), read_only=True) as con:
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        assert {"cells", "cell_origins", "areas", "rejects_summary"} <= tables
        pak = con.execute(
            "SELECT sum(residents), sum(registered) FROM cell_origins WHERE origin = 'Pakistani'"
        ).fetchone()
        # 100 + 2 + 20 + half of 10, and U1 (Pakistani) is registered
        assert pak[0] == pytest.approx(127, rel=1e-5)
        assert pak[1] == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert "unallocated_residents" in manifest
    assert set(manifest["outputs"]) >= {"cells.parquet", "targeting.duckdb", "rejects/signups.csv"}
    assert len(manifest["inputs"]["signups"]["files"]) == 1
    sha = next(iter(manifest["inputs"]["signups"]["files"].values()))
    assert len(sha) == 64
    assert manifest["versions"]["h3"]
    assert manifest["config"]["grid"]["resolution"] == 9
    # population: Persons vs the parts, and the origins detected in the wide table
    assert manifest["inputs"]["population"]["detected_origins"] == ["Pakistani", "White British"]
    assert manifest["inputs"]["population"]["origin_columns"] == {
        "Pakistani": "Pakistani",
        "WhiteBrit": "White British",
    }
    labels = {row["label"]: row for row in manifest["origins"]["labels"]}
    assert labels["England"]["population_origin"] == "White British"
    assert labels["England"]["how"] == "crosswalk (ORIGINS name)"
    assert labels[""]["how"] == "unknown origin"
    # no crimes were given: null in the store, never a misleading 0
    with duckdb.connect(str(out / "targeting.duckdb"), read_only=True) as con:
        nulls = con.execute("SELECT count(*) FROM areas WHERE crimes IS NULL").fetchone()
    assert nulls == (2,)


def test_small_signup_counts_are_withheld_in_the_manifest(tmp_path: Path) -> None:
    config = write_world(tmp_path)
    signups = tmp_path / "signups.csv"
    signups.write_text(
        signups.read_text() + "U9,2018-01-01,52.4760,-1.9940,Martian,active\n", encoding="utf-8"
    )
    # one label of four sign-ups with an origin: let the run go on to see how it is reported
    config.write_text(config.read_text() + "\n[origins]\nmax_unmapped = 0.5\n", encoding="utf-8")
    manifest = run(config).manifest
    assert manifest["origins"]["unmapped_signup_origins"] == {"Martian": "<10"}
    assert any("Martian (<10)" in w for w in manifest["warnings"])
    assert manifest["inputs"]["signups"]["status_counts"] == {"active": "<10", "deleted": "<10"}


def test_bad_input_leaves_previous_output_untouched(tmp_path: Path) -> None:
    config = write_world(tmp_path)
    first = run(config)
    before = (first.out_dir / "manifest.json").read_bytes()
    (tmp_path / "signups.csv").write_text(
        "user_id,joined,origin\nU1,2018-01-01,England\n", encoding="utf-8"
    )
    with pytest.raises(InputError, match="location"):
        run(config)
    assert (first.out_dir / "manifest.json").read_bytes() == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert leftovers == []


def test_validate_writes_report_without_touching_outputs(tmp_path: Path) -> None:
    config = write_world(tmp_path)
    result = validate(config)
    assert (result.out_dir / "validation.json").is_file()
    report = (result.out_dir / "validation.md").read_text()
    assert "| signups | 7 | 4 | 3 |" in report
    assert "Persons above the sum" in report
    assert (result.out_dir / "rejects" / "signups.csv").is_file()
    assert not (tmp_path / "out" / "cells.parquet").exists()


def _nested_world(folder: Path) -> Path:
    """Nine 1 km wards, each cut into four quarter OAs that carry their own ward's segment,
    sign-ups spread over them: a run whose areas and hotspots must each name their own segment."""
    folder.mkdir(parents=True, exist_ok=True)
    bng = "EPSG:27700"
    wards, quarters = [], []
    for i in range(3):
        for j in range(3):
            x, y = 400000 + 1000 * i, 286000 + 1000 * j
            code = f"E050000{i}{j}"
            wards.append((code, f"Ward {i}{j}", shapely.box(x, y, x + 1000, y + 1000)))
            for q, (qx, qy) in enumerate(((0, 0), (500, 0), (0, 500), (500, 500))):
                box = shapely.box(x + qx, y + qy, x + qx + 500, y + qy + 500)
                quarters.append((f"OA{i}{j}{q}", code, box))
    gpd.GeoDataFrame(
        {"WD13CD": [w[0] for w in wards], "WD13NM": [w[1] for w in wards]},
        geometry=[w[2] for w in wards], crs=bng,
    ).to_file(folder / "wards.geojson")  # fmt: skip
    gpd.GeoDataFrame(
        {"OA11CD": [q[0] for q in quarters], "households": 400},
        geometry=[q[2] for q in quarters], crs=bng,
    ).to_file(folder / "oa.geojson")  # fmt: skip
    pd.DataFrame(
        {"OA": [q[0] for q in quarters], "Persons": 960, "Pakistani": 160, "WhiteBrit": 800}
    ).to_csv(folder / "census.csv", index=False)
    pd.DataFrame(
        {"area_code": [q[0] for q in quarters], "segment": [f"S-{q[1]}" for q in quarters],
         "households": 400}
    ).to_csv(folder / "segments.csv", index=False)  # fmt: skip
    rng = np.random.default_rng(3)
    n = 900
    x = 400000 + rng.random(n) * 3000
    y = 286000 + rng.random(n) * 3000
    points = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=bng).to_crs("EPSG:4326")
    pd.DataFrame(
        {"user_id": [f"U{i}" for i in range(n)], "joined": "2018-06-01",
         "latitude": points.y.round(7), "longitude": points.x.round(7),
         "origin": np.where(rng.random(n) < 0.05, "Pakistani", "England")}
    ).to_csv(folder / "signups.csv", index=False)  # fmt: skip
    config = folder / "run.toml"
    config.write_text(
        '[inputs]\nareas = "wards.geojson"\nsmall_areas = "oa.geojson"\n'
        'population = "census.csv"\nsignups = "signups.csv"\nsegments = "segments.csv"\n\n'
        '[grid]\nsmall_area_fit = "centroid"\n\n[hotspots]\nper_week = 30\n\n'
        '[output]\ndir = "out"\n',
        encoding="utf-8",
    )
    return config


def test_every_area_and_hotspot_carries_its_own_segment(tmp_path: Path) -> None:
    """Regression: segment households were joined to fragments by row position after the
    fragment table had been re-sorted, so areas and hotspots named other places' segments."""
    out = run(_nested_world(tmp_path)).out_dir
    ranked = pd.read_csv(out / "ranked_areas.csv")
    assert len(ranked) == 9
    for code, segments in zip(ranked["area_code"], ranked["segments"], strict=True):
        assert segments.startswith(f"S-{code} (100%"), (code, segments)
    hotspots = pd.read_csv(out / "hotspots.csv")
    assert len(hotspots) > 0
    assert (hotspots["segment"] == "S-" + hotspots["area_code"]).all()
    with duckdb.connect(str(out / "targeting.duckdb"), read_only=True) as con:
        mismatched = con.execute(
            """SELECT count(*) FROM (
                 SELECT c.cell, c.area_code, c.households, sum(s.households) AS segment_households
                 FROM cells c JOIN cell_segments s USING (cell, area_code)
                 GROUP BY c.cell, c.area_code, c.households)
               WHERE abs(households - segment_households) > 1e-6"""
        ).fetchone()
    assert mismatched == (0,)


# ---------------------------------------------------------------------------------------------
# Real West Midlands data


def _real_config(folder: Path, population: str, *, extra: str = "") -> Path:
    config = folder / "real.toml"
    config.write_text(
        f"""
[inputs]
areas = "{REALDATA / "boundaries" / "wm_wards_2013.geojson"}"
small_areas = "{REALDATA / "boundaries" / "wm_oa_2011.geojson"}"
population = "{population}"
signups = "signups.csv"
postcodes = "{REALDATA / "postcodes" / "wm_postcodes.parquet"}"
crimes = ["{REALDATA / "crime" / "*.csv"}"]

[output]
dir = "out"
{extra}
""",
        encoding="utf-8",
    )
    return config


def _real_run(
    factory: pytest.TempPathFactory, name: str, *, fit: str | None = None, inputs: str = ""
):  # type: ignore[no-untyped-def]
    """The real West Midlands run, with `[grid] small_area_fit` set when `fit` is given and
    `inputs` added to its `[inputs]`."""
    if not REALDATA.is_dir():
        pytest.skip(f"no real data at {REALDATA}")
    folder = factory.mktemp(name)
    write_postcode_signups(folder)
    population = REALDATA / "census" / "census2011_ethnicity_oa_wm.csv"
    extra = f'[grid]\nsmall_area_fit = "{fit}"' if fit else ""
    config = _real_config(folder, str(population), extra=extra)
    config.write_text(
        config.read_text(encoding="utf-8").replace("[output]", f"{inputs}\n[output]"), "utf-8"
    )
    return run(config)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory):
    return _real_run(tmp_path_factory, "real")


@pytest.fixture(scope="module")
def real_run_best_fit(tmp_path_factory: pytest.TempPathFactory):
    """The real run with OAs fitted whole to wards: 2011 OAs were built to nest in these wards,
    only the outlines' generalisation differs."""
    return _real_run(tmp_path_factory, "real_best_fit", fit="best_fit")


@pytest.fixture(scope="module")
def real_run_centroid(tmp_path_factory: pytest.TempPathFactory):
    """The real run with each OA fitted whole to the ward holding a point on its surface, and
    IMD 2019 on its own geography (the 2011 LSOAs' outlines)."""
    return _real_run(
        tmp_path_factory, "real_centroid", fit="centroid",
        inputs=f'deprivation = "{REALDATA / "deprivation" / "imd2019_lsoa11_wm.csv"}"\n'
        f'deprivation_areas = "{REALDATA / "boundaries" / "wm_lsoa_2011.geojson"}"',
    )  # fmt: skip


@needs_realdata
def test_real_residents_on_grid_plus_unallocated_equal_census(real_run) -> None:
    cells = pd.read_parquet(real_run.out_dir / "cells.parquet")
    total = cells["residents"].sum() + real_run.manifest["unallocated_residents"]
    assert total == pytest.approx(2_734_842, rel=1e-9)
    # Persons leaves out one small group: a warning, not a failure
    warnings = " ".join(real_run.manifest["warnings"])
    assert "774 row(s) have Persons above the sum" in warnings
    assert "1,618 residents" in warnings
    assert real_run.manifest["inputs"]["population"]["rows_rejected"] == 0
    assert len(real_run.manifest["inputs"]["population"]["detected_origins"]) == 14


@needs_realdata
def test_real_unallocated_residents_match_an_independent_overlay(real_run) -> None:
    """The residents left outside every ward, computed directly from OA and ward outlines."""
    oas = gpd.read_file(REALDATA / "boundaries" / "wm_oa_2011.geojson").to_crs(27700)
    geoms = shapely.make_valid(oas.geometry.values)
    wards = gpd.read_file(REALDATA / "boundaries" / "wm_wards_2013.geojson").to_crs(27700)
    union = shapely.union_all(shapely.make_valid(wards.geometry.values))
    outside = 1 - shapely.area(shapely.intersection(geoms, union)) / shapely.area(geoms)
    census = pd.read_csv(REALDATA / "census" / "census2011_ethnicity_oa_wm.csv").set_index("OA")
    groups = [c for c in census.columns if c not in {"Persons", "LSOA", "MSOA", "LAD", "RGN"}]
    residents = census[groups].sum(axis=1).reindex(oas["OA11CD"]).to_numpy()
    expected = float((residents * outside).sum())  # about 672 residents
    assert 100 < expected < 2000
    assert real_run.manifest["unallocated_residents"] == pytest.approx(expected, rel=1e-3)


@needs_realdata
def test_real_crimes_used_plus_rejected_equal_rows_read(real_run) -> None:
    crimes = real_run.manifest["inputs"]["crimes"]
    assert crimes["rows_read"] == 18_631 + 17_639
    assert crimes["rows_used"] + crimes["rows_rejected"] == crimes["rows_read"]
    assert crimes["asb_rows"] > 8000  # 8,795 ASB rows, less any outside the wards
    cells = pd.read_parquet(real_run.out_dir / "cells.parquet")
    assert cells["crimes"].sum() + cells["asb"].sum() == crimes["rows_used"]
    # the crime IDs are blank on ASB rows, and those must not count as duplicates
    assert "duplicate Crime ID" not in crimes["reject_reasons"]


@needs_realdata
def test_real_every_ward_gets_fragments_and_signups_are_placed(real_run) -> None:
    cells = pd.read_parquet(real_run.out_dir / "cells.parquet")
    wards = gpd.read_file(REALDATA / "boundaries" / "wm_wards_2013.geojson")
    assert set(cells["area_code"]) == set(wards["WD13CD"])
    assert "E05001215" in set(cells["area_code"])  # Tyburn
    signups = real_run.manifest["inputs"]["signups"]
    assert signups["rows_used"] + signups["rows_rejected"] == 6000
    # postcodes outside the seven districts (Bromsgrove, Lichfield...) are the only rejects
    assert set(signups["reject_reasons"]) <= {"outside areas"}
    assert cells["registered"].sum() == signups["rows_used"]


@needs_realdata
def test_real_ward_residents_equal_direct_sum_where_oas_nest(tmp_path: Path) -> None:
    oas = gpd.read_file(REALDATA / "boundaries" / "wm_oa_2011.geojson").to_crs(27700)
    oas["geometry"] = shapely.make_valid(oas.geometry.values)
    wards = gpd.read_file(REALDATA / "boundaries" / "wm_wards_2013.geojson").to_crs(27700)
    pieces = gpd.overlay(
        oas[["OA11CD", "geometry"]], wards[["WD13CD", "geometry"]], keep_geom_type=True
    )
    pieces["share"] = pieces.area / pieces["OA11CD"].map(oas.set_index("OA11CD").area)
    best = pieces.sort_values("share").drop_duplicates("OA11CD", keep="last")
    nested = best[best["share"] > 0.9999]
    census = pd.read_csv(REALDATA / "census" / "census2011_ethnicity_oa_wm.csv")
    census = census[census["OA"].isin(nested["OA11CD"])]
    census.to_csv(tmp_path / "nested.csv", index=False)
    write_postcode_signups(tmp_path, n=200)
    result = run(_real_config(tmp_path, str(tmp_path / "nested.csv")))
    groups = [c for c in census.columns if c not in {"OA", "Persons", "LSOA", "MSOA", "LAD", "RGN"}]
    direct = (
        census.assign(
            total=census[groups].sum(axis=1),
            ward=census["OA"].map(nested.set_index("OA11CD")["WD13CD"]),
        )
        .groupby("ward")["total"]
        .sum()
    )
    engine = (
        pd.read_parquet(result.out_dir / "cells.parquet").groupby("area_code")["residents"].sum()
    )
    engine = engine.reindex(direct.index)
    assert len(direct) > 100
    # each OA has at most 0.01% of its surface outside its ward
    np.testing.assert_allclose(engine.to_numpy(), direct.to_numpy(), rtol=2e-4)


def _target_rate_errors(out_dir: Path) -> pd.Series:
    """Relative error of the engine's ward x origin target rates (500+ residents) against OAs
    assigned to wards by a point on their surface."""
    oas = gpd.read_file(REALDATA / "boundaries" / "wm_oa_2011.geojson")
    points = gpd.GeoDataFrame(
        {"OA": oas["OA11CD"]}, geometry=shapely.make_valid(oas.geometry.values), crs=oas.crs
    )
    points["geometry"] = points.representative_point()
    wards = gpd.read_file(REALDATA / "boundaries" / "wm_wards_2013.geojson")
    joined = gpd.sjoin(points, wards[["WD13CD", "geometry"]], predicate="within")
    census = pd.read_csv(REALDATA / "census" / "census2011_ethnicity_oa_wm.csv")
    groups = [c for c in census.columns if c not in {"OA", "Persons", "LSOA", "MSOA", "LAD", "RGN"}]
    census = census.merge(joined[["OA", "WD13CD"]], on="OA")
    direct = census.groupby("WD13CD")[groups].sum().stack().rename("residents").reset_index()
    direct.columns = ["area_code", "origin", "residents"]
    # the engine writes census columns by their standard names (WhiteBrit is White British)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    direct["origin"] = direct["origin"].map(manifest["inputs"]["population"]["origin_columns"])
    direct["target"] = direct["residents"] / direct.groupby("area_code")["residents"].transform(
        "sum"
    )
    table = pd.read_csv(out_dir / "representation.csv")
    engine = table[(table["level"] == "area") & (table["origin_level"] == "origin")]
    both = direct.merge(engine, on=["area_code", "origin"])
    big = both[both["residents"] >= 500]
    assert len(big) > 600  # 656 ward x origin rows of 500+ residents
    return (big["target_rate"] - big["target"]).abs() / big["target"]


@needs_realdata
def test_real_area_target_rates_agree_with_a_direct_oa_to_ward_sum(real_run_best_fit) -> None:
    """With `small_area_fit = "best_fit"`, the setting for OAs that nest in wards, over 656 ward
    x origin rows of 500+ residents: median relative error 0.11%, 95th percentile 2.5%, maximum
    13.5%. The reference places each OA by its point on surface, which puts 74 of the 8,468 OAs
    in the ward holding the smaller part of them; the engine fits each to its largest part, which
    matches ONS's own best-fit lookup more often (LSOA to 2016 wards: 49 misfits of 1,680,
    against 58 for the point on surface)."""
    error = _target_rate_errors(real_run_best_fit.out_dir)
    assert error.median() < 0.005
    assert error.quantile(0.95) < 0.03
    assert error.max() < 0.15
    assert not any("small_area_fit" in w for w in real_run_best_fit.manifest["warnings"])


@needs_realdata
def test_real_centroid_fit_reproduces_the_direct_oa_to_ward_sum(real_run_centroid) -> None:
    """With `small_area_fit = "centroid"`, the engine assigns OAs to wards by the rule the direct
    aggregation uses, so over 656 ward x origin rows of 500+ residents the target rates agree to
    rounding; and nothing is lost on the way (grid plus unallocated equal the census)."""
    error = _target_rate_errors(real_run_centroid.out_dir)
    assert error.max() < 0.03
    # representation.csv writes rates to 6 significant figures: a relative error of 5e-6 at most
    assert error.quantile(0.95) <= 5e-6
    cells = pd.read_parquet(real_run_centroid.out_dir / "cells.parquet")
    total = cells["residents"].sum() + real_run_centroid.manifest["unallocated_residents"]
    assert total == pytest.approx(2_734_842, rel=1e-9)


@needs_realdata
def test_real_deprivation_on_lsoa_outlines_reaches_each_oa_by_its_point(real_run_centroid) -> None:
    """IMD 2019 by 2011 LSOA on a run whose small areas are 2011 OAs: each OA's residents carry
    the rank of the LSOA holding a point on its surface, so a ward's value is the mean of its
    OAs' LSOA ranks weighted by the OAs' residents, computed here from the files alone."""
    oas = gpd.read_file(REALDATA / "boundaries" / "wm_oa_2011.geojson")
    points = gpd.GeoDataFrame(
        {"OA": oas["OA11CD"]}, geometry=shapely.make_valid(oas.geometry.values), crs=oas.crs
    )
    points["geometry"] = points.representative_point()
    wards = gpd.read_file(REALDATA / "boundaries" / "wm_wards_2013.geojson")
    lsoas = gpd.read_file(REALDATA / "boundaries" / "wm_lsoa_2011.geojson")
    placed = gpd.sjoin(points, wards[["WD13CD", "geometry"]], predicate="within").drop(
        columns="index_right"
    )
    placed = gpd.sjoin(placed, lsoas[["LSOA11CD", "geometry"]], predicate="within")
    census = pd.read_csv(REALDATA / "census" / "census2011_ethnicity_oa_wm.csv")
    origins = [
        c for c in census.columns if c not in {"OA", "Persons", "LSOA", "MSOA", "LAD", "RGN"}
    ]
    census["residents"] = census[origins].sum(axis=1)
    ranks = pd.read_csv(REALDATA / "deprivation" / "imd2019_lsoa11_wm.csv")
    joined = (
        census[["OA", "residents"]]
        .merge(placed[["OA", "WD13CD", "LSOA11CD"]], on="OA")
        .merge(ranks, left_on="LSOA11CD", right_on="lsoa11_code")
    )
    joined["weighted"] = joined["residents"] * joined["index_of_multiple_deprivation_imd_rank"]
    sums = joined.groupby("WD13CD")[["weighted", "residents"]].sum()
    ranked = pd.read_csv(real_run_centroid.out_dir / "ranked_areas.csv").set_index("area_code")
    both = ranked.join((sums["weighted"] / sums["residents"]).rename("expected"), how="inner")
    assert len(both) == len(wards)
    np.testing.assert_allclose(both["deprivation_value"], both["expected"], rtol=1e-6)


@needs_realdata
def test_real_split_by_surface_differs_and_says_so(real_run) -> None:
    """Split by surface (the default), the generalised ward outlines cut OAs in two: median
    relative error 0.47%, 95th percentile 2.81%, maximum 10.2%, and the run warns, naming the
    setting that fits OAs whole."""
    error = _target_rate_errors(real_run.out_dir)
    assert error.median() < 0.01
    assert error.quantile(0.95) < 0.03
    warning = next(w for w in real_run.manifest["warnings"] if "small_area_fit" in w)
    assert "best_fit" in warning


@needs_realdata
def test_real_representation_outputs(real_run) -> None:
    out = real_run.out_dir
    table = pd.read_csv(out / "representation.csv")
    assert list(table.columns[:16]) == [
        "level", "area_code", "area_name", "origin_level", "origin", "active_in_area",
        "registered", "target_rate", "actual_rate", "rate_delta", "representation_index",
        "ci_low", "ci_high", "parity_gap", "under_represented", "suppressed",
    ]  # fmt: skip
    assert set(table["level"]) == {"force", "parent", "area"}  # LAD_CD gives the parents
    force = table[(table["level"] == "force") & (table["origin_level"] == "origin")]
    # residents are published as whole numbers: each row within half a resident
    allocated = 2_734_842 - real_run.manifest["unallocated_residents"]
    assert abs(force["active_in_area"].sum() - allocated) <= 0.5 * len(force)
    published = table["registered"].dropna()
    assert not ((published >= 1) & (published < 10)).any()
    assert (out / "report.html").is_file() and (out / "report.md").is_file()


@needs_realdata
def test_real_open_segmentation_runs_and_is_reproducible(tmp_path: Path) -> None:
    """OA ethnicity (2011) with LSOA age and household deprivation (2021) tables: the silhouette
    chooses k among 4-10 (k = 5 when measured) and the same inputs give the same bytes."""
    from targeting.segments_build import build_open_segments

    lsoa = REALDATA / "boundaries" / "wm_lsoa_2021.geojson"
    census = REALDATA / "census"
    config = tmp_path / "segments.toml"
    config.write_text(
        f"""
[inputs]
areas = "{REALDATA / "boundaries" / "wm_wards_2013.geojson"}"
small_areas = "{REALDATA / "boundaries" / "wm_oa_2011.geojson"}"
population = "{census / "census2011_ethnicity_oa_wm.csv"}"
signups = "signups.csv"

[segments]
census = [
  {{ table = "{census / "census2021_population_age6_lsoa21_wm.csv"}", areas = "{lsoa}" }},
  {{ table = "{census / "census2021_ts011_household_deprivation_lsoa21_wm.csv"}", areas = "{lsoa}" }},
]
""",
        encoding="utf-8",
    )
    folder, seg = build_open_segments(config, out_dir=tmp_path / "a")
    again, _ = build_open_segments(config, out_dir=tmp_path / "b")
    table = pd.read_csv(folder / "segments.csv")
    assert len(table) == 8468 and table["segment"].notna().all()
    assert 4 <= seg.k <= 10
    assert seg.silhouettes[seg.k] == max(seg.silhouettes.values())
    assert (folder / "segments.csv").read_bytes() == (again / "segments.csv").read_bytes()
    variables = set(pd.read_csv(folder / "segment_profiles.csv")["variable"])
    assert {"Pakistani", "Aged 65 years and over", "deprived_3_dims"} <= variables
    described = pd.read_csv(folder / "segment_descriptions.csv")
    assert described["small_areas"].sum() == 8468


# ---------------------------------------------------------------------------------------------
# A force's own export on real geography: TS021 broad groups by 2021 LSOA, the 2025 wards, and
# sign-ups labelled in census wording mixed with ORIGINS-style names (tests/realworld.py)


@pytest.fixture(scope="module")
def export_runs(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The same sign-ups run against the TS021 table with its short headers and with the ONS
    bulk-file headers."""
    if not REALDATA.is_dir():
        pytest.skip(f"no real data at {REALDATA}")
    from realworld import draw_signups, write_export

    signups = draw_signups()
    short = write_export(tmp_path_factory.mktemp("export_short"), signups=signups)
    bulk = write_export(tmp_path_factory.mktemp("export_bulk"), signups=signups, bulk_headers=True)
    return signups, run(short.config), run(bulk.config)


@needs_realdata
def test_export_every_label_maps_and_white_is_not_flagged(export_runs) -> None:  # type: ignore[no-untyped-def]
    from realworld import LABELS

    _, short, _ = export_runs
    origins = short.manifest["origins"]
    assert origins["unmapped_signup_origins"] == {}
    went = {row["label"]: row["population_origin"] for row in origins["labels"]}
    for group, labels in LABELS.items():
        for label in labels:
            assert went[label] == {"other": "Other ethnic group"}.get(group, group.capitalize())
    table = pd.read_csv(short.out_dir / "representation.csv")
    force = table[(table["level"] == "force") & (table["origin_level"] == "origin")]
    flagged = dict(zip(force["origin"], force["under_represented"], strict=True))
    # every group signs up at the same rate but for Asian residents of three planted wards
    assert flagged == {"Asian": True, "Black": False, "Mixed": False,
                       "Other ethnic group": False, "White": False}  # fmt: skip
    for entry in short.manifest["inputs"].values():
        assert entry["rows_read"] == entry["rows_used"] + entry["rows_rejected"]


@needs_realdata
def test_export_registered_equals_an_independent_point_in_polygon_count(export_runs) -> None:  # type: ignore[no-untyped-def]
    from realworld import independent_counts

    signups, short, _ = export_runs
    table = pd.read_csv(short.out_dir / "representation.csv", dtype={"area_code": str})
    rows = table[
        (table["level"] == "area") & (table["origin_level"] == "origin") & ~table["suppressed"]
    ]
    counts = independent_counts(signups).assign(
        origin=lambda d: d["true_group"].map(
            {"asian": "Asian", "black": "Black", "mixed": "Mixed", "white": "White",
             "other": "Other ethnic group"}
        )
    ).set_index(["WD25CD", "origin"])["registered"]  # fmt: skip
    expected = counts.reindex(pd.MultiIndex.from_frame(rows[["area_code", "origin"]]), fill_value=0)
    assert len(rows) > 600  # of 192 wards x 5 groups, the rest withheld (small counts)
    np.testing.assert_array_equal(rows["registered"].to_numpy(), expected.to_numpy())


@needs_realdata
def test_export_with_ons_bulk_headers_gives_the_same_table(export_runs) -> None:  # type: ignore[no-untyped-def]
    _, short, bulk = export_runs
    for name in ("representation.csv", "ranked_areas.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(short.out_dir / name), pd.read_csv(bulk.out_dir / name)
        )


@needs_realdata
def test_export_planted_shortfalls_lead_the_ranking(export_runs) -> None:  # type: ignore[no-untyped-def]
    from realworld import PLANTED

    _, short, _ = export_runs
    ranked = pd.read_csv(short.out_dir / "ranked_areas.csv", dtype={"area_code": str})
    assert set(ranked["area_code"].head(3)) == set(PLANTED)


def test_validate_reports_every_label_before_stopping_on_unmapped_origins(tmp_path: Path) -> None:
    """An analyst checking a new export sees where each label went, even when a run would stop."""
    config = write_world(tmp_path)
    signups = tmp_path / "signups.csv"
    signups.write_text(signups.read_text().replace(",England,", ",Martian,"), encoding="utf-8")
    with pytest.raises(InputError, match="maps to no population category"):
        validate(config)
    report = (tmp_path / "out" / "validation" / "validation.md").read_text()
    assert (
        "| Martian | unknown origin | unmapped: not a label the crosswalk knows | <10 |" in report
    )
    assert "| Pakistani | Pakistani | same name as a population category | <10 |" in report


@needs_realdata
def test_real_deprivation_is_each_wards_residents_weighted_mean_of_its_lsoas(
    tmp_path: Path,
) -> None:
    """IMD 2019 (by 2011 LSOA, ranks as published) with the 2011 LSOA outlines and census on the
    2013 wards: every ward's `deprivation_value` in ranked_areas.csv equals the mean of its LSOAs'
    IMD ranks weighted by their residents, computed here from the files alone (each LSOA in the
    ward holding a point on its surface, as `small_area_fit = "centroid"` fits it), to 1e-6; the
    `deprivation` component ranks the most deprived (lowest mean rank) highest; the map draws
    it; and the map drawn in memory is the one `targeting map` draws from the store."""
    postcodes = pd.read_parquet(REALDATA / "postcodes" / "wm_postcodes.parquet")
    sample = postcodes.sample(3000, random_state=11).reset_index(drop=True)
    rng = np.random.default_rng(11)
    pd.DataFrame({
        "user_id": [f"U{i:05d}" for i in range(len(sample))], "joined": "2014-02-01",
        "latitude": sample["LAT"].round(6), "longitude": sample["LONG"].round(6),
        "origin": rng.choice(["England", "Pakistani", "Indian", "Black Caribbean"], len(sample)),
    }).to_csv(tmp_path / "signups.csv", index=False)  # fmt: skip
    lsoas = REALDATA / "boundaries" / "wm_lsoa_2011.geojson"
    census = REALDATA / "census" / "census2011_ethnicity_lsoa_wm.csv"
    imd = REALDATA / "deprivation" / "imd2019_lsoa11_wm.csv"
    base = (
        f'[inputs]\nareas = "{REALDATA / "boundaries" / "wm_wards_2013.geojson"}"\n'
        f'small_areas = "{lsoas}"\npopulation = "{census}"\nsignups = "signups.csv"\n'
    )
    (tmp_path / "run.toml").write_text(
        f'{base}deprivation = "{imd}"\n[grid]\nsmall_area_fit = "centroid"\n[output]\ndir = "out"\n',
        encoding="utf-8",
    )
    out = run(tmp_path / "run.toml").out_dir
    ranked = pd.read_csv(out / "ranked_areas.csv")

    shapes = gpd.read_file(lsoas)
    points = gpd.GeoDataFrame(
        {"LSOA": shapes["LSOA11CD"]},
        geometry=shapely.make_valid(shapes.geometry.values),
        crs=shapes.crs,
    )
    points["geometry"] = points.representative_point()
    wards = gpd.read_file(REALDATA / "boundaries" / "wm_wards_2013.geojson")
    ward_of = gpd.sjoin(points, wards[["WD13CD", "geometry"]], predicate="within")
    people = pd.read_csv(census)
    origins = [c for c in people.columns if c not in {"LSOA", "Persons", "MSOA", "LAD", "RGN"}]
    people["residents"] = people[origins].sum(axis=1)  # the engine's residents: the origins' sum
    ranks = pd.read_csv(imd)[["lsoa11_code", "index_of_multiple_deprivation_imd_rank"]]
    joined = (
        people[["LSOA", "residents"]]
        .merge(ward_of[["LSOA", "WD13CD"]], on="LSOA")
        .merge(ranks, left_on="LSOA", right_on="lsoa11_code")
    )
    joined["weighted"] = joined["residents"] * joined["index_of_multiple_deprivation_imd_rank"]
    sums = joined.groupby("WD13CD")[["weighted", "residents"]].sum()
    expected = (sums["weighted"] / sums["residents"]).rename("expected")

    both = ranked.set_index("area_code").join(expected, how="inner")
    assert len(both) == len(wards) == len(ranked)
    np.testing.assert_allclose(both["deprivation_value"], both["expected"], rtol=1e-6)
    # the component: rank percentiles of the need, so the lowest mean rank scores 1
    most = both["deprivation_value"].idxmin()
    assert both.loc[most, "deprivation"] == 1.0
    assert both["deprivation"].corr(both["deprivation_value"], method="spearman") == -1.0
    # the map's cell layer: ranks count 1 as most deprived, so its colours run darkest first
    page = (out / "map.html").read_text(encoding="utf-8")
    payload = json.loads(re.search(r"var D = (\{.*?\});\n", page).group(1))  # type: ignore[union-attr]
    layer = payload["cells"]["layers"]["deprivation_value"]
    assert layer["colours"] == list(reversed(SEQUENTIAL))
    assert layer["label"].startswith("Deprivation: IMD rank (1 = most deprived), residents-")
    shown = [v for v in layer["v"] if v is not None]
    assert 1 <= min(shown) < max(shown) <= 32844
    # drawn from the run's results in memory, it is the page `targeting map` draws from the store
    config = load_config(tmp_path / "run.toml")
    assert map_to_html(read_map_data(out, config=config), origin=None) == page


def test_the_plan_and_the_map_made_alongside_give_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Linux with two cores the crimes are read, and the grid's fragments, the small areas'
    weights, the plan and the map are made, in child processes while the run carries on: every
    output is the same, byte for byte, as when all is done in one process (the manifest's
    digests cover every file, the store by its tables)."""
    import dataclasses
    import os

    import targeting.layers as layers
    import targeting.pipeline as pipeline
    from targeting.background import can_fork
    from targeting.demo import write_demo_inputs

    where = tmp_path / "plan_pid.txt"
    crimes_where = tmp_path / "crimes_pid.txt"
    shapes_where = tmp_path / "shapes_pid.txt"
    fragments_where = tmp_path / "fragments_pid.txt"
    plan_week = pipeline.plan_week
    read_crimes = layers.read_crimes
    weigh_small_areas = pipeline.weigh_small_areas
    grid_fragments = pipeline.grid_fragments

    def plan_and_say_where(**kwargs: object) -> object:
        where.write_text(str(os.getpid()))
        return plan_week(**kwargs)  # type: ignore[arg-type]

    def read_crimes_and_say_where(*args: object, **kwargs: object) -> object:
        crimes_where.write_text(str(os.getpid()))
        return read_crimes(*args, **kwargs)  # type: ignore[arg-type]

    def weigh_and_say_where(*args: object, **kwargs: object) -> object:
        shapes_where.write_text(str(os.getpid()))
        return weigh_small_areas(*args, **kwargs)  # type: ignore[arg-type]

    def fragments_and_say_where(*args: object, **kwargs: object) -> object:
        fragments_where.write_text(str(os.getpid()))
        return grid_fragments(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "plan_week", plan_and_say_where)
    monkeypatch.setattr(layers, "read_crimes", read_crimes_and_say_where)
    monkeypatch.setattr(pipeline, "weigh_small_areas", weigh_and_say_where)
    monkeypatch.setattr(pipeline, "grid_fragments", fragments_and_say_where)
    config = load_config(write_demo_inputs(tmp_path / "demo"))
    config = dataclasses.replace(config, history=dataclasses.replace(config.history, store=None))

    def outputs(parallel: bool) -> dict[str, str]:
        out = run(config, parallel=parallel).out_dir
        return json.loads((out / "manifest.json").read_text())["outputs"]

    alone = outputs(parallel=False)
    assert (
        where.read_text()
        == crimes_where.read_text()
        == shapes_where.read_text()
        == fragments_where.read_text()
        == str(os.getpid())
    )
    # after a run in this process has filled polygons with cells (which a child forked after
    # that cannot do), the children are still used
    alongside = outputs(parallel=True)
    if can_fork():
        pids = {
            where.read_text(),
            crimes_where.read_text(),
            shapes_where.read_text(),
            fragments_where.read_text(),
        }
        assert len(pids) == 4 and str(os.getpid()) not in pids
    assert "map.html" in alongside and "tasking.html" in alongside
    assert alongside == alone


def _demo_config_without_history(path: Path) -> Config:
    import dataclasses

    config = load_config(path)
    return dataclasses.replace(config, history=dataclasses.replace(config.history, store=None))


def _demo_without_history(tmp_path: Path) -> Config:
    from targeting.demo import write_demo_inputs

    return _demo_config_without_history(write_demo_inputs(tmp_path / "demo"))


@pytest.mark.parametrize("parallel", [False, True])
def test_unusable_crimes_are_reported_first_whether_read_alongside_or_in_order(
    tmp_path: Path, parallel: bool
) -> None:
    """The crimes are read in a child while the run reads the later inputs and checks the output
    folder. With the crimes, the ratings (read after them) and the output folder all unusable,
    the crimes' error is the one raised, as when every input is read in order."""
    from targeting.errors import OutputError

    config = _demo_without_history(tmp_path)
    crime_file = sorted((tmp_path / "demo" / "crime").glob("*/*.csv"))[3]
    crimes = pd.read_csv(crime_file)
    crimes.drop(columns=["Month"]).to_csv(crime_file, index=False)
    (tmp_path / "demo" / "ratings.csv").write_text("", encoding="utf-8")
    with pytest.raises(InputError) as stopped:
        run(config, parallel=parallel)
    assert stopped.value.input_name == "crimes"
    assert stopped.value.path == crime_file
    assert "Month" in str(stopped.value)

    crimes.to_csv(crime_file, index=False)
    with pytest.raises(InputError) as stopped:
        run(config, parallel=parallel)
    assert stopped.value.input_name == "ratings"

    (tmp_path / "demo" / "ratings.csv").unlink()
    text = config.path.read_text(encoding="utf-8").replace('ratings = "ratings.csv"\n', "")
    config.path.write_text(text.replace('dir = "output"', 'dir = "."'), encoding="utf-8")
    unrated = _demo_config_without_history(config.path)
    with pytest.raises(OutputError):
        run(unrated, parallel=parallel)
    crimes.drop(columns=["Month"]).to_csv(crime_file, index=False)
    with pytest.raises(InputError) as stopped:
        run(unrated, parallel=parallel)
    assert stopped.value.input_name == "crimes"


def test_a_run_that_fails_while_crimes_are_read_alongside_leaves_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grid fails while the crimes' child may still run: the run stops it and reaps it."""
    import os

    import targeting.ingest.inputs as inputs
    import targeting.pipeline as pipeline
    from targeting.background import Pending

    started: list[Pending[object]] = []
    in_background = inputs.in_background

    def start_and_keep(*args: object, **kwargs: object) -> Pending[object]:
        started.append(in_background(*args, **kwargs))  # type: ignore[arg-type]
        return started[-1]

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the grid failed")

    monkeypatch.setattr(inputs, "in_background", start_and_keep)
    monkeypatch.setattr(pipeline, "build_grid", fail)
    with pytest.raises(RuntimeError, match="the grid failed"):
        run(_demo_without_history(tmp_path), parallel=True)
    assert [reading.name for reading in started] == ["reading crimes"]
    assert started[0].pid is None
    with pytest.raises(ChildProcessError):  # no child of this process is left to reap
        os.waitpid(-1, os.WNOHANG)


@pytest.mark.parametrize("parallel", [False, True])
def test_an_input_before_the_crimes_is_reported_first_though_they_are_read_from_the_start(
    tmp_path: Path, parallel: bool
) -> None:
    """With `[run] as_of` set (as in the demo) the crimes' child starts right after the areas,
    before the sign-ups are read: unusable sign-ups are still the error raised, as in order."""
    config = _demo_without_history(tmp_path)
    assert config.run.as_of is not None
    crime_file = sorted((tmp_path / "demo" / "crime").glob("*/*.csv"))[0]
    pd.read_csv(crime_file).drop(columns=["Month"]).to_csv(crime_file, index=False)
    (tmp_path / "demo" / "signups.csv").write_text("", encoding="utf-8")
    with pytest.raises(InputError) as stopped:
        run(config, parallel=parallel)
    assert stopped.value.input_name == "signups"
