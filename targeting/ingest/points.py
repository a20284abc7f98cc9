"""Point inputs: postcode centroids, sign-ups, police.uk crimes and message ratings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyproj

from targeting.config import Config
from targeting.errors import InputError, Problem
from targeting.grid import AreaLocator, points_to_areas
from targeting.h3cells import cell_resolutions, valid_cells
from targeting.ingest.common import (
    ASB,
    STATUSES,
    WATCH_ROLES,
    Column,
    DateColumn,
    FileColumns,
    InputSummary,
    all_rejected,
    coords,
    duplicated_among_valid,
    first_reason,
    layout_warnings,
    read_dates,
    split_rejects,
)
from targeting.io import (
    expand_globs,
    missing_column_problem,
    parse_numbers,
    read_table,
)
from targeting.origins import OriginMapping

LATITUDE, LONGITUDE = Column(("lat",)), Column(("lon", "lng", "long"))
POSTCODES = FileColumns(
    "postcodes",
    {
        "postcode": Column(("pcds", "pcd", "pcd2", "postcode")),
        "latitude": LATITUDE,
        "longitude": Column(("long", "lon", "lng")),
        # optional: the street a postcode is on, where the force's postcode data has it
        "street": Column(("street_name", "thoroughfare", "road")),
    },
)
SIGNUPS = FileColumns(
    "signups",
    {
        "user_id": Column(("userid", "id", "user")),
        "joined": Column(
            ("joined_at", "registered_at", "created", "created_at", "date_joined"), date=True
        ),
        "latitude": LATITUDE,
        "longitude": LONGITUDE,
        "easting": Column(("x", "east")),
        "northing": Column(("y", "north")),
        "postcode": Column(("pcds", "post_code", "pcd")),
        "origin": Column(("origins", "ethnicity")),
        "status": Column(("user_status",)),
        "watch_role": Column(("role", "nhw_role")),
    },
)
CRIMES = FileColumns(
    "crimes",
    {
        "crime_id": Column(("Crime ID",)),
        "month": Column(("Month",)),
        "longitude": Column(("Longitude",)),
        "latitude": Column(("Latitude",)),
        "crime_type": Column(("Crime type",)),
    },
)
RATINGS = FileColumns(
    "ratings",
    {
        "rated_at": Column(("date", "rated", "timestamp"), date=True),
        "rating": Column(("score", "stars")),
        "user_id": Column(("userid", "user")),
        "latitude": LATITUDE,
        "longitude": LONGITUDE,
    },
)
VISITED = FileColumns(
    "visited",
    {
        "cell": Column(("h3", "h3_cell", "hotspot_cell")),
        "visited_on": Column(("visited", "date", "visit_date", "visited_at"), date=True),
    },
)


def normalise_postcode(values: pd.Series) -> pd.Series:
    """Postcodes compared regardless of spacing and case: upper case, letters and digits only.

    Most postcodes need only their spaces taken out, by pyarrow (a third of the time of a
    regular expression over every value); the rest go through the expression.
    """
    text = pa.array(values.astype(str), from_pandas=True)
    upper = pc.replace_substring(pc.utf8_upper(text), " ", "")
    simple = pc.fill_null(pc.ascii_is_alnum(upper), True).to_numpy(zero_copy_only=False)
    out = pd.Series(
        pd.array(upper, dtype=values.astype(str).dtype), index=values.index, name=values.name
    )
    if not simple.all():
        rest = out[~simple].str.replace(r"[^0-9A-Z]", "", regex=True)
        out = out.where(simple, rest)
    return out


def read_postcodes(config: Config) -> tuple[pd.DataFrame | None, InputSummary | None]:
    """Postcode centroids: `key, latitude, longitude, street` (key = upper case, no spaces;
    street blank where the file has none)."""
    path = config.inputs.postcodes
    if path is None:
        return None, None
    frame = read_table(path, input_name="postcodes")
    cols = POSTCODES.find(frame, config)
    POSTCODES.require(cols, ["postcode", "latitude", "longitude"], path, config)
    key = normalise_postcode(frame[cols["postcode"]])
    lat, lon, _, valid = coords(frame, cols["latitude"], cols["longitude"])
    reasons = np.full(len(frame), "", dtype=object)
    first_reason(reasons, key.eq("").to_numpy(), "missing postcode")
    first_reason(reasons, ~valid, "invalid coordinates")
    first_reason(reasons, duplicated_among_valid(key, reasons), "duplicate postcode")
    ok, rejects = split_rejects(frame, reasons)
    street = (
        frame[cols["street"]].astype("string").str.strip().fillna("")
        if cols["street"]
        else pd.Series("", index=frame.index, dtype="string")
    )
    out = pd.DataFrame(
        {
            "key": key[ok].to_numpy(),
            "latitude": lat[ok],
            "longitude": lon[ok],
            "street": street[ok].to_numpy(),
        }
    )
    return out, InputSummary("postcodes", (path,), len(frame), int(ok.sum()), rejects)


# an as_of this long after the last sign-up is usually a typo (a year out) or an old export
AS_OF_GAP_DAYS = 31


@dataclass(frozen=True)
class Signups:
    """Located, validated sign-ups. No names; ids stay inside the run, never in shared outputs."""

    # user_id, joined, latitude, longitude, area_code, label, status, watch_role; and `origin`
    # (the population category of the label) once the labels are mapped
    table: pd.DataFrame
    as_of: dt.date
    origins: OriginMapping | None = None  # how each label was mapped


SIGNUP_REQUIRED = ("user_id", "joined", "origin")


def read_signups(
    config: Config,
    *,
    areas: gpd.GeoDataFrame | None,
    postcodes: pd.DataFrame | None,
    locator: AreaLocator | None = None,
    required: Sequence[str] = SIGNUP_REQUIRED,
) -> tuple[Signups, InputSummary]:
    """Sign-ups placed by their first usable location (lat/lon, easting/northing, postcode) and,
    given `areas`, in the area that holds them (rows outside every area are rejected).

    `required` are the columns the file must have: a run needs the origin column (only its values
    may be empty), since a file without one would give a run in which every origin is unknown; a
    trial's outcome count needs only ids, dates and locations.
    """
    path = config.inputs.signups
    frame = read_table(path, input_name="signups")
    cols = SIGNUPS.find(frame, config)
    SIGNUPS.require(cols, required, path, config)
    if (
        not (cols["latitude"] and cols["longitude"])
        and not (cols["easting"] and cols["northing"])
        and not cols["postcode"]
    ):
        raise InputError(
            "signups", path,
            [Problem(str(path), "has no location columns", "add latitude,longitude or easting,northing or postcode")],
        )  # fmt: skip
    rows, reasons, dates = _signup_rows(frame, cols, path=path, config=config)
    lat, lon = _signup_locations(frame, cols, reasons, path=path, postcodes=postcodes)
    placed = reasons == ""
    area_code = np.full(len(frame), None, dtype=object)
    if areas is not None:
        area_idx = np.full(len(frame), -1)
        area_idx[placed] = points_to_areas(lon[placed], lat[placed], areas, locator=locator)
        first_reason(reasons, placed & (area_idx < 0), "outside areas")
        area_code[area_idx >= 0] = areas["area_code"].to_numpy()[area_idx[area_idx >= 0]]
    first_reason(reasons, duplicated_among_valid(rows["user_id"], reasons), "duplicate user_id")
    ok, rejects = split_rejects(frame, reasons)
    if not ok.any():
        raise all_rejected(
            "signups",
            path,
            rejects,
            "correct the rows for the reasons listed; when most are 'outside areas', the "
            "coordinates are usually swapped or in another CRS",
        )
    table = rows[ok].reset_index(drop=True)
    table.insert(2, "latitude", lat[ok])
    table.insert(3, "longitude", lon[ok])
    table.insert(4, "area_code", area_code[ok])
    as_of = config.run.as_of or rows["joined"].max().date()
    warnings = layout_warnings(frame) + ([dates.note] if dates.note else [])
    warnings += _as_of_gap(config.run.as_of, rows["joined"].max())
    details = {
        "status_counts": {
            k: int(v) for k, v in table["status"].value_counts().sort_index().items()
        },
        "watch_role_counts": {
            k: int(v) for k, v in table["watch_role"].value_counts().sort_index().items()
        },
    }
    summary = InputSummary(
        "signups", (path,), len(frame), int(ok.sum()), rejects, tuple(warnings), details
    )
    return Signups(table, as_of), summary


def _signup_rows(
    frame: pd.DataFrame, cols: Mapping[str, str | None], *, path: Path, config: Config
) -> tuple[pd.DataFrame, np.ndarray, DateColumn]:
    """Each row's user id, join date, origin label, status and Watch role, the first reason an
    unusable row is rejected for (so far), and how the dates were read."""
    reasons = np.full(len(frame), "", dtype=object)
    user = frame[cols["user_id"]].astype(str).str.strip() if cols["user_id"] else None
    if user is None:
        # without ids each row is its own person (a trial's count accepts such an export)
        user = pd.Series(frame.index.astype(str), index=frame.index)
    dates = read_dates(
        frame, str(cols["joined"]), "joined", input_name="signups", path=path, config=config
    )
    joined = dates.values
    first_reason(reasons, user.eq("").to_numpy(), "missing user_id")
    first_reason(reasons, joined.isna().to_numpy(), "unparseable joined date")
    as_of = config.run.as_of or joined.max().date()
    first_reason(
        reasons, (joined.dt.date > as_of).fillna(False).to_numpy(dtype=bool), "joined after as_of"
    )

    def text(name: str, *, blank: str) -> pd.Series:
        column = cols[name]
        if column is None:
            return pd.Series(blank, index=frame.index)
        return frame[column].astype(str).str.strip().str.lower().replace("", blank)

    status, role = text("status", blank="active"), text("watch_role", blank="none")
    first_reason(reasons, ~status.isin(STATUSES).to_numpy(), "unknown status")
    first_reason(reasons, ~role.isin(WATCH_ROLES).to_numpy(), "unknown watch_role")
    label = (
        frame[cols["origin"]].astype(str).str.strip()
        if cols["origin"]
        else pd.Series("", index=frame.index)
    )
    # text columns as they are (Arrow), not through objects and back
    rows = pd.DataFrame(
        {"user_id": user.array, "joined": joined.to_numpy(), "label": label.array,
         "status": status.array, "watch_role": role.array}
    )  # fmt: skip
    return rows, reasons, dates


def _signup_locations(
    frame: pd.DataFrame,
    cols: Mapping[str, str | None],
    reasons: np.ndarray,
    *,
    path: Path,
    postcodes: pd.DataFrame | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's latitude and longitude from its first usable location (lat/lon, then
    easting/northing, then postcode); `reasons` records rows whose location is invalid, not
    found or absent."""
    lat, lon, given, valid = coords(frame, cols["latitude"], cols["longitude"])
    first_reason(reasons, given & ~valid, "invalid latitude/longitude")
    use_en = ~given
    if cols["easting"] and cols["northing"]:
        e_text = frame[cols["easting"]].astype(str).str.strip()
        n_text = frame[cols["northing"]].astype(str).str.strip()
        en_given = use_en & (e_text.ne("") | n_text.ne("")).to_numpy()
        east, north = parse_numbers(e_text), parse_numbers(n_text)
        en_valid = (east >= 0) & (east <= 700_000) & (north >= 0) & (north <= 1_300_000)
        first_reason(reasons, en_given & ~en_valid, "invalid easting/northing")
        take = en_given & en_valid
        if take.any():
            tr = pyproj.Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)
            lon_en, lat_en = tr.transform(east[take], north[take])
            lon[take], lat[take] = lon_en, lat_en
        use_pc = use_en & ~en_given
    else:
        use_pc = use_en
    if cols["postcode"]:
        keys = normalise_postcode(frame[cols["postcode"]])
        pc_given = use_pc & keys.ne("").to_numpy()
        if pc_given.any() and postcodes is None:
            raise InputError(
                "signups", path,
                [Problem(str(path), f"{int(pc_given.sum())} rows are located only by postcode", "add inputs.postcodes (a postcode,latitude,longitude lookup)")],
            )  # fmt: skip
        if postcodes is not None:
            # each row's postcode looked up once (the keys are unique: duplicates are rejects)
            at = np.full(len(frame), -1)
            at[pc_given] = pd.Index(postcodes["key"]).get_indexer(keys[pc_given])
            first_reason(reasons, pc_given & (at < 0), "postcode not found")
            take = at >= 0
            lat[take] = postcodes["latitude"].to_numpy(dtype=float)[at[take]]
            lon[take] = postcodes["longitude"].to_numpy(dtype=float)[at[take]]
        use_none = use_pc & ~pc_given
    else:
        use_none = use_pc
    first_reason(reasons, use_none, "no location")
    return lat, lon


def _as_of_gap(as_of: dt.date | None, last_joined: pd.Timestamp) -> list[str]:
    """A warning when the configured `as_of` is long after the last sign-up."""
    if as_of is None or pd.isna(last_joined):
        return []
    gap = (as_of - last_joined.date()).days
    if gap <= AS_OF_GAP_DAYS:
        return []
    return [
        f"[run] as_of {as_of:%Y-%m-%d} is {gap:,} days after the last joined date "
        f"({last_joined:%Y-%m-%d}): the report's recent sections (sign-ups per day and "
        "per month) describe a period with no sign-ups; set as_of to the export's date"
    ]


def read_crimes(
    config: Config,
    *,
    areas: gpd.GeoDataFrame,
    as_of: dt.date,
    crime_types: pd.DataFrame,
    locator: AreaLocator | None = None,
) -> tuple[pd.DataFrame | None, InputSummary | None]:
    """police.uk street-level rows: `latitude, longitude, area_code, month, crime_type, is_asb,
    is_sac, is_public` (`is_public`: a type that happens in busy public places, the street
    tactic's footfall proxy)."""
    if not config.inputs.crimes:
        return None, None
    files = expand_globs(config.inputs.crimes, input_name="crimes")
    frames, parts, problems, bad_files = [], [], [], []
    for f in files:
        part = read_table(f, input_name="crimes")
        cols = CRIMES.find(part, config)
        missing = [c for c in ("month", "longitude", "latitude", "crime_type") if cols[c] is None]
        problems += [
            missing_column_problem(f, c, "crimes", CRIMES.columns[c].aliases[0]) for c in missing
        ]
        if missing:
            bad_files.append(f)
            continue
        # canonical columns to work on; rejects keep the columns as read (`_rejects_as_read`),
        # those kept only for them as categories: a few thousand values in 300,000 rows, a
        # tenth of the memory
        frames.append(pd.DataFrame({k: part[v] if v else "" for k, v in cols.items()}))
        canonical = {v for v in cols.values() if v}
        kept = {c: "category" for c in part.columns if c not in canonical}
        parts.append((f.name, part.astype(kept)))
    if problems:
        raise InputError("crimes", bad_files[0], problems)
    frame = pd.concat(frames, ignore_index=True)
    del frames
    pa.default_memory_pool().release_unused()  # the CSV reader's buffers, back to the system
    reasons = np.full(len(frame), "", dtype=object)
    lat, lon, given, valid = coords(frame, "latitude", "longitude")
    first_reason(reasons, ~given, "no coordinates")
    first_reason(reasons, ~valid, "invalid coordinates")
    month = _parse_months(frame["month"])
    first_reason(reasons, month.isna().to_numpy(), "unparseable Month")
    # months are the first of their month at midnight: later than as_of means after its day
    first_reason(reasons, (month > pd.Timestamp(as_of)).to_numpy(dtype=bool), "month after as_of")
    ctype = frame["crime_type"].astype(str).str.strip()
    first_reason(reasons, ctype.eq("").to_numpy(), "missing crime type")
    cid = frame["crime_id"].astype(str).str.strip()
    placed = reasons == ""
    area_idx = np.full(len(frame), -1)
    area_idx[placed] = points_to_areas(lon[placed], lat[placed], areas, locator=locator)
    first_reason(reasons, placed & (area_idx < 0), "outside areas")
    # a blank Crime ID (anti-social behaviour) is never a duplicate
    first_reason(
        reasons, cid.ne("").to_numpy() & duplicated_among_valid(cid, reasons), "duplicate Crime ID"
    )
    ok, rejects = _rejects_as_read(parts, reasons)
    known_types = set(crime_types["crime_type"])
    unknown = sorted(set(ctype[ok].unique()) - known_types)
    warnings = (
        [f"crime types not in the police.uk list (counted as crimes): {', '.join(unknown)}"]
        if unknown
        else []
    )
    is_asb = ctype[ok].eq(ASB).to_numpy()
    table = pd.DataFrame(
        {
            "latitude": lat[ok],
            "longitude": lon[ok],
            "area_code": areas["area_code"].array.take(area_idx[ok]),
            "month": _months_to_text(month[ok].to_numpy()),
            "crime_type": ctype.array[ok],
            "is_asb": is_asb,
            "is_sac": ctype[ok].isin(config.crimes.sac_types).to_numpy() & ~is_asb,
            "is_public": ctype[ok].isin(config.crimes.public_place_types).to_numpy() & ~is_asb,
        }
    )
    details = {"asb_rows": int(is_asb.sum()), "months": sorted(table["month"].unique().tolist())}
    summary = InputSummary(
        "crimes", tuple(files), len(frame), int(ok.sum()), rejects, tuple(warnings), details
    )
    return table, summary


def _rejects_as_read(
    parts: list[tuple[str, pd.DataFrame]], reasons: np.ndarray
) -> tuple[np.ndarray, pd.DataFrame]:
    """Which rows are kept, and the rejected ones with their columns as read, after their file
    and row: each file's table is sliced to its rejects rather than copied whole (a year of a
    force's crimes is 300,000 rows, most of the memory its reading takes)."""
    bad = reasons != ""
    pieces, start = [], 0
    for name, part in parts:
        rows = np.flatnonzero(bad[start : start + len(part)])
        piece = part.iloc[rows]
        piece = piece.astype(
            {c: "str" for c in piece.columns if isinstance(piece[c].dtype, pd.CategoricalDtype)}
        )
        piece.insert(0, "file", name)
        piece.insert(1, "row", rows + 2)
        pieces.append(piece)
        start += len(part)
    rejects = pd.concat(pieces, ignore_index=True).fillna("")
    rejects["reason"] = reasons[bad]
    return ~bad, rejects


def _parse_months(text: pd.Series) -> pd.Series:
    """police.uk's `YYYY-MM` months as datetimes (NaT where unparseable): each distinct value
    parsed once, as a year of crimes has a dozen in 300,000 rows."""
    codes, distinct = pd.factorize(text.astype(str).str.strip())
    parsed = pd.to_datetime(pd.Series(distinct), format="%Y-%m", errors="coerce")
    return pd.Series(parsed.array.take(codes, allow_fill=True), index=text.index)


def _months_to_text(months: np.ndarray) -> np.ndarray:
    """Datetimes as `YYYY-MM` text (objects): each distinct month formatted once by numpy, as a
    year of crimes has a dozen (formatting every row took a tenth of a force's ingest)."""
    distinct, codes = np.unique(months.astype("datetime64[M]"), return_inverse=True)
    return distinct.astype(str).astype(object)[codes]


def read_ratings(
    config: Config,
    *,
    areas: gpd.GeoDataFrame,
    signups: pd.DataFrame,
    as_of: dt.date,
    locator: AreaLocator | None = None,
) -> tuple[pd.DataFrame | None, InputSummary | None]:
    """Message ratings located by their own point or their sign-up's: `latitude, longitude, area_code, rating`."""
    path = config.inputs.ratings
    if path is None:
        return None, None
    frame = read_table(path, input_name="ratings")
    cols = RATINGS.find(frame, config)
    RATINGS.require(cols, ["rated_at", "rating"], path, config)
    if not (cols["latitude"] and cols["longitude"]) and not cols["user_id"]:
        raise InputError(
            "ratings", path,
            [Problem(str(path), "has no location", "add latitude,longitude or a user_id of a sign-up")],
        )  # fmt: skip
    reasons = np.full(len(frame), "", dtype=object)
    dated = read_dates(
        frame, str(cols["rated_at"]), "rated_at", input_name="ratings", path=path, config=config
    )
    rated = dated.values
    rating = parse_numbers(frame[cols["rating"]])
    first_reason(reasons, rated.isna().to_numpy(), "unparseable rated_at")
    first_reason(
        reasons, (rated.dt.date > as_of).fillna(False).to_numpy(dtype=bool), "rated after as_of"
    )
    first_reason(reasons, ~np.isin(rating, np.arange(1, 7)), "rating not an integer 1 to 6")
    lat, lon, given, valid = coords(frame, cols["latitude"], cols["longitude"])
    first_reason(reasons, given & ~valid, "invalid latitude/longitude")
    if cols["user_id"]:
        by_user = signups.set_index("user_id")
        uid = frame[cols["user_id"]].astype(str).str.strip()
        need = ~given & uid.ne("").to_numpy()
        u_lat = uid.map(by_user["latitude"]).to_numpy(dtype=float)
        first_reason(reasons, need & np.isnan(u_lat), "unknown user_id")
        take = need & ~np.isnan(u_lat)
        lat[take] = u_lat[take]
        lon[take] = uid.map(by_user["longitude"]).to_numpy(dtype=float)[take]
        first_reason(reasons, ~given & uid.eq("").to_numpy(), "no location")
    else:
        first_reason(reasons, ~given, "no location")
    placed = reasons == ""
    area_idx = np.full(len(frame), -1)
    area_idx[placed] = points_to_areas(lon[placed], lat[placed], areas, locator=locator)
    first_reason(reasons, placed & (area_idx < 0), "outside areas")
    ok, rejects = split_rejects(frame, reasons)
    table = pd.DataFrame(
        {
            "latitude": lat[ok],
            "longitude": lon[ok],
            "area_code": areas["area_code"].to_numpy()[area_idx[ok]],
            "rating": rating[ok],
            "rated_at": rated.to_numpy()[ok],
        }
    )
    warnings = (*layout_warnings(frame), *([dated.note] if dated.note else []))
    return table, InputSummary("ratings", (path,), len(frame), int(ok.sum()), rejects, warnings)


def read_visited(
    config: Config, *, as_of: dt.date
) -> tuple[pd.DataFrame | None, InputSummary | None]:
    """The log of visited hotspot cells: `cell` (an H3 index at the grid's resolution),
    `visited_on` (a date), so that recently visited cells stay off the next list."""
    path = config.inputs.visited
    if path is None:
        return None, None
    frame = read_table(path, input_name="visited")
    cols = VISITED.find(frame, config)
    VISITED.require(cols, ["cell", "visited_on"], path, config)
    reasons = np.full(len(frame), "", dtype=object)
    cell = frame[cols["cell"]].astype(str).str.strip().str.lower()
    valid = valid_cells(cell.to_numpy())
    first_reason(reasons, ~valid, "not an H3 cell")
    resolution = config.grid.resolution
    at_resolution = np.zeros(len(frame), dtype=bool)
    at_resolution[valid] = cell_resolutions(cell.to_numpy()[valid]) == resolution
    first_reason(reasons, valid & ~at_resolution, f"cell not at the grid's resolution {resolution}")
    visited_on = read_dates(
        frame, str(cols["visited_on"]), "visited_on", input_name="visited", path=path, config=config
    ).values
    first_reason(reasons, visited_on.isna().to_numpy(), "unparseable visited_on")
    first_reason(
        reasons,
        (visited_on.dt.date > as_of).fillna(False).to_numpy(dtype=bool),
        "visited after as_of",
    )
    ok, rejects = split_rejects(frame, reasons)
    table = pd.DataFrame({"cell": cell.to_numpy()[ok], "visited_on": visited_on.to_numpy()[ok]})
    return table, InputSummary("visited", (path,), len(frame), int(ok.sum()), rejects)
