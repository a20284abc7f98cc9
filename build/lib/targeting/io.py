"""Reading files as users have them: CSV/Parquet tables and vector boundaries in any declared CRS.

Tables are read as text so a rejected row can be written back exactly as it was read; callers parse
the columns they need. Every failure to read a file becomes an `InputError` naming the file, the
problem and the fix.
"""

from __future__ import annotations

import glob
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from targeting.errors import InputError, Problem

WGS84 = "EPSG:4326"


def sha256_file(path: Path) -> str:
    """The file's sha256, for the manifest, so a reader can tell exactly which data a run used."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def normalise_name(name: str) -> str:
    """Lower-case, alphanumerics only: how column names and labels are compared."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def expand_globs(patterns: Sequence[str], *, input_name: str) -> list[Path]:
    """The files matched by a list of paths or globs, sorted; an unmatched pattern is fatal."""
    files: list[Path] = []
    problems = []
    for pattern in patterns:
        matched = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
        matched = [p for p in matched if p.is_file()]
        if not matched:
            problems.append(
                Problem(pattern, "matches no file", f"check the path in [inputs] {input_name}")
            )
        files.extend(matched)
    if problems:
        raise InputError(input_name, patterns[0] if patterns else "", problems)
    return list(dict.fromkeys(files))


def _require_file(path: Path, input_name: str) -> None:
    if not path.is_file():
        raise InputError(
            input_name,
            path,
            [Problem(str(path), "file not found", f"check [inputs] {input_name} in the config")],
        )
    if path.stat().st_size == 0:
        raise InputError(
            input_name, path, [Problem(str(path), "file is empty", "export the data again")]
        )


def read_table(path: Path, *, input_name: str) -> pd.DataFrame:
    """A CSV or Parquet table with every column as text (empty string for blanks).

    CSV encodings tried in order: UTF-8 (with or without BOM), then Windows-1252/Latin-1, since
    spreadsheets exported on force laptops are often one of those.
    """
    _require_file(path, input_name)
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            frame = pd.read_parquet(path).astype("string").fillna("")
        else:
            frame = _read_csv_text(path)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            input_name,
            path,
            [
                Problem(
                    str(path),
                    f"cannot be read as a table ({exc})",
                    "save it as UTF-8 CSV or Parquet",
                )
            ],
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise InputError(
            input_name,
            path,
            [Problem(str(path), "has a header but no rows", "export the data again")],
        )
    return frame.astype(object)


def _read_csv_text(path: Path) -> pd.DataFrame:
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return pd.read_csv(
                path, dtype=str, keep_default_na=False, encoding=encoding, skipinitialspace=False
            )
        except UnicodeDecodeError:
            continue
    raise ValueError("unknown text encoding")


def find_column(
    columns: Iterable[str],
    canonical: str,
    *,
    mapping: Mapping[str, object],
    aliases: Sequence[str] = (),
    patterns: Sequence[str] = (),
) -> str | None:
    """The file's column for a canonical name: the config mapping, else a known alias or pattern."""
    cols = list(columns)
    mapped = mapping.get(canonical)
    if isinstance(mapped, str):
        return mapped if mapped in cols else None
    by_norm = {normalise_name(c): c for c in reversed(cols)}
    for alias in (canonical, *aliases):
        hit = by_norm.get(normalise_name(alias))
        if hit is not None:
            return hit
    for pattern in patterns:
        for c in cols:
            if re.fullmatch(pattern, c, flags=re.IGNORECASE):
                return c
    return None


def missing_column_problem(path: Path, canonical: str, input_name: str, expected: str) -> Problem:
    return Problem(
        f"{path} column '{canonical}'",
        f"is missing (looked for {expected})",
        f'add the column or map it: [columns.{input_name}] {canonical} = "Your column name"',
    )


def read_vector(path: Path, *, input_name: str) -> tuple[gpd.GeoDataFrame, int]:
    """Polygons from GeoJSON, GeoPackage, Shapefile or GeoParquet in WGS84, and how many were repaired.

    Invalid source polygons (self-intersections are common in generalised boundaries) are repaired
    with `make_valid`, keeping their polygonal parts, rather than dropped.
    """
    _require_file(path, input_name)
    try:
        if path.suffix.lower() in {".parquet", ".geoparquet"}:
            frame = gpd.read_parquet(path)
        else:
            frame = pyogrio.read_dataframe(path)
    except Exception as exc:
        raise InputError(
            input_name,
            path,
            [
                Problem(
                    str(path),
                    f"cannot be read as boundaries ({str(exc).splitlines()[0]})",
                    "export it again as GeoJSON, GeoPackage, Shapefile or GeoParquet",
                )
            ],
        ) from exc
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame:
        raise InputError(
            input_name, path, [Problem(str(path), "has no geometry", "export it with its geometry")]
        )
    if len(frame) == 0:
        raise InputError(
            input_name, path, [Problem(str(path), "has no features", "export it again")]
        )
    if frame.crs is None:
        raise InputError(
            input_name,
            path,
            [
                Problem(
                    str(path),
                    "declares no coordinate reference system",
                    "export it with its CRS (e.g. the .prj of a shapefile, EPSG:27700 or EPSG:4326)",
                )
            ],
        )
    frame = frame.to_crs(WGS84)
    geoms = frame.geometry.values
    invalid = ~shapely.is_valid(geoms) & ~shapely.is_missing(geoms)
    repaired = int(invalid.sum())
    if repaired:
        fixed = shapely.make_valid(geoms[invalid])
        frame.loc[invalid, frame.geometry.name] = [polygonal_part(g) for g in fixed]
    return frame, repaired


def polygonal_part(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygons inside a repaired geometry (make_valid can add stray lines or points)."""
    if geom is None or isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        return geom
    parts = [
        g for g in shapely.get_parts(geom) if isinstance(g, shapely.Polygon | shapely.MultiPolygon)
    ]
    if not parts:
        return shapely.Polygon()
    return shapely.union_all(parts)


def parse_numbers(values: pd.Series) -> np.ndarray:
    """Text to float; blanks and non-numbers become NaN (callers decide if that is a reject)."""
    cleaned = values.astype(str).str.strip().str.replace(",", "", regex=False)
    return pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=float, copy=True)
