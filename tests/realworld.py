"""A force's own export on real geography: the 2021 census (TS021 broad groups by LSOA 2021), the
2025 West Midlands wards, and synthetic sign-ups whose origins are written the way alert systems
and forms write them (census wording mixed with ORIGINS-style names), with shortfalls planted in
three wards.

The sign-ups are drawn so that every broad group signs up at the same rate per resident, except
Asian residents of the planted wards (a fifth of the rate). Each sign-up keeps the broad group it
was drawn for (`true_group`, never written to the export), so a test can count them independently
by point-in-polygon.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from tiny import REALDATA

WARDS = REALDATA / "boundaries" / "wm_wards_2025.geojson"
LSOAS = REALDATA / "boundaries" / "wm_lsoa_2021.geojson"
TS021 = REALDATA / "census" / "census2021_ts021_ethnicity_broad_lsoa21_wm.csv"
GROUPS = ("asian", "black", "mixed", "white", "other")
# the three planted wards (WD25): Asian residents there sign up at a fifth of the usual rate
PLANTED = ("E05011127", "E05011170", "E05011142")  # Bordesley Green, Sparkbrook & Balsall
# Heath East, Handsworth
PLANTED_UPTAKE = 0.2
SIGNUPS_PER_RESIDENT = 53_000 / 2_900_000
# labels as exports write them, per broad group: census wording (2011 and 2021, short and long,
# forms' dashes and capitals) and ORIGINS-style names
LABELS: dict[str, tuple[str, ...]] = {
    "white": (
        "White British", "England", "WHITE - BRITISH", "Scotland", "Polish", "Irish", "Roma",
        "Gypsy or Irish Traveller", "White: English, Welsh, Scottish, Northern Irish or British",
        "Any other White background", "white_british",
    ),
    "asian": (
        "Pakistani", "Indian", "Bangladeshi", "Muslim Indian", "Sikh Indian", "Chinese",
        "Asian, Asian British or Asian Welsh: Pakistani", "Asian/Asian British: Indian",
        "Other Asian", "asian - bangladeshi",
    ),
    "black": (
        "Black Caribbean", "African", "Somali", "Nigerian",
        "Black/African/Caribbean/Black British: Caribbean", "Other Black",
    ),
    "mixed": (
        "White and Black Caribbean", "Mixed", "Mixed/multiple ethnic groups: White and Asian",
        "White and Black African",
    ),
    "other": ("Arab", "Any other ethnic group", "Other ethnic group: Arab", "North African"),
}  # fmt: skip
UNKNOWN_LABELS = ("", "Not Found")
UNKNOWN_SHARE = 0.03
# ONS bulk-download headers of the same five columns (TS021, census2021-ts021-lsoa.csv style)
BULK_HEADERS = {
    "LSOA21CD": "geography code",
    "LSOA21NM": "geography",
    "total_usual_residents": "Ethnic group: Total: All usual residents",
    "asian": "Ethnic group: Asian, Asian British or Asian Welsh",
    "black": "Ethnic group: Black, Black British, Black Welsh, Caribbean or African",
    "mixed": "Ethnic group: Mixed or Multiple ethnic groups",
    "white": "Ethnic group: White",
    "other": "Ethnic group: Other ethnic group",
}


@dataclass(frozen=True)
class Export:
    """The files of one real-geography run and the truth behind the sign-ups."""

    config: Path
    signups: pd.DataFrame  # as written, plus `true_group`


def sample_points(
    polygons: gpd.GeoSeries, counts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`counts[i]` uniform random points inside polygon i (WGS84): x, y and the polygon index."""
    owner = np.repeat(np.arange(len(polygons)), counts)
    geoms = polygons.to_numpy()
    bounds = shapely.bounds(geoms)
    x = np.full(len(owner), np.nan)
    y = np.full(len(owner), np.nan)
    todo = np.arange(len(owner))
    while len(todo):
        b = bounds[owner[todo]]
        cx = b[:, 0] + rng.random(len(todo)) * (b[:, 2] - b[:, 0])
        cy = b[:, 1] + rng.random(len(todo)) * (b[:, 3] - b[:, 1])
        inside = shapely.contains_xy(geoms[owner[todo]], cx, cy)
        x[todo[inside]], y[todo[inside]] = cx[inside], cy[inside]
        todo = todo[~inside]
    return x, y, owner


def draw_signups(seed: int = 2021) -> pd.DataFrame:
    """Sign-ups drawn per LSOA and broad group, located by latitude/longitude, with labels."""
    rng = np.random.default_rng(seed)
    census = pd.read_csv(TS021, dtype={"LSOA21CD": str})
    lsoas = gpd.read_file(LSOAS)[["LSOA21CD", "geometry"]]
    wards = gpd.read_file(WARDS)[["WD25CD", "geometry"]]
    # each LSOA's ward for the planted shortfall: the ward holding a point on its surface
    points = gpd.GeoDataFrame(geometry=lsoas.geometry.representative_point(), crs=lsoas.crs)
    ward_of = gpd.sjoin(points, wards, predicate="within", how="left")["WD25CD"]
    lsoas = lsoas.assign(ward=ward_of.groupby(level=0).first().to_numpy())
    table = lsoas.merge(census, on="LSOA21CD", how="inner")
    frames = []
    for group in GROUPS:
        rate = np.full(len(table), SIGNUPS_PER_RESIDENT)
        if group == "asian":
            rate = np.where(table["ward"].isin(PLANTED), rate * PLANTED_UPTAKE, rate)
        counts = rng.poisson(table[group].to_numpy(dtype=float) * rate)
        x, y, owner = sample_points(table.geometry, counts, rng)
        labels = np.array(LABELS[group], dtype=object)
        frames.append(
            pd.DataFrame(
                {
                    "latitude": y.round(6),
                    "longitude": x.round(6),
                    "origin": labels[rng.integers(0, len(labels), len(x))],
                    "true_group": group,
                    "lsoa": table["LSOA21CD"].to_numpy()[owner],
                }
            )
        )
    signups = pd.concat(frames, ignore_index=True)
    signups = signups.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    unknown = rng.random(len(signups)) < UNKNOWN_SHARE
    signups.loc[unknown, "origin"] = rng.choice(np.array(UNKNOWN_LABELS), int(unknown.sum()))
    signups.loc[unknown, "true_group"] = ""
    days = rng.integers(0, 3 * 365, len(signups))
    joined = pd.Timestamp("2018-10-31") - pd.to_timedelta(days, unit="D")
    signups.insert(0, "user_id", [f"W{i:06d}" for i in range(len(signups))])
    signups.insert(1, "joined", joined.strftime("%Y-%m-%d"))
    return signups


def write_export(folder: Path, *, signups: pd.DataFrame, bulk_headers: bool = False) -> Export:
    """The config and files of a run on the real 2025 wards, 2021 LSOAs and TS021."""
    folder.mkdir(parents=True, exist_ok=True)
    census = pd.read_csv(TS021, dtype=str)
    if bulk_headers:
        census = census.rename(columns=BULK_HEADERS).drop(columns=["LAD23CD", "LAD23NM"])
        census.insert(0, "date", "2021")
    census.to_csv(folder / "census.csv", index=False)
    signups.drop(columns=["true_group", "lsoa"]).to_csv(folder / "signups.csv", index=False)
    config = folder / "run.toml"
    config.write_text(
        f'[inputs]\nareas = "{WARDS}"\nsmall_areas = "{LSOAS}"\npopulation = "census.csv"\n'
        'signups = "signups.csv"\n\n[run]\nas_of = 2018-10-31\n\n[output]\ndir = "out"\n',
        encoding="utf-8",
    )
    return Export(config, signups)


def independent_counts(signups: pd.DataFrame) -> pd.DataFrame:
    """Sign-ups per ward and broad group by geopandas point-in-polygon, not by the engine."""
    wards = gpd.read_file(WARDS)[["WD25CD", "geometry"]]
    known = signups[signups["true_group"] != ""]
    points = gpd.GeoDataFrame(
        known[["true_group"]],
        geometry=gpd.points_from_xy(known["longitude"], known["latitude"]),
        crs="EPSG:4326",
    )
    joined = gpd.sjoin(points, wards, predicate="within", how="inner")
    joined = joined[~joined.index.duplicated()]
    return joined.groupby(["WD25CD", "true_group"]).size().rename("registered").reset_index()


def write_postcode_signups(folder: Path, n: int = 6000) -> None:
    """`signups.csv` of `n` sign-ups at real West Midlands postcodes, the 2011 OA run's: 30% given
    by postcode (half of those written without the space and in lower case), the rest by their
    postcode's coordinates; origins as ORIGINS labels, blanks and "Not Found" included."""
    postcodes = pd.read_parquet(REALDATA / "postcodes" / "wm_postcodes.parquet")
    rng = np.random.default_rng(7)
    sample = postcodes.sample(n, random_state=7).reset_index(drop=True)
    by_postcode = rng.random(n) < 0.3
    compact = sample["Postcode"].str.replace(" ", "").str.lower()
    spaced = sample["Postcode"].where(rng.random(n) < 0.5, compact)
    origins = ["England", "Pakistani", "Polish", "Hindu Indian", "", "Not Found"]
    pd.DataFrame(
        {
            "user_id": [f"U{i:05d}" for i in range(n)],
            "joined": "2014-02-01",
            "latitude": sample["LAT"].where(~by_postcode).round(6),
            "longitude": sample["LONG"].where(~by_postcode).round(6),
            "postcode": spaced.where(by_postcode, ""),
            "origin": rng.choice(origins, n),
        }
    ).to_csv(folder / "signups.csv", index=False)
