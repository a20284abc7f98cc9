"""Emerging communities between two census snapshots."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pytest
from tiny import write_world

from targeting.emerging import find_emerging
from targeting.pipeline import run

CELL_A = h3.latlng_to_cell(52.476, -1.994, 9)
CELL_B = h3.latlng_to_cell(52.476, -1.979, 9)
AREAS = pd.DataFrame({"area_code": ["A1", "A2"], "area_name": ["Alpha", "Beta"]})


def _frame(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["cell", "area_code", "origin", "residents"])


def test_growth_thresholds_by_hand() -> None:
    before = _frame([(CELL_A, "A1", "Polish", 100), (CELL_A, "A1", "England", 1000),
                     (CELL_B, "A2", "Polish", 100)])  # fmt: skip
    now = _frame([(CELL_A, "A1", "Polish", 260), (CELL_A, "A1", "England", 1300),
                  (CELL_B, "A2", "Polish", 140), (CELL_B, "A2", "Somali", 150)])  # fmt: skip
    found = find_emerging(
        now, before, areas=AREAS, cell_resolution=8, min_growth=0.5, min_increase=100
    )
    areas = found[found["level"] == "area"]
    # Polish in A1: +160 (+160%) -> yes; England: +300 but only +30% -> no; Polish in A2: +40 -> no;
    # Somali in A2: from none to 150 -> yes (growth blank)
    assert areas[["code", "origin"]].values.tolist() == [["A1", "Polish"], ["A2", "Somali"]]
    polish = areas.iloc[0]
    assert polish["name"] == "Alpha"
    assert (polish["residents_before"], polish["residents_now"], polish["increase"]) == (
        100,
        260,
        160,
    )
    assert polish["growth"] == pytest.approx(1.6)
    assert np.isnan(areas.iloc[1]["growth"])
    cells = found[found["level"] == "cell"]
    assert set(cells["code"]) <= {h3.cell_to_parent(CELL_A, 8), h3.cell_to_parent(CELL_B, 8)}
    assert len(cells) == 2


def test_run_writes_emerging_csv_from_an_earlier_snapshot(tmp_path) -> None:
    config = write_world(tmp_path)
    pd.DataFrame(
        {"OA": ["OA1", "OA2", "OA3", "OA4"], "Persons": [100, 205, 12, 100],
         "Pakistani": [10, 20, 2, 10], "WhiteBrit": [90, 180, 10, 90]}
    ).to_csv(tmp_path / "census2001.csv", index=False)  # fmt: skip
    config.write_text(
        config.read_text().replace(
            'signups = "signups.csv"',
            'signups = "signups.csv"\npopulation_previous = "census2001.csv"',
        )
        + "\n[emerging]\nmin_increase = 50\n"
    )
    result = run(config)
    emerging = pd.read_csv(result.out_dir / "emerging.csv")
    area_rows = emerging[emerging["level"] == "area"]
    # OA1 (wholly in ward A) went from 10 to 100 Pakistani residents: +90 in ward A
    hit = area_rows[(area_rows["code"] == "E05000001") & (area_rows["origin"] == "Pakistani")]
    assert len(hit) == 1
    assert hit.iloc[0]["increase"] == pytest.approx(100 + 2 + 5 - (10 + 2 + 5), rel=1e-6)
    assert result.manifest["inputs"]["population_previous"]["rows_used"] == 4
