"""A tiny two-ward world written to files, shared by the pipeline and CLI tests.

Geometry is laid out in British National Grid metres so shares are easy to compute by hand: ward
A is x 400000-401000, ward B is x 401000-402000, both y 286000-287000.
"""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

BNG = "EPSG:27700"


def write_world(folder: Path, *, with_bad_rows: bool = True) -> Path:
    """Write inputs and a config; return the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    wards = gpd.GeoDataFrame(
        {
            "WD13CD": ["E05000001", "E05000002"],
            "WD13NM": ["Alpha", "Tyburn"],
            "LAD_CD": ["L1", "L1"],
        },
        geometry=[box(400000, 286000, 401000, 287000), box(401000, 286000, 402000, 287000)],
        crs=BNG,
    )
    wards.to_file(folder / "wards.gpkg", driver="GPKG")
    oas = gpd.GeoDataFrame(
        {
            "OA11CD": ["OA1", "OA2", "OA3", "OA4"],
            "households": [100, 100, 10, 50],
        },
        geometry=[
            box(400000, 286000, 401000, 286500),  # inside A, south half
            box(401000, 286000, 402000, 287000),  # all of B
            box(400500, 286700, 400520, 286720),  # 20 m square: far smaller than a cell
            box(400000, 286500, 401000, 287500),  # half in A, half outside every ward
        ],
        crs=BNG,
    ).to_crs("EPSG:4326")
    oas.to_file(folder / "oa.geojson", driver="GeoJSON")
    pd.DataFrame(
        {
            "OA": ["OA1", "OA2", "OA3", "OA4"],
            "Persons": [300, 205, 12, 100],  # OA2 has 5 residents in a group the table leaves out,
            "Pakistani": [100, 20, 2, 10],
            "WhiteBrit": [200, 180, 10, 90],
            "LAD": ["Test", "Test", "Test", "Test"],
        }
    ).to_csv(folder / "census.csv", index=False)
    rows = [
        ("U1", "2018-01-01", 52.4760, -1.9940, "Pakistani", "active"),
        ("U2", "2018-02-01", 52.4760, -1.9940, "England", "active"),
        ("U3", "2018-03-01", 52.4760, -1.9790, "England", "deleted"),
        ("U4", "2018-04-01", 52.4760, -1.9790, "", "active"),
    ]
    if with_bad_rows:
        rows += [
            ("U4", "2018-04-01", 52.4760, -1.9790, "England", "active"),  # duplicate user_id
            ("U5", "not a date", 52.4760, -1.9790, "England", "active"),
            ("U6", "2018-04-01", 53.5, -1.0, "England", "active"),  # outside areas
        ]
    pd.DataFrame(
        rows, columns=["user_id", "joined", "latitude", "longitude", "origin", "status"]
    ).to_csv(folder / "signups.csv", index=False)
    (folder / "run.toml").write_text(
        '[inputs]\nareas = "wards.gpkg"\nsmall_areas = "oa.geojson"\npopulation = "census.csv"\n'
        'signups = "signups.csv"\n\n[output]\ndir = "out"\n',
        encoding="utf-8",
    )
    return folder / "run.toml"


# the real public West Midlands data beside the repository (CI has it too)
REALDATA = Path(
    os.environ.get(
        "TARGETING_REALDATA", Path(__file__).resolve().parents[2] / "shared" / "realdata"
    )
)
needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"no real data at {REALDATA}")
