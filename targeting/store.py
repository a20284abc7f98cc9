"""The run's output folder: written in a temporary folder beside the target and swapped in whole.

A run on bad input, or one interrupted half way, never leaves a half-written output folder: the
previous output stays as it was until the new one is complete. The DuckDB file holds the run's
tables for analysts (plain SQL, no extensions); `cells.parquet` is the contract's analyst file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from targeting.errors import NoRunError, OutputError
from targeting.io import sha256_file
from targeting.scoring import COMPONENT_NAMES

STORE_NAME = "targeting.duckdb"
CELLS_COLUMNS = (
    "cell",
    "area_code",
    "residents",
    "registered",
    "households",
    "watch_households",
    "crimes",
    "sac_crimes",
    "asb",
    "mean_rating",
)
_VERSIONED = (
    "targeting", "geopandas", "shapely", "pyogrio", "pyproj", "h3", "pandas", "numpy", "pyarrow",
    "duckdb", "rasterio",
)  # fmt: skip


def _remove_stale_temporaries(target: Path) -> None:
    """Remove temporary folders that killed runs left beside `target` (their process is gone);
    a folder of a run still going is left alone."""
    for folder in target.parent.glob(f".{target.name}.tmp-*"):
        pid = folder.name.removeprefix(f".{target.name}.tmp-").split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_output_dir(target: Path, *, marker: str) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces `target`, on error it is removed.

    Only an empty folder, or one holding `marker` (the file every output of this kind has), is
    replaced, so a mistyped output path cannot delete someone's data. The previous output is
    renamed to `<target>.prev` during the swap and removed after it, and a `.prev` left by a
    crash between the two renames is restored first.
    """
    target = target.resolve()
    prev = target.with_name(target.name + ".prev")
    if prev.exists() and not target.exists():
        prev.rename(target)
    _remove_stale_temporaries(target)
    if target.is_file() or (
        target.is_dir() and any(target.iterdir()) and not (target / marker).is_file()
    ):
        raise OutputError(
            f"{target} exists and is not an output folder of this kind (no {marker}); "
            "choose a new or empty folder"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    except OSError as exc:
        raise OutputError(f"cannot create the output folder next to {target}: {exc}") from exc
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        if prev.exists():
            shutil.rmtree(prev)
        if target.exists():
            target.rename(prev)
        tmp.rename(target)
        shutil.rmtree(prev, ignore_errors=True)
    except OSError as exc:
        raise OutputError(f"cannot move the finished output into {target}: {exc}") from exc


def package_versions() -> dict[str, str]:
    """Versions of the engine and the libraries whose behaviour shapes the numbers."""
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


# a spreadsheet reads a cell starting with one of these as a formula (CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells that a spreadsheet would run as a formula start with an
    apostrophe, which spreadsheets show as text. Numbers (and text that is a plain number, such
    as "-5", which a spreadsheet reads as that number) are left alone."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_object_dtype(out[col]) or pd.api.types.is_string_dtype(out[col]):
            text = out[col].astype("string")
            starts = text.str.startswith(FORMULA_STARTS).fillna(False).to_numpy(dtype=bool)
            if not starts.any():
                continue
            # only the cells that start like a formula are tried as numbers
            risky = starts.copy()
            risky[starts] = pd.to_numeric(out[col][starts], errors="coerce").isna().to_numpy()
            if risky.any():
                out[col] = out[col].where(~risky, "'" + text)
    return out


# How each number is published in the CSVs, declared once by column name (the store and
# cells.parquet keep full precision). Counts are whole: residents and households allocated from
# census areas, sign-up gaps and changes of rank included. Rates, shares, intervals, indices and
# p-values keep 6 significant figures (the contract asks rates for at least 6); scores and
# normalised components 3 decimals; model estimates (expected sign-ups, hours) 1 decimal;
# coordinates 6 decimals (about 0.1 m). A float column not named here keeps 6 significant figures.
COUNT_COLUMNS = frozenset({
    "registered", "active_in_area", "residents", "households", "watch_households", "parity_gap",
    "penetration_gap", "covered_residents", "covered_parity_gap", "signups", "hotspots",
    "street_sites", "station_days", "social_posts", "rank", "previous_rank", "rank_change",
    "parity_gap_change", "penetration_gap_change", "residents_before", "residents_now",
    "increase", "unknown_origin", "target_residents", "week",
})  # fmt: skip
DECIMALS = {
    "score": 3, "deprivation_value": 3, "mean_rating": 3, "expected_signups": 1,
    "expected_gain": 1, "officer_hours": 1, "officer_hours_capacity": 1, "latitude": 6,
    "longitude": 6,
}  # fmt: skip


def _significant(values: np.ndarray, figures: int) -> np.ndarray:
    """`values` to `figures` significant figures, written back as the shortest float that
    reads as that decimal (a division by a power of ten is correctly rounded)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        places = figures - 1 - np.floor(np.log10(np.abs(values)))
    places = np.where(np.isfinite(places), places, 0).astype(np.int64)
    up = np.power(10.0, np.clip(places, 0, 22))
    down = np.power(10.0, np.clip(-places, 0, 22))
    out = np.where(places >= 0, np.round(values * up) / up, np.round(values / down) * down)
    # powers of ten above 1e22 are not exact in binary: the few values that tiny (p-values)
    # go through their decimal text instead
    far = np.flatnonzero(np.abs(places) > 22)
    out[far] = [float(f"{v:.{figures}g}") for v in values[far]]
    return out


def round_as_published(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every float column rounded as the CSVs publish it (see
    `COUNT_COLUMNS` and `DECIMALS`; score components are rounded like the score)."""
    out = frame.copy()
    for col in out.columns:
        if not pd.api.types.is_float_dtype(out[col]):
            continue
        values = out[col].to_numpy(dtype=float, na_value=np.nan)
        if col in COUNT_COLUMNS:
            out[col] = pd.array(np.round(values), dtype="Float64").astype("Int64")
        elif col in DECIMALS or col in COMPONENT_NAMES:
            out[col] = np.round(values, DECIMALS.get(col, 3))
        else:
            out[col] = _significant(values, 6)
    return out


@dataclass(frozen=True)
class PreviousRun:
    """What a report and a tasking pack compare with: an earlier run's ranking, its force-wide
    origin rows and the date it was run to."""

    ranking: pd.DataFrame  # ranked_areas.csv
    force: pd.DataFrame  # representation.csv, force level, per origin and the total
    as_of: dt.date | None


def read_previous_run(folder: Path | None) -> PreviousRun | None:
    """An earlier run's output folder, for the change since then (None: no folder given)."""
    if folder is None:
        return None
    path = Path(folder) / "ranked_areas.csv"
    if not path.is_file():
        raise NoRunError(
            f"--previous {folder}: no finished run there (no ranked_areas.csv); give the output "
            "folder of an earlier run"
        )
    ranking = pd.read_csv(path, dtype={"area_code": str, "parent_code": str})
    rep_path = Path(folder) / "representation.csv"
    force = pd.DataFrame(columns=["origin_level", "origin", "registered", "actual_rate"])
    if rep_path.is_file():
        rep = pd.read_csv(
            rep_path, dtype={"area_code": str, "origin": str}, keep_default_na=False, na_values=[""]
        )
        force = rep[rep["level"] == "force"].reset_index(drop=True)
    as_of = None
    manifest = Path(folder) / "manifest.json"
    if manifest.is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            as_of = dt.date.fromisoformat(
                str(json.loads(manifest.read_text("utf-8"))["as_of"])[:10]
            )
    return PreviousRun(ranking, force, as_of)


def write_csv(frame: pd.DataFrame, path: Path, *, as_read: bool = False) -> None:
    """A CSV that opens safely in spreadsheet programs, with stable line ends and numbers
    rounded as published (`round_as_published`); `as_read` keeps rows exactly as they were
    read (rejects)."""
    tidy = frame if as_read else round_as_published(frame)
    neutralise_formulas(tidy).to_csv(path, index=False, lineterminator="\n")


def write_rejects(folder: Path, rejects: Mapping[str, pd.DataFrame]) -> None:
    """One `rejects/<input>.csv` per input that had rejected rows (the rows as read, `reason`),
    with formula-like text neutralised, since rejected rows are where hostile text ends up."""
    out = folder / "rejects"
    out.mkdir(exist_ok=True)
    for name, frame in rejects.items():
        if not frame.empty:
            write_csv(frame, out / f"{name}.csv", as_read=True)


def write_store(path: Path, tables: Mapping[str, pd.DataFrame], *, add: bool = False) -> None:
    """Write each frame as a DuckDB table in one file: a new file, or with `add` more tables in
    an existing one (a run writes the tables that need no plan while the plan is made).

    One DuckDB thread: the store is written beside the rest of the outputs, and on its own a
    force's store is written no slower by one thread than by two (and with a tenth less work).
    """
    if not add:
        path.unlink(missing_ok=True)
    con = duckdb.connect(str(path), config={"threads": 1})
    try:
        for name, frame in tables.items():
            con.register("frame_view", frame)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame_view')
            con.unregister("frame_view")
    finally:
        con.close()


# shared outputs go to meetings, phones and spreadsheets; restricted ones stay with analysts:
# the store and cells.parquet hold unsuppressed counts, rejects hold rows as read
RESTRICTED = ("targeting.duckdb", "cells.parquet", "rejects/")


def store_digest(path: Path) -> str:
    """sha256 over a DuckDB file's tables, their columns and an order-free sum of their rows'
    hashes, computed in the database: the same tables give the same digest although the file's
    bytes differ from run to run."""
    digest = hashlib.sha256()
    with duckdb.connect(str(path), read_only=True) as con:
        for (name,) in sorted(con.execute("SHOW TABLES").fetchall()):
            columns = con.execute(f'DESCRIBE "{name}"').fetchall()
            rows, total = con.execute(
                f'SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM "{name}" AS t'
            ).fetchone() or (0, 0)
            digest.update(f"{name}|{columns}|{rows}|{total}\n".encode())
    return digest.hexdigest()


def json_safe(value: Any) -> Any:
    """A copy in which every non-finite number (NaN, infinity: not JSON) is null and every
    other value JSON cannot hold (dates, paths, numpy numbers) is a string or a plain number."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def json_text(value: Any) -> str:
    """Strict JSON (never NaN or Infinity, which most readers reject), indented, ending in a
    newline."""
    return json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n"


def write_manifest(
    folder: Path, manifest: Mapping[str, Any], *, known: Mapping[str, str] | None = None
) -> Path:
    """`manifest.json` with the sha256 of every other file in the folder (the store's by its
    contents) and which outputs are restricted to analysts and which are safe to share.
    `known` gives digests already worked out, by path in the folder (a run digests its store
    while its map is drawn)."""
    given = known or {}

    def digest(path: Path) -> str:
        name = str(path.relative_to(folder))
        if name in given:
            return given[name]
        return store_digest(path) if path.suffix == ".duckdb" else sha256_file(path)

    outputs = {
        str(p.relative_to(folder)): digest(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }
    restricted = sorted(k for k in outputs if k.startswith(RESTRICTED))
    full = {
        **manifest,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "outputs": outputs,
        "restricted_outputs": restricted,
        "shareable_outputs": sorted(k for k in outputs if k not in restricted),
    }
    path = folder / "manifest.json"
    path.write_text(json_text(full), encoding="utf-8")
    return path


def fsync_tree(folder: Path) -> None:
    """Flush the finished files to disk before the swap, so a power cut cannot keep a torn file."""
    for p in folder.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def inputs_markdown(manifest: Mapping[str, Any]) -> str:
    """A short readable report of what each input gave: rows read/used/rejected, reasons,
    warnings, and where each sign-up origin label went."""
    lines = [
        f"# Input check ({manifest.get('protective_marking', '')})",
        "",
        f"Config: `{manifest.get('config_path', '')}`; as of {manifest.get('as_of', '')}.",
        "",
        "| input | read | used | rejected | reasons |",
        "|---|---:|---:|---:|---|",
    ]
    for name, info in manifest["inputs"].items():
        reasons = "; ".join(f"{r} ({n:,})" for r, n in info["reject_reasons"].items())
        lines.append(
            f"| {name} | {info['rows_read']:,} | {info['rows_used']:,} | "
            f"{info['rows_rejected']:,} | {reasons} |"
        )
    warnings = manifest.get("warnings", [])
    lines += ["", "## Warnings", ""] + ([f"- {w}" for w in warnings] or ["None."])
    labels = manifest.get("origins", {}).get("labels", [])
    if labels:
        lines += [
            "",
            "## Sign-up origins",
            "",
            "Each origin label and the population category its sign-ups are counted under.",
            "",
            "| label | counted as | how | sign-ups |",
            "|---|---|---|---:|",
        ]
        for row in labels:
            count = row["signups"] if isinstance(row["signups"], str) else f"{row['signups']:,}"
            lines.append(
                f"| {row['label'] or '(empty)'} | {row['population_origin'] or 'unknown origin'} "
                f"| {row['how']} | {count} |"
            )
    return "\n".join(lines) + "\n"
