"""The history: each run's aggregates kept by force and date, so the portal can show how every
neighbourhood's engagement moves over months.

A snapshot holds, per area, the residents, households and Watch households (public), the
sign-ups (all, with a known origin, and those whose messages fail: `comms_issue`,
`incommunicado`), the message ratings of the `[history] quality_days` before its date, and the
hotspots the run planned; and per area and origin the residents and sign-ups. Parents and the
force are sums of their areas, so they are not stored. The store is a restricted analyst file,
like `targeting.duckdb`: it holds exact counts (no person, postcode or point), and the portal
publishes them only through its disclosure rule (`targeting.portal.series`).

A snapshot comes from a finished run (`source` "run"), or is reconstructed from that run's
sign-ups by the day they joined and its ratings by the day they were given (`source`
"reconstructed", `add_run(..., backfill=N)`), so a force's portal starts with a year behind it.
A reconstruction counts today's sign-ups as they stand (a sign-up deleted since is not counted
at any date; statuses are today's) and plans no hotspots.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from targeting.errors import HistoryError, NoRunError

# what a run's store keeps for the history: sign-ups (not deleted) and ratings, by day
SIGNUP_DAY_COLUMNS = ("area_code", "origin", "joined", "status", "signups")
RATING_DAY_COLUMNS = ("area_code", "rated_on", "ratings", "low_ratings", "rating_total")
# visited hotspot cells (the visited log): each cell's area and first visit, and the sign-ups in
# it by the day they joined on or after that visit (a cell with none has one row, no day)
VISIT_DAY_COLUMNS = ("area_code", "cell", "visited_on", "joined", "signups")
# a snapshot's per-area columns after the area's names: public counts, then sign-up-derived
# counts (the portal protects these), then the plan's
PUBLIC_AREA_COUNTS = ("residents", "households", "watch_households")
SIGNUP_AREA_COUNTS = (
    "signups", "signups_known", "comms_issue", "incommunicado", "ratings", "low_ratings",
)  # fmt: skip
# what a run that has a visited log adds (blank without one): cells visited by the date, and
# the sign-ups in them since their visit (a sign-up-derived count, protected like the others)
VISIT_AREA_COUNTS = ("hotspots_visited", "visit_signups")
AREA_COLUMNS = (
    "area_code", "area_name", "parent_code", "parent_name", *PUBLIC_AREA_COUNTS,
    *SIGNUP_AREA_COUNTS, "rating_total", "hotspots_planned", *VISIT_AREA_COUNTS,
)  # fmt: skip
ORIGIN_COLUMNS = ("area_code", "origin", "residents", "registered")
SOURCES = ("run", "reconstructed")
STEPS = {"month": "month-ends", "week": "weeks"}


def signups_to_days(signups: pd.DataFrame) -> pd.DataFrame:
    """Sign-ups that are not deleted, counted per area, origin (blank: unknown), day joined and
    status: what the history reconstructs earlier dates from."""
    live = signups[signups["status"] != "deleted"].reset_index(drop=True)
    # the text columns as they are (to_numpy would make a Python string of every value)
    frame = pd.DataFrame(
        {
            "area_code": live["area_code"],
            "origin": live["origin"],
            "joined": pd.to_datetime(live["joined"]).dt.tz_localize(None).dt.normalize(),
            "status": live["status"],
        }
    )
    return (
        frame.groupby(list(SIGNUP_DAY_COLUMNS[:-1]), dropna=False, sort=True)
        .size()
        .rename("signups")
        .reset_index()
    )


def ratings_to_days(ratings: pd.DataFrame | None, *, low_rating: int) -> pd.DataFrame:
    """Message ratings per area and day given: how many, how many low, and their sum."""
    if ratings is None or ratings.empty:
        return pd.DataFrame(columns=list(RATING_DAY_COLUMNS))
    frame = pd.DataFrame(
        {
            "area_code": ratings["area_code"].to_numpy(),
            "rated_on": pd.to_datetime(ratings["rated_at"]).dt.tz_localize(None).dt.normalize(),
            "ratings": 1,
            "low_ratings": (ratings["rating"] <= low_rating).astype(int).to_numpy(),
            "rating_total": ratings["rating"].to_numpy(dtype=float),
        }
    )
    return frame.groupby(["area_code", "rated_on"], as_index=False, sort=True)[
        ["ratings", "low_ratings", "rating_total"]
    ].sum()


def visits_to_days(
    visited: pd.DataFrame | None,
    signups: pd.DataFrame,
    *,
    cells: pd.DataFrame,
    resolution: int,
) -> pd.DataFrame:
    """The visited log's cells with their area (the area holding most of the cell), first
    visit, and the sign-ups (not deleted) in them by day joined, on or after that visit."""
    from targeting.h3cells import points_to_cells

    if visited is None or visited.empty:
        return pd.DataFrame(columns=list(VISIT_DAY_COLUMNS))
    first = pd.DataFrame(
        visited.assign(visited_on=pd.to_datetime(visited["visited_on"]).dt.normalize())
        .groupby("cell", as_index=False)["visited_on"]
        .min()
    )
    home = (
        cells.sort_values("area_m2", ascending=False, kind="stable")
        .drop_duplicates("cell")
        .set_index("cell")["area_code"]
    )
    first["area_code"] = first["cell"].map(home)
    first = first.dropna(subset=["area_code"])
    live = signups[signups["status"] != "deleted"]
    placed = pd.DataFrame(
        {
            "cell": points_to_cells(
                live["latitude"].to_numpy(), live["longitude"].to_numpy(), resolution=resolution
            ),
            "joined": pd.to_datetime(live["joined"]).dt.tz_localize(None).dt.normalize(),
        }
    )
    after = placed.merge(first, on="cell")
    after = after[after["joined"] >= after["visited_on"]]
    counted = (
        after.groupby(["area_code", "cell", "visited_on", "joined"]).size().rename("signups")
    ).reset_index()
    none = first[~first["cell"].isin(counted["cell"])].assign(
        joined=pd.Series(pd.NaT, index=first.index, dtype="datetime64[us]"), signups=0
    )
    return pd.concat([counted, none], ignore_index=True)[list(VISIT_DAY_COLUMNS)]


@dataclass(frozen=True)
class Snapshot:
    """One date of one force's history."""

    force: str
    as_of: dt.date
    source: str  # "run" or "reconstructed"
    run_dir: str | None  # the run's output folder, for the portal's links
    threshold: int  # the run's disclosure threshold, which the portal's rounding follows
    quality_days: int  # the ratings counted are of this many days before `as_of`
    areas: pd.DataFrame  # AREA_COLUMNS, one row per area
    origins: pd.DataFrame  # ORIGIN_COLUMNS, one row per area and origin

    @property
    def signature(self) -> str:
        """What makes two snapshots comparable: the same areas and the same origins."""
        areas = sorted(self.areas["area_code"].astype(str))
        origins = sorted(self.origins["origin"].astype(str).unique())
        return hashlib.sha256(json.dumps([areas, origins]).encode()).hexdigest()

    @property
    def digest(self) -> str:
        """The snapshot's figures, so adding the same run twice can be told from another run
        of the same date."""
        # floats to 6 decimals: a sum of allocated residents differs in its last bits with the
        # order it was added in
        text = self.areas.sort_values("area_code").to_csv(
            index=False, float_format="%.6f"
        ) + self.origins.sort_values(["area_code", "origin"]).to_csv(
            index=False, float_format="%.6f"
        )
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class FinishedRun:
    """What a finished run's store gives the history: its date, force, areas and their public
    counts, residents per area and origin, sign-ups and ratings by day, hotspots per area."""

    force: str
    as_of: dt.date
    run_dir: Path
    quality_days: int
    threshold: int
    areas: pd.DataFrame  # area_code, area_name, parent_code, parent_name, PUBLIC_AREA_COUNTS
    residents: pd.DataFrame  # area_code, origin, residents
    signup_days: pd.DataFrame  # SIGNUP_DAY_COLUMNS
    rating_days: pd.DataFrame  # RATING_DAY_COLUMNS
    visit_days: pd.DataFrame | None  # VISIT_DAY_COLUMNS; None: the run had no visited log
    hotspots: pd.Series  # hotspots planned, by area code


def force_name(config: dict[str, object], *, config_path: str) -> str:
    """The force's name as a run's manifest config gives it: `[history] force`, else `[map]
    title`, else the config file's name."""
    history = config.get("history") or {}
    shown = config.get("map") or {}
    for value in (
        history.get("force") if isinstance(history, dict) else None,
        shown.get("title") if isinstance(shown, dict) else None,
    ):
        if value:
            return str(value)
    return Path(config_path).stem


def read_finished_run(output_dir: Path) -> FinishedRun:
    """A finished run's store and manifest, as the history needs them."""
    folder = Path(output_dir)
    store, manifest_path = folder / "targeting.duckdb", folder / "manifest.json"
    if not store.is_file() or not manifest_path.is_file():
        raise NoRunError(
            f"no finished run in {folder} (no targeting.duckdb and manifest.json): give the "
            "output folder of a run"
        )
    manifest = json.loads(manifest_path.read_text("utf-8"))
    config = manifest.get("config", {})
    with duckdb.connect(str(store), read_only=True) as con:
        tables = {name for (name,) in con.execute("SHOW TABLES").fetchall()}
        if "signup_days" not in tables:
            raise HistoryError(
                f"{folder} was written by an older version of targeting (its store has no "
                "sign-ups by day): run it again with this version, then add it"
            )
        counts = ", ".join(f"coalesce({c}, 0) AS {c}" for c in PUBLIC_AREA_COUNTS)
        areas = con.execute(
            f"SELECT area_code, area_name, parent_code, parent_name, {counts} FROM areas "
            "ORDER BY area_code"
        ).df()
        residents = con.execute(
            "SELECT area_code, origin, sum(residents) AS residents FROM cell_origins "
            "GROUP BY ALL ORDER BY ALL"
        ).df()
        signup_days = con.execute("SELECT * FROM signup_days").df()
        rating_days = con.execute("SELECT * FROM rating_days").df()
        visit_days = (
            con.execute("SELECT * FROM visit_days").df() if "visit_days" in tables else None
        )
        hotspots = con.execute(
            "SELECT area_code, count(*) AS n FROM hotspots GROUP BY area_code"
        ).df()
    return FinishedRun(
        force=force_name(config, config_path=str(manifest.get("config_path", folder.name))),
        as_of=dt.date.fromisoformat(str(manifest["as_of"])[:10]),
        run_dir=folder.resolve(),
        quality_days=int((config.get("history") or {}).get("quality_days", 91)),
        threshold=int((config.get("privacy") or {}).get("suppression_threshold", 10)),
        areas=areas,
        residents=residents,
        signup_days=signup_days,
        rating_days=rating_days,
        visit_days=visit_days,
        hotspots=hotspots.set_index("area_code")["n"],
    )


def snapshot_at(run: FinishedRun, as_of: dt.date) -> Snapshot:
    """The run's figures as they stood at `as_of`: sign-ups that had joined by then, ratings of
    the `quality_days` before it; the run's own date also has its planned hotspots."""
    day = pd.Timestamp(as_of)
    joined = run.signup_days[pd.to_datetime(run.signup_days["joined"]) <= day]
    known = joined[joined["origin"].notna()]
    registered = known.groupby(["area_code", "origin"])["signups"].sum().rename("registered")
    origins = (
        run.residents.join(registered, on=["area_code", "origin"])
        .fillna({"registered": 0})
        .astype({"registered": "int64"})
    )
    rated_on = pd.to_datetime(run.rating_days["rated_on"])
    window = run.rating_days[
        (rated_on <= day) & (rated_on > day - pd.Timedelta(days=run.quality_days))
    ]
    per_area = pd.DataFrame(
        {
            "signups": joined.groupby("area_code")["signups"].sum(),
            "signups_known": known.groupby("area_code")["signups"].sum(),
            **{
                status: joined[joined["status"] == status].groupby("area_code")["signups"].sum()
                for status in ("comms_issue", "incommunicado")
            },
            **{
                c: window.groupby("area_code")[c].sum()
                for c in ("ratings", "low_ratings", "rating_total")
            },
        }
    )
    areas = run.areas.join(per_area, on="area_code")
    counts = list(SIGNUP_AREA_COUNTS)
    areas[counts] = areas[counts].fillna(0).astype("int64")
    areas["rating_total"] = areas["rating_total"].fillna(0.0).astype(float)
    areas = areas.join(_visits_at(run.visit_days, day), on="area_code")
    if run.visit_days is not None:  # a run with a visited log: an area with none visited has 0
        areas[list(VISIT_AREA_COUNTS)] = areas[list(VISIT_AREA_COUNTS)].fillna(0)
    own = as_of == run.as_of
    areas["hotspots_planned"] = (
        areas["area_code"].map(run.hotspots).fillna(0).astype("Int64")
        if own
        else pd.array([pd.NA] * len(areas), dtype="Int64")
    )
    return Snapshot(
        force=run.force,
        as_of=as_of,
        source="run" if own else "reconstructed",
        run_dir=str(run.run_dir) if own else None,
        threshold=run.threshold,
        quality_days=run.quality_days,
        areas=areas[list(AREA_COLUMNS)].reset_index(drop=True),
        origins=origins[list(ORIGIN_COLUMNS)].reset_index(drop=True),
    )


def _visits_at(visit_days: pd.DataFrame | None, day: pd.Timestamp) -> pd.DataFrame:
    """Per area: cells first visited by `day`, and their sign-ups since the visit up to `day`
    (empty without a visited log, so both stay blank)."""
    if visit_days is None:
        return pd.DataFrame(columns=list(VISIT_AREA_COUNTS), dtype="Int64")
    visited = visit_days[pd.to_datetime(visit_days["visited_on"]) <= day]
    joined = pd.to_datetime(visited["joined"])
    return pd.DataFrame(
        {
            "hotspots_visited": visited.groupby("area_code")["cell"].nunique(),
            "visit_signups": visited[joined <= day].groupby("area_code")["signups"].sum(),
        }
    ).astype("Int64")


def earlier_dates(as_of: dt.date, *, count: int, every: str) -> list[dt.date]:
    """`count` dates before `as_of`, oldest first: month-ends (the last day of each earlier
    month) or the same weekday of each earlier week."""
    if every not in STEPS:
        raise HistoryError(f"--every must be one of {', '.join(STEPS)}, got {every!r}")
    if every == "week":
        return [as_of - dt.timedelta(weeks=k) for k in range(count, 0, -1)]
    first_of_month = pd.Timestamp(as_of).to_period("M").to_timestamp()
    ends = [(first_of_month - pd.DateOffset(months=k - 1)) - pd.Timedelta(days=1)
            for k in range(count, 0, -1)]  # fmt: skip
    return [e.date() for e in ends]


def run_snapshots(output_dir: Path, *, backfill: int = 0, every: str = "month") -> list[Snapshot]:
    """A finished run's snapshot, after `backfill` reconstructed ones at earlier dates."""
    run = read_finished_run(output_dir)
    dates = [*earlier_dates(run.as_of, count=backfill, every=every), run.as_of]
    return [snapshot_at(run, d) for d in dates]


_SCHEMA = {
    "snapshots": (
        "force VARCHAR, as_of DATE, source VARCHAR, run_dir VARCHAR, signature VARCHAR, "
        "digest VARCHAR, threshold INTEGER, quality_days INTEGER, areas INTEGER, signups BIGINT, added_at TIMESTAMP"
    ),
    "areas": (
        "force VARCHAR, as_of DATE, area_code VARCHAR, area_name VARCHAR, parent_code VARCHAR, "
        "parent_name VARCHAR, residents DOUBLE, households DOUBLE, watch_households DOUBLE, "
        "signups BIGINT, signups_known BIGINT, comms_issue BIGINT, incommunicado BIGINT, "
        "ratings BIGINT, low_ratings BIGINT, rating_total DOUBLE, hotspots_planned BIGINT, "
        "hotspots_visited BIGINT, visit_signups BIGINT"
    ),
    "origins": (
        "force VARCHAR, as_of DATE, area_code VARCHAR, origin VARCHAR, residents DOUBLE, "
        "registered BIGINT"
    ),
}


@dataclass(frozen=True)
class Added:
    """What adding a snapshot did: "added", "unchanged" (the store held it already),
    "replaced" (a run replaced a reconstruction of its date) or "kept" (a reconstruction was
    not stored over a run of its date)."""

    force: str
    as_of: dt.date
    source: str
    outcome: str


def _connect(store: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    path = Path(store)
    if read_only and not path.is_file():
        raise HistoryError(f"no history store at {path}: add a run first (targeting history add)")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise HistoryError(f"{path} cannot be opened as a history store: {exc}") from exc
    if not read_only:
        for name, columns in _SCHEMA.items():
            con.execute(f'CREATE TABLE IF NOT EXISTS "{name}" ({columns})')
    return con


def _check_comparable(con: duckdb.DuckDBPyConnection, snap: Snapshot) -> None:
    """Refuse a snapshot whose areas or origins differ from those the force's history holds."""
    held = con.execute(
        "SELECT signature, min(as_of) FROM snapshots WHERE force = ? GROUP BY signature",
        [snap.force],
    ).fetchall()
    if not held or held[0][0] == snap.signature:
        return
    first = held[0][1]

    def held_at_first(column: str, table: str) -> set[str]:
        query = f'SELECT DISTINCT {column} FROM "{table}" WHERE force = ? AND as_of = ?'
        return {r[0] for r in con.execute(query, [snap.force, first]).fetchall()}

    areas_before = held_at_first("area_code", "areas")
    origins_before = held_at_first("origin", "origins")
    areas_now = set(snap.areas["area_code"].astype(str))
    origins_now = set(snap.origins["origin"].astype(str))
    differences = []
    for what, before, now in (("areas", areas_before, areas_now),
                              ("origins", origins_before, origins_now)):  # fmt: skip
        if before != now:
            extra, missing = sorted(now - before), sorted(before - now)
            differences.append(
                f"{what}: {len(extra)} new ({', '.join(extra[:3]) or 'none'}), "
                f"{len(missing)} missing ({', '.join(missing[:3]) or 'none'})"
            )
    raise HistoryError(
        f"the history of {snap.force} holds runs of another configuration "
        f"({'; '.join(differences)}); a trend needs the same areas and origins at every date: "
        "add this run to a new store (--store), or name it as another force ([history] force)"
    )


def add_snapshots(store: Path, snapshots: Sequence[Snapshot]) -> list[Added]:
    """Add snapshots to the history store (created if missing), in one transaction.

    The same snapshot twice is a no-op; other figures for a date the store holds are refused,
    except that a run replaces a reconstruction of its date (and a reconstruction never replaces
    a run); a snapshot of other areas or origins than the force's history is refused.
    """
    outcomes = []
    with _connect(store) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for snap in snapshots:
                outcomes.append(_add_one(con, snap))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return outcomes


def _add_one(con: duckdb.DuckDBPyConnection, snap: Snapshot) -> Added:
    held = con.execute(
        "SELECT source, digest FROM snapshots WHERE force = ? AND as_of = ?",
        [snap.force, snap.as_of],
    ).fetchone()

    def added(outcome: str) -> Added:
        return Added(snap.force, snap.as_of, snap.source, outcome)

    if held is not None:
        source, digest = held
        if digest == snap.digest:
            return added("unchanged")
        if source == "run" and snap.source == "reconstructed":
            return added("kept")
        if not (source == "reconstructed" and snap.source == "run"):
            raise HistoryError(
                f"the history of {snap.force} already holds other figures for "
                f"{snap.as_of:%Y-%m-%d}; a date is added once (use a new store to start again)"
            )
        for table in _SCHEMA:
            con.execute(
                f'DELETE FROM "{table}" WHERE force = ? AND as_of = ?', [snap.force, snap.as_of]
            )
    _check_comparable(con, snap)
    for name, frame in (("areas", snap.areas), ("origins", snap.origins)):
        rows = frame.assign(force=snap.force, as_of=snap.as_of)[
            [c.split()[0] for c in _SCHEMA[name].split(", ")]
        ]
        con.register("rows_view", rows)
        con.execute(f'INSERT INTO "{name}" SELECT * FROM rows_view')
        con.unregister("rows_view")
    con.execute(
        "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [snap.force, snap.as_of, snap.source, snap.run_dir, snap.signature, snap.digest,
         snap.threshold, snap.quality_days, len(snap.areas), int(snap.areas["signups"].sum()),
         dt.datetime.now(dt.UTC).replace(tzinfo=None)],
    )  # fmt: skip
    return added("replaced" if held is not None else "added")


def add_run(
    output_dir: Path, *, store: Path, backfill: int = 0, every: str = "month"
) -> list[Added]:
    """Add a finished run (and `backfill` reconstructed earlier dates) to the history store."""
    return add_snapshots(store, run_snapshots(output_dir, backfill=backfill, every=every))


def list_snapshots(store: Path) -> pd.DataFrame:
    """Each snapshot in the store: force, as_of, source, areas, sign-ups; by force and date."""
    with _connect(store, read_only=True) as con:
        return con.execute(
            "SELECT force, as_of, source, areas, signups FROM snapshots ORDER BY force, as_of"
        ).df()


@dataclass(frozen=True)
class History:
    """One force's history: its snapshots, and their areas and origins, oldest first."""

    force: str
    snapshots: pd.DataFrame  # as_of, source, run_dir, threshold, areas, signups, ...
    areas: pd.DataFrame  # as_of and AREA_COLUMNS
    origins: pd.DataFrame  # as_of and ORIGIN_COLUMNS


def read_history(store: Path, *, force: str | None = None) -> History:
    """One force's history from the store (`force` may be left out when it holds one)."""
    with _connect(store, read_only=True) as con:
        forces = [
            r[0] for r in con.execute("SELECT DISTINCT force FROM snapshots ORDER BY 1").fetchall()
        ]
        if not forces:
            raise HistoryError(f"the history store {store} holds no runs yet: add one first")
        if force is None and len(forces) > 1:
            raise HistoryError(
                f"the history store {store} holds {len(forces)} forces ({', '.join(forces)}): "
                "choose one with --force"
            )
        chosen = force or forces[0]
        if chosen not in forces:
            raise HistoryError(
                f"the history store {store} holds no force {chosen!r}; it holds {', '.join(forces)}"
            )

        def table(name: str, order: str) -> pd.DataFrame:
            frame = con.execute(
                f'SELECT * EXCLUDE (force) FROM "{name}" WHERE force = ? ORDER BY {order}',
                [chosen],
            ).df()
            frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
            return frame

        return History(
            force=chosen,
            snapshots=table("snapshots", "as_of"),
            areas=table("areas", "as_of, area_code"),
            origins=table("origins", "as_of, area_code, origin"),
        )
