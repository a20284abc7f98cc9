"""Shared fixtures for the config, io and ingest tests: two wards side by side, config builders
and the assertions every ingest test file uses.

The wards are laid out in British National Grid metres so easting/northing answers are known by
hand: ward A (E05000001) is x 400000-401000, ward B (E05000002) is x 401000-402000, both
y 286000-287000. The WGS84 points below are the centres of the wards (and a point far outside).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyproj
import pytest
from shapely.geometry import box

from targeting.config import Config, config_from_dict
from targeting.errors import InputError
from targeting.ingest import InputSummary

BNG = "EPSG:27700"
WGS84 = "EPSG:4326"
CODE_A, CODE_B = "E05000001", "E05000002"
WARD_A_BNG = box(400000, 286000, 401000, 287000)
WARD_B_BNG = box(401000, 286000, 402000, 287000)

_TO_WGS84 = pyproj.Transformer.from_crs(BNG, WGS84, always_xy=True)
A_LON, A_LAT = _TO_WGS84.transform(400500, 286500)
B_LON, B_LAT = _TO_WGS84.transform(401500, 286500)
FAR_LAT, FAR_LON = 53.5, -1.0  # Yorkshire: outside both wards


def wards_frame() -> gpd.GeoDataFrame:
    """The two wards with ONS-style column names, in WGS84."""
    return gpd.GeoDataFrame(
        {"WD13CD": [CODE_A, CODE_B], "WD13NM": ["Alpha", "Tyburn"], "LAD_CD": ["L1", "L1"]},
        geometry=[WARD_A_BNG, WARD_B_BNG],
        crs=BNG,
    ).to_crs(WGS84)


@pytest.fixture
def areas() -> gpd.GeoDataFrame:
    """The wards as `read_areas` returns them (canonical columns, WGS84)."""
    w = wards_frame()
    return gpd.GeoDataFrame(
        {
            "area_code": w["WD13CD"],
            "area_name": w["WD13NM"],
            "parent_code": w["LAD_CD"],
            "parent_name": None,
        },
        geometry=w.geometry,
        crs=WGS84,
    )


def build_config(folder: Path, inputs: dict[str, Any] | None = None, **sections: Any) -> Config:
    """A config for `folder/run.toml` with the three required inputs and any extra sections."""
    raw: dict[str, Any] = {
        "inputs": {
            "areas": "areas.geojson",
            "population": "population.csv",
            "signups": "signups.csv",
            **(inputs or {}),
        },
        **sections,
    }
    return config_from_dict(raw, path=folder / "run.toml")


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """`make_config(inputs={...}, run={...})` -> a `Config` rooted in `tmp_path`."""

    def make(inputs: dict[str, Any] | None = None, **sections: Any) -> Config:
        return build_config(tmp_path, inputs, **sections)

    return make


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def assert_accounting(summary: InputSummary) -> None:
    """Every row read is either used or rejected, and every reject has a reason."""
    assert summary.rows_used + summary.rows_rejected == summary.rows_read
    if summary.rows_rejected:
        assert (summary.rejects["reason"].astype(str) != "").all()


def reasons_by(summary: InputSummary, column: str) -> dict[str, str]:
    """Reject reason keyed by a column's value as read."""
    rej = summary.rejects
    return dict(zip(rej[column].astype(str), rej["reason"], strict=True))


def assert_fatal(info: pytest.ExceptionInfo[InputError], path: Path, *texts: str) -> None:
    """A fatal message names the file, says the problem and gives the fix."""
    message = str(info.value)
    assert str(path) in message
    assert "Fix:" in message
    for text in texts:
        assert text in message, (text, message)


# The files that run the engine end to end, slowest first. xdist deals whole files to the two
# workers in collection order (`--dist loadfile --no-loadscope-reorder` in pyproject.toml);
# dealing these first lets both workers finish together rather than one waiting on a long file
# dealt last. Order only: a file missing here still runs, after these.
SLOWEST_FILES = (
    "test_pipeline.py", "test_tasking.py", "test_synth.py", "test_cli.py", "test_bad_inputs.py",
    "test_disclosure.py", "test_reliability.py", "test_demo.py",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


# a name a hostile boundary file could carry: every page must show it as text, never as markup
HOSTILE_NAME = '<script>alert("x")</script> & Co'


@pytest.fixture(scope="session")
def demo_output(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """One run of the demo city shared by every test that only reads its outputs (its config is
    `demo.toml` beside the output folder). Its first ward, Acocks Green, is renamed to
    `HOSTILE_NAME`, so every test of the pages also sees a name that must be escaped.

    Under xdist the workers share one run, made by whichever asks first: the folder above a
    worker's temporary folder belongs to this session alone."""
    import json

    from filelock import FileLock

    from targeting.demo import write_demo_inputs
    from targeting.pipeline import run

    base = tmp_path_factory.getbasetemp()
    root = base if worker_id == "master" else base.parent
    folder = root / "demo-shared"
    with FileLock(root / "demo-shared.lock"):
        if not (folder / "output" / "manifest.json").is_file():
            config = write_demo_inputs(folder)
            areas = config.parent / "areas.geojson"
            text = areas.read_text(encoding="utf-8")
            hostile = text.replace('"Acocks Green"', json.dumps(HOSTILE_NAME), 1)
            areas.write_text(hostile, encoding="utf-8")
            run(config)
    return folder / "output"
