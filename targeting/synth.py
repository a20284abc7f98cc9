"""Synthetic inputs at force and national scale, for benchmarks: the demo city, stretched to a
force's area, or tiled across the country as many forces.

Each tile is the demo generator's city with its own seed, its geography stretched about its centre
and moved to its place on a grid in British National Grid metres, and every code and id prefixed
with the tile's number so that tiles never collide. Files follow the contract's formats, so a
benchmark runs `targeting run` on them exactly as a force would.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from targeting.demo import write_demo_inputs
from targeting.demo.data import CRIME_FOLDER
from targeting.grid import points_to_areas

BNG = "EPSG:27700"
TILE_SPACING_M = 110_000.0  # tiles sit on a grid this far apart, beyond a stretched tile's size
GRID_ORIGIN = (100_000.0, 60_000.0)  # south-west of the grid, inside Great Britain's grid
COLUMNS = 5  # so the easternmost tiles stay west of 700 km, the grid's valid eastings


@dataclass(frozen=True)
class Scale:
    """How many demo cities, how far each is stretched (1 = the demo's 607 km2), and how many
    sign-ups each holds (None: the demo's own, about 53,000)."""

    tiles: int
    stretch: float
    signups: int | None = None


SCALES = {
    # about 900 km2, 2.2 million residents, 7,300 small areas, 53,000 sign-ups, 300,000 crimes
    "force": Scale(tiles=1, stretch=1.22),
    # about 150,000 km2 (1.6 million resolution-9 cells), 59 million residents, 198,000 small
    # areas, 4 million sign-ups, 8 million crimes
    "national": Scale(tiles=27, stretch=3.03, signups=148_000),
}

_TO_BNG = pyproj.Transformer.from_crs(4326, BNG, always_xy=True)
_TO_WGS84 = pyproj.Transformer.from_crs(BNG, 4326, always_xy=True)


@dataclass(frozen=True)
class _Move:
    """The affine move of one tile in BNG metres: stretch about `centre`, then go to `to`."""

    centre: tuple[float, float]
    to: tuple[float, float]
    stretch: float

    def xy(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (
            self.to[0] + self.stretch * (x - self.centre[0]),
            self.to[1] + self.stretch * (y - self.centre[1]),
        )

    def lonlat(self, lon: pd.Series, lat: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 coordinates moved (blanks stay blank)."""
        lon_v = pd.to_numeric(lon, errors="coerce").to_numpy(dtype=float)
        lat_v = pd.to_numeric(lat, errors="coerce").to_numpy(dtype=float)
        x, y = _TO_BNG.transform(lon_v, lat_v)
        new_lon, new_lat = _TO_WGS84.transform(*self.xy(np.asarray(x), np.asarray(y)))
        # pyproj turns a missing coordinate into infinity: keep it missing
        given = np.isfinite(lon_v) & np.isfinite(lat_v)
        return (
            np.where(given, np.round(new_lon, 6), np.nan),
            np.where(given, np.round(new_lat, 6), np.nan),
        )

    def frame(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        moved = frame.to_crs(BNG)
        moved["geometry"] = shapely.transform(
            moved.geometry.values, lambda c: np.column_stack(self.xy(c[:, 0], c[:, 1]))
        )
        return moved


def _text(value: pd.Series, prefix: str) -> pd.Series:
    """Codes prefixed with the tile; blanks stay blank."""
    text = value.fillna("").astype(str)
    return text.where(text == "", prefix + text)


def _more_signups(
    signups: pd.DataFrame, target: int, *, areas: gpd.GeoDataFrame, seed: int
) -> pd.DataFrame:
    """The demo's sign-ups and, up to `target` rows, copies of its clean rows (inside an area,
    a date, a unique id) under new ids: more residents of the same places signed up."""
    extra = target - len(signups)
    if extra <= 0:
        return signups
    lon = pd.to_numeric(signups["longitude"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(signups["latitude"], errors="coerce").to_numpy(dtype=float)
    inside = np.zeros(len(signups), dtype=bool)
    located = np.isfinite(lon) & np.isfinite(lat)
    inside[located] = points_to_areas(lon[located], lat[located], areas) >= 0
    clean = signups[
        inside
        & signups["joined"].str.fullmatch(r"\d{4}-\d{2}-\d{2}")
        & ~signups["user_id"].duplicated(keep=False)
    ]
    rng = np.random.default_rng(seed)
    copies = clean.iloc[rng.integers(0, len(clean), size=extra)].copy()
    copies["user_id"] = [f"X{j:07d}" for j in range(extra)]
    return pd.concat([signups, copies], ignore_index=True)


def _tile(source: Path, i: int, move: _Move, *, n_signups: int | None) -> dict[str, pd.DataFrame]:
    """One demo city moved into place with its codes prefixed: every input as a frame."""
    p = f"T{i:02d}"
    areas = move.frame(gpd.read_file(source / "areas.geojson")).to_crs(4326)
    for col in ("area_code", "parent_code"):
        areas[col] = _text(areas[col], p)
    areas["parent_name"] = p + " " + areas["parent_name"].astype(str)
    small = move.frame(gpd.read_file(source / "small_areas.gpkg"))
    small["area_code"] = _text(small["area_code"], p)
    schemes = move.frame(gpd.read_file(source / "schemes.geojson")).to_crs(4326)
    schemes["scheme_id"] = _text(schemes["scheme_id"], p)

    population = _read(source / "population.csv")
    population["area_code"] = _text(population["area_code"], p)
    postcodes = _read(source / "postcodes.csv")
    postcodes["pcds"] = _text(postcodes["pcds"], p)
    postcodes["long"], postcodes["lat"] = move.lonlat(postcodes["long"], postcodes["lat"])
    signups = _more_signups(
        _read(source / "signups.csv"),
        n_signups or 0,
        areas=gpd.read_file(source / "areas.geojson").to_crs(4326),
        seed=i,
    )
    signups["user_id"] = _text(signups["user_id"], p)
    signups["postcode"] = _text(signups["postcode"], p)
    lon, lat = move.lonlat(signups["longitude"], signups["latitude"])
    signups["longitude"] = _coord_text(lon)
    signups["latitude"] = _coord_text(lat)
    east = pd.to_numeric(signups["easting"], errors="coerce").to_numpy(dtype=float)
    north = pd.to_numeric(signups["northing"], errors="coerce").to_numpy(dtype=float)
    e2, n2 = move.xy(east, north)
    signups["easting"] = _coord_text(np.round(e2, 1))
    signups["northing"] = _coord_text(np.round(n2, 1))
    ratings = _read(source / "ratings.csv")
    ratings["user_id"] = _text(ratings["user_id"], p)
    lon, lat = move.lonlat(ratings["longitude"], ratings["latitude"])
    ratings["longitude"] = _coord_text(lon)
    ratings["latitude"] = _coord_text(lat)
    crimes = pd.concat(
        [_read(f) for f in sorted((source / CRIME_FOLDER).glob("*/*.csv"))],
        ignore_index=True,
    )
    crimes["Crime ID"] = _text(crimes["Crime ID"], p)
    crimes["LSOA code"] = _text(crimes["LSOA code"], p)
    lon, lat = move.lonlat(crimes["Longitude"], crimes["Latitude"])
    crimes["Longitude"] = _coord_text(lon)
    crimes["Latitude"] = _coord_text(lat)
    segments = _read(source / "segments.csv")
    segments["area_code"] = _text(segments["area_code"], p)
    segments["segment"] = _text(segments["segment"], p + "-")
    descriptions = _read(source / "segment_descriptions.csv")
    descriptions["segment"] = _text(descriptions["segment"], p + "-")
    streets = move.frame(gpd.read_file(source / "streets.gpkg"))
    return {
        "areas": areas, "small_areas": small, "schemes": schemes, "population": population,
        "postcodes": postcodes, "signups": signups, "ratings": ratings, "crimes": crimes,
        "segments": segments, "segment_descriptions": descriptions, "streets": streets,
    }  # fmt: skip


def _read(path: Path) -> pd.DataFrame:
    """A demo CSV as text, blanks as empty strings, so it is written back unchanged."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _coord_text(values: np.ndarray) -> pd.Series:
    """Coordinates as text for a CSV, blanks where there is none."""
    series = pd.Series(values, dtype=float)
    return series.astype(str).where(series.notna(), "")


def _place(i: int, source: Path, stretch: float) -> _Move:
    """Where tile `i` goes: the demo city at `source` stretched, on the grid's i-th square."""
    bounds = gpd.read_file(source / "areas.geojson").to_crs(BNG).total_bounds
    centre = ((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    return _Move(centre, tile_centre(i), stretch)


def tile_centre(i: int) -> tuple[float, float]:
    """Where tile `i`'s centre goes, in British National Grid metres."""
    return (
        GRID_ORIGIN[0] + (i % COLUMNS + 0.5) * TILE_SPACING_M,
        GRID_ORIGIN[1] + (i // COLUMNS + 0.5) * TILE_SPACING_M,
    )


def _tiles(n: int, *, scale: Scale, seed: int) -> Iterator[dict[str, pd.DataFrame]]:
    """The `n` tiles one at a time, so only one is ever held in memory."""
    with tempfile.TemporaryDirectory(prefix="targeting-synth-") as tmp:
        for i in range(n):
            source = Path(tmp) / f"tile{i}"
            write_demo_inputs(source, seed=seed + i)
            tile = _tile(source, i, _place(i, source, scale.stretch), n_signups=scale.signups)
            shutil.rmtree(source)
            yield tile


def _write(out: Path, frames: dict[str, pd.DataFrame], label: str) -> Path:
    """One set of inputs in the contract's formats, with the config that runs them."""
    out.mkdir(parents=True, exist_ok=True)
    gpd.GeoDataFrame(frames["areas"], crs=4326).to_file(out / "areas.geojson", driver="GeoJSON")
    gpd.GeoDataFrame(frames["small_areas"], crs=BNG).to_file(
        out / "small_areas.gpkg", driver="GPKG"
    )
    gpd.GeoDataFrame(frames["schemes"], crs=4326).to_file(out / "schemes.geojson", driver="GeoJSON")
    gpd.GeoDataFrame(frames["streets"], crs=BNG).to_file(out / "streets.gpkg", driver="GPKG")
    for name in ("population", "postcodes", "signups", "ratings", "segments",
                 "segment_descriptions"):  # fmt: skip
        frames[name].to_csv(out / f"{name}.csv", index=False, lineterminator="\n")
    crime_dir = out / CRIME_FOLDER
    crime_dir.mkdir(exist_ok=True)
    for month, rows in frames["crimes"].groupby("Month", sort=True):
        rows.to_csv(crime_dir / f"{month}-street.csv", index=False, lineterminator="\n")
    config = out / "synth.toml"
    config.write_text(
        f"""# synthetic inputs: {label}
[inputs]
areas = "areas.geojson"
small_areas = "small_areas.gpkg"
population = "population.csv"
signups = "signups.csv"
postcodes = "postcodes.csv"
crimes = ["crime/*.csv"]
ratings = "ratings.csv"
schemes = "schemes.geojson"
segments = "segments.csv"
segment_descriptions = "segment_descriptions.csv"
streets = "streets.gpkg"

[run]
as_of = 2018-10-31

[output]
dir = "output"
""",
        encoding="utf-8",
    )
    return config


def write_synthetic_inputs(
    out_dir: Path, *, scale: str = "force", tiles: int | None = None, seed: int = 2018
) -> Path:
    """Write synthetic inputs at `scale` ("force" or "national"; `tiles` overrides the number of
    demo cities) into `out_dir` as one set of inputs for one run; return the config's path.

    A national picture is better run force by force (`write_synthetic_forces`); one run over many
    tiles is what the size sweep times.
    """
    chosen = SCALES[scale]
    n = tiles or chosen.tiles
    parts: dict[str, list[pd.DataFrame]] = {}
    for tile in _tiles(n, scale=chosen, seed=seed):
        for name, frame in tile.items():
            parts.setdefault(name, []).append(frame)
    joined = {k: pd.concat(v, ignore_index=True) for k, v in parts.items()}
    label = f"{n} demo cit{'y' if n == 1 else 'ies'}, stretched {chosen.stretch}x"
    return _write(Path(out_dir), joined, label)


def write_synthetic_forces(
    out_dir: Path, *, tiles: int | None = None, seed: int = 2018
) -> list[Path]:
    """Write national-scale synthetic inputs as one folder per force (`forces/T00`, ...), each
    with its own config, as forces hold their data: their own alert system and their own
    police.uk crime files. Return the configs' paths, for `targeting batch`."""
    chosen = SCALES["national"]
    n = tiles or chosen.tiles
    configs = []
    for i, tile in enumerate(_tiles(n, scale=chosen, seed=seed)):
        label = f"force T{i:02d} of {n}, a demo city stretched {chosen.stretch}x"
        configs.append(_write(Path(out_dir) / "forces" / f"T{i:02d}", tile, label))
    return configs
