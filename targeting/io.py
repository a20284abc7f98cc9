"""Reading files as users have them: CSV/Parquet tables and vector boundaries in any declared CRS.

Tables are read as text so a rejected row can be written back exactly as it was read; callers parse
the columns they need. Every failure to read a file becomes an `InputError` naming the file, the
problem and the fix.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import re
from collections import Counter
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


def _parquet_as_text(path: Path) -> pd.DataFrame:
    """A Parquet table with every column as text, as `astype("string")` writes it (empty for
    nulls), so that a value reads the same from Parquet as from a CSV pandas wrote."""
    frame = pd.read_parquet(path)
    return pd.DataFrame(
        {
            name: floats_as_text(column)
            if column.dtype == np.float64
            else column.astype("string").fillna("")
            for name, column in frame.items()
        },
        index=frame.index,
    )


def floats_as_text(column: pd.Series) -> pd.Series:
    """Doubles as text exactly as Python writes them (`str`: the shortest digits that read back
    to the same double), nulls empty, as `astype("string")` does, ten times faster.

    Arrow's cast writes the same shortest digits but not always in Python's form ("52" for
    "52.0", "0.00001" for "1e-05", "1e+15" for "1000000000000000.0"), so the values whose form
    can differ (no point, an exponent, or outside 1e-4 to 1e15) are written by Python.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    arrow = pc.cast(pa.array(values), pa.string())
    size = np.abs(values)
    redo = (
        ~pc.match_substring(arrow, ".").to_numpy(zero_copy_only=False)
        | pc.match_substring(arrow, "e").to_numpy(zero_copy_only=False)
        | ~np.isfinite(values)
        | ((size < 1e-4) & (size > 0))
        | (size >= 1e15)
    )
    at = np.flatnonzero(redo)
    by_python = pa.array(["" if np.isnan(v) else str(v) for v in values[at].tolist()], pa.string())
    text = pc.replace_with_mask(arrow, pa.array(redo), by_python) if len(at) else arrow
    return pd.Series(pd.array(text, dtype="string"), index=column.index, name=column.name)


def read_table(path: Path, *, input_name: str) -> pd.DataFrame:
    """A CSV or Parquet table with every column as text (empty string for blanks).

    CSV encodings tried in order: UTF-8 (with or without BOM), then Windows-1252/Latin-1, since
    spreadsheets exported on force laptops are often one of those.
    """
    _require_file(path, input_name)
    suffix = path.suffix.lower()
    try:
        frame = _parquet_as_text(path) if suffix in {".parquet", ".pq"} else _read_csv_text(path)
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
    layout = frame.attrs.get("layout", "")
    # pandas' text type, held by pyarrow: a column of 300,000 values is one buffer, not 300,000
    # Python strings, and its string methods run in pyarrow (a third of the crimes' reading)
    out = frame.astype("str")
    out.attrs["layout"] = layout
    return out


DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SAMPLE_BYTES = 1 << 16


def csv_layout(sample: str) -> tuple[str, int]:
    """The delimiter and the header's line number of a CSV, from its first lines.

    The delimiter is the one (comma, semicolon, tab or pipe) that splits lines into the same
    number of fields, two or more, holding the most fields in all, and of those the one that
    splits the most lines (a comma CSV whose values hold semicolons is still a comma CSV); the
    header is the first line with that many fields, so title lines above a table (as Nomis
    downloads have) are skipped. A file no delimiter splits is read as one column from its first
    line.
    """
    best: tuple[tuple[int, int, int], str, int] | None = None
    for delimiter in DELIMITERS:
        # records, not lines: a quoted value may hold a line break
        records = list(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter))
        widths = [len(row) for row in records]
        common = Counter(
            w for w, row in zip(widths, records, strict=True) if "".join(row).strip() and w > 1
        )
        if not common:
            continue
        # the width that holds the most fields: a table's rows outweigh a short title block
        width, count = max(common.items(), key=lambda wc: (wc[0] * wc[1], wc[0]))
        if best is None or (count * width, count, width) > best[0]:
            best = ((count * width, count, width), delimiter, widths.index(width))
    if best is None:
        return ",", 0
    return best[1], best[2]


def _read_plain_csv(path: Path, sample: str) -> pd.DataFrame | None:
    """A plain CSV (UTF-8, commas, the header on its first line) read by pyarrow's columnar
    reader, every column as text, exactly as the general reader below would read it; None where
    the file is anything else (a short or long row, bytes that are not UTF-8, a blank or
    repeated column name), for the general reader to take."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    first = sample.splitlines()[0] if sample else ""
    names = next(csv.reader([first]), [])
    if not names or any(not n.strip() for n in names) or len(set(names)) != len(names):
        return None
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    # pyarrow's text as pandas' text columns, without a Python string per value
    frame = table.to_pandas()
    frame.attrs["layout"] = ""
    return frame


def _read_csv_text(path: Path, *, columnar: bool = True) -> pd.DataFrame:
    """A CSV as text, whatever its delimiter, with any title lines above the table and footer
    lines below it left out (the layout is recorded in `attrs["layout"]`); a plain CSV goes
    through pyarrow's columnar reader (`columnar`), two to three times faster."""
    with path.open("rb") as fh:
        head = fh.read(_SAMPLE_BYTES)
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            sample = head.decode(encoding)
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # not just a character cut by the sample's end
                continue
            sample = head[: exc.start].decode(encoding)
        delimiter, header = csv_layout(sample)
        if columnar and encoding == "utf-8-sig" and delimiter == "," and header == 0:
            fast = _read_plain_csv(path, sample)
            if fast is not None:
                return fast
        try:
            with path.open(encoding=encoding, newline="") as handle:
                for _ in range(header):  # the title lines, counted as lines (blank ones too)
                    handle.readline()
                frame = pd.read_csv(
                    handle, dtype=str, keep_default_na=False, sep=delimiter, skipinitialspace=False
                )
        except UnicodeDecodeError:
            continue
        notes = [f"{DELIMITERS[delimiter]}-separated"] if delimiter != "," else []
        if delimiter == ";":  # spreadsheets that write semicolons write decimal commas: 52,47
            frame = frame.replace(r"^\s*(-?\d+),(\d+)\s*$", r"\1.\2", regex=True)
            notes[0] += ", decimal commas read as points"
        if header:
            # below a title block, lines with only their first field are the footer
            rest = frame.iloc[:, 1:].fillna("").astype(str).apply(lambda c: c.str.strip())
            filled = (rest != "").any(axis=1).to_numpy()
            last = int(np.flatnonzero(filled)[-1]) + 1 if filled.any() else 0
            footer = len(frame) - last
            frame = frame.iloc[:last]
            notes.append(
                f"the table at line {header + 1} ({header} title line(s) above it and {footer} "
                "footer line(s) below it left out)"
            )
        frame = frame.fillna("")
        frame.attrs["layout"] = "; ".join(notes)
        return frame
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
    if frame.geometry.has_z.any():  # 3D outlines: the third coordinate means nothing here
        frame = frame.set_geometry(shapely.force_2d(frame.geometry.values), crs=WGS84)
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


# a number as text that pyarrow's cast and pandas' `to_numeric` read alike (thousands commas
# already taken out): the rest, rare in a real file, goes through pandas
_PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def _parse_by_pandas(values: pd.Series) -> np.ndarray:
    cleaned = values.astype(str).str.strip().str.replace(",", "", regex=False)
    return pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=float, copy=True)


def parse_numbers(values: pd.Series) -> np.ndarray:
    """Text to float; blanks and non-numbers become NaN (callers decide if that is a reject).

    Thousands commas and surrounding spaces are ignored. A column of numbers and blanks (nearly
    every real file) is cast by pyarrow at once, ten times faster than pandas' `to_numeric` on
    300,000 coordinates, and correctly rounded (pandas' parser can be one unit in the last
    place off from 17 significant digits). Otherwise plain decimals are cast by pyarrow and the
    rest read by pandas; the words both read as numbers ("nan", "inf") they read alike.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        # a text column read by `read_table` is held by pyarrow already: no copy
        text = pc.cast(pa.array(values, from_pandas=True), pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return _parse_by_pandas(values)  # not all text: pandas reads each value
    text = pc.replace_substring(pc.utf8_trim(text, " \t\r\n\f\v"), ",", "")
    out = np.full(len(values), np.nan)
    # most columns are numbers and blanks only: cast at once, without matching each value
    given = pc.fill_null(pc.not_equal(text, ""), False)
    try:
        out[given.to_numpy(zero_copy_only=False)] = pc.cast(
            pc.filter(text, given), pa.float64()
        ).to_numpy()
        return out
    except pa.ArrowInvalid:
        pass
    plain = pc.fill_null(pc.match_substring_regex(text, _PLAIN_NUMBER), False)
    is_plain = plain.to_numpy(zero_copy_only=False)
    out[is_plain] = pc.cast(pc.filter(text, plain), pa.float64()).to_numpy()
    other = ~is_plain & values.notna().to_numpy()
    if other.any():
        out[other] = _parse_by_pandas(values[other])
    return out
