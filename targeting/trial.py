"""Engagement trials: randomised assignment of hotspots to tactics, the weeks' lists, outcomes
counted from the sign-up export, and an evaluation of what worked.

The design follows the 2018 test behind this project (2,124 hotspots randomly assigned to
door-knocking, street engagement, social media or control, about 120 a week): block
randomisation so that every area (or NPU) gets each tactic in its share, and an analysis that
follows the design (block fixed effects, weeks when given) and allows for over-dispersed counts,
checked by randomisation inference, so a force can run such tests without a statistician on call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from statsmodels.stats.multitest import multipletests

from targeting.config import Config, InputFiles
from targeting.errors import TrialError
from targeting.h3cells import cell_centres, neighbour_pairs, points_to_cells, valid_cells
from targeting.ingest.common import InputSummary
from targeting.ingest.points import read_postcodes, read_signups
from targeting.io import read_table
from targeting.layers import BY_NAME

RI_DRAWS = 10_000
NUMERIC_HOTSPOT_COLUMNS = {
    "rank", "score", "latitude", "longitude", "parity_gap", "households", "expected_signups",
}  # fmt: skip
WEEK_DAYS = 7


def parse_ratios(arms: Sequence[str], ratios: str | None) -> dict[str, float]:
    """Arm shares from "door=2,control=1" (arms not named get 1); equal without ratios."""
    weights = dict.fromkeys(arms, 1.0)
    if ratios:
        for part in ratios.split(","):
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in weights:
                raise TrialError(f"ratio for {name!r}, which is not an arm ({', '.join(arms)})")
            weights[name] = float(value)
            if weights[name] <= 0:
                raise TrialError(f"ratio for {name!r} must be positive")
    total = sum(weights.values())
    return {a: w / total for a, w in weights.items()}


def _block_counts(n: int, shares: Mapping[str, float], rng: np.random.Generator) -> dict[str, int]:
    """How many of a block's n units each arm gets: floor(n x share), and the remainder to arms
    drawn at random (in proportion to their fractional parts), so each count is within one of
    n x share."""
    exact = {a: n * s for a, s in shares.items()}
    counts = {a: math.floor(v) for a, v in exact.items()}
    left = n - sum(counts.values())
    if left:
        arms = list(shares)
        frac = np.array([exact[a] - counts[a] for a in arms])
        p = frac / frac.sum() if frac.sum() > 0 else None
        for a in rng.choice(len(arms), size=left, replace=False, p=p):
            counts[arms[a]] += 1
    return counts


def spillover_units(cells: pd.Series) -> np.ndarray:
    """A unit number per hotspot: hotspots whose cells share an edge (and their chains) form one
    unit, so a door-knock next door cannot lift a control cell."""
    a, b = neighbour_pairs(cells.to_numpy())
    graph = coo_array((np.ones(len(a)), (a, b)), shape=(len(cells), len(cells)))
    return connected_components(graph, directed=False)[1]


def neighbour_arms_differ(cells: pd.Series, arms: pd.Series) -> np.ndarray:
    """True where a hotspot's cell shares an edge with a hotspot of another arm."""
    a, b = neighbour_pairs(cells.to_numpy())
    arm = arms.to_numpy()
    differs = np.zeros(len(cells), dtype=bool)
    np.logical_or.at(differs, a, arm[a] != arm[b])
    return differs


def assign_arms(
    hotspots: pd.DataFrame,
    *,
    arms: Sequence[str],
    block_by: str,
    seed: int,
    ratios: str | None = None,
    weeks: int | None = None,
    per_week: int | None = None,
    spillover: str = "flag",
) -> pd.DataFrame:
    """Block-randomised arms for the hotspots: `hotspot_id, arm, block` (+ `week`, `spillover`).

    Within each block every arm gets its share to within one unit; with weeks, hotspots are
    spread evenly over the weeks within each block first and arms balanced within block x week
    as far as the block counts allow. `spillover="same"` randomises edge-sharing hotspots as one
    unit (so the balance holds in units); `"flag"` marks hotspots next to another arm. Rows come
    back in the input's order; the same input and seed give the same assignment.
    """
    if hotspots["hotspot_id"].duplicated().any():
        raise TrialError("hotspot_id repeats: every hotspot must appear once")
    shares = parse_ratios(arms, ratios)
    rng = np.random.default_rng(seed)
    frame = hotspots.reset_index(drop=True).copy()
    frame["block"] = frame[block_by].astype(str)
    has_cells = "cell" in frame.columns and bool(valid_cells(frame["cell"].to_numpy()).all())
    if spillover == "same" and has_cells:
        frame["unit"] = spillover_units(frame["cell"].astype(str))
    else:
        frame["unit"] = np.arange(len(frame))
    units = frame.drop_duplicates("unit")[["unit", "block"]].sort_values(["block", "unit"])
    if weeks:
        if per_week and len(frame) > weeks * per_week:
            raise TrialError(
                f"{len(frame)} hotspots do not fit in {weeks} weeks of {per_week}; "
                "raise --weeks or --per-week, or give fewer hotspots"
            )
        week = np.empty(len(units), dtype=int)
        for _, idx in units.groupby("block").indices.items():
            order = rng.permutation(len(idx))
            week[idx[order]] = (rng.integers(weeks) + np.arange(len(idx))) % weeks + 1
        units["week"] = week
    arm_of_unit = np.empty(len(units), dtype=object)
    for _, idx in units.groupby("block").indices.items():
        counts = _block_counts(len(idx), shares, rng)
        labels = np.concatenate([[a] * counts[a] for a in arms]).astype(object)
        if weeks:
            # arms interleaved evenly (each arm's k-th unit at (k + u) / count) and dealt to the
            # block's units in week order, so every week gets a balanced mix
            spread = np.concatenate(
                [(np.arange(counts[a]) + rng.random()) / max(counts[a], 1) for a in arms]
            )
            by_week = idx[np.argsort(units["week"].to_numpy()[idx] + 0.5 * rng.random(len(idx)),
                                     kind="stable")]  # fmt: skip
            arm_of_unit[by_week] = labels[np.argsort(spread, kind="stable")]
        else:
            arm_of_unit[idx] = labels[rng.permutation(len(labels))]
    units["arm"] = arm_of_unit
    out = frame.merge(units.drop(columns="block"), on="unit", how="left")
    if "cell" in out.columns and has_cells:
        out["spillover"] = neighbour_arms_differ(out["cell"].astype(str), out["arm"])
    columns = ["hotspot_id", "arm", "block", *(["week"] if weeks else [])]
    rest = [c for c in hotspots.columns if c not in columns]
    extra = ["spillover"] if "spillover" in out.columns else []
    return out[[*columns, *extra, *rest]]


def balance_table(assignments: pd.DataFrame, *, columns: Sequence[str] = ()) -> pd.DataFrame:
    """Per arm: hotspots, blocks reached, and the mean of each numeric column given (e.g. the
    score), side by side, to check the randomisation balanced what it should."""
    grouped = assignments.groupby("arm", sort=True)
    out = pd.DataFrame({"hotspots": grouped.size(), "blocks": grouped["block"].nunique()})
    for col in columns:
        if col in assignments and pd.api.types.is_numeric_dtype(assignments[col]):
            out[f"mean_{col}"] = grouped[col].mean()
    return out.reset_index()


def count_outcomes(
    assignments: pd.DataFrame,
    signup_cells: pd.Series,
    joined: pd.Series,
    *,
    start: dt.date,
    days: int,
) -> pd.DataFrame:
    """Sign-ups per hotspot in the window after its visit: from the start of its week (week 1
    starts on `start`) for `days` days, or from `start` for `days` days without weeks.

    `signup_cells` are the sign-ups' H3 cells at the hotspots' resolution, `joined` their dates.
    """
    begin = pd.Timestamp(start) + pd.to_timedelta(
        (assignments["week"].astype(int) - 1) * WEEK_DAYS if "week" in assignments else 0, unit="D"
    )
    window = pd.DataFrame(
        {"hotspot_id": assignments["hotspot_id"], "cell": assignments["cell"].astype(str),
         "begin": begin, "end": begin + pd.Timedelta(days=days)}
    )  # fmt: skip
    found = pd.DataFrame(
        {"cell": signup_cells.to_numpy(), "joined": pd.to_datetime(joined).to_numpy()}
    )
    hits = found.merge(window, on="cell")
    inside = hits[(hits["joined"] >= hits["begin"]) & (hits["joined"] < hits["end"])]
    counts = inside.groupby("hotspot_id").size()
    return pd.DataFrame(
        {"hotspot_id": assignments["hotspot_id"],
         "signups": assignments["hotspot_id"].map(counts).fillna(0).astype(int).to_numpy()}
    )  # fmt: skip


@dataclass(frozen=True)
class Fit:
    """Rate ratios against control from the count model."""

    ratio: pd.Series
    low: pd.Series
    high: pd.Series
    p: pd.Series


def fit_rate_ratios(data: pd.DataFrame, *, control: str) -> Fit:
    """Poisson regression of sign-ups on arm with block (and week) fixed effects and
    heteroscedasticity-robust errors, which stay valid when counts are over-dispersed.

    Blocks where no hotspot had a sign-up carry no information on the ratios and are left out
    (their fixed effects would run off to minus infinity).
    """
    informative = data.groupby("block")["signups"].transform("sum") > 0
    d = data[informative]
    arms = [a for a in sorted(d["arm"].unique()) if a != control]
    design = pd.get_dummies(d["arm"]).reindex(columns=arms, fill_value=False).astype(float)
    blocks = pd.get_dummies(d["block"], prefix="b", drop_first=True).astype(float)
    parts = [design, blocks]
    if "week" in d.columns:
        parts.append(
            pd.get_dummies(d["week"].astype(str), prefix="w", drop_first=True).astype(float)
        )
    x = sm.add_constant(pd.concat(parts, axis=1), has_constant="add")
    model = sm.GLM(d["signups"].to_numpy(dtype=float), x, family=sm.families.Poisson())
    result = model.fit(cov_type="HC1")
    coef = result.params[arms]
    se = result.bse[arms]
    z = stats.norm.ppf(0.975)
    return Fit(
        ratio=np.exp(coef),
        low=np.exp(coef - z * se),
        high=np.exp(coef + z * se),
        p=pd.Series(result.pvalues[arms], index=arms),
    )


def randomisation_p_values(
    data: pd.DataFrame, *, control: str, draws: int, seed: int, chunk: int = 1000
) -> pd.Series:
    """Two-sided randomisation-inference p-values of each arm's ratio of mean sign-ups to
    control's: arms permuted within blocks `draws` times (seeded); p = (1 + #|log ratio| at
    least the observed) / (1 + draws)."""
    rng = np.random.default_rng(seed)
    order = np.argsort(pd.factorize(data["block"])[0], kind="stable")
    block = pd.factorize(data["block"])[0][order]
    y = data["signups"].to_numpy(dtype=float)[order]
    labels = pd.Categorical(data["arm"].to_numpy()[order])
    codes = labels.codes.astype(np.int16)
    code_of = {cat: i for i, cat in enumerate(labels.categories)}
    c = code_of[control]

    def log_ratios(arm_codes: np.ndarray, arm: int) -> np.ndarray:
        is_a, is_c = arm_codes == arm, arm_codes == c
        mean_a = (is_a * y).sum(axis=-1) / np.maximum(is_a.sum(axis=-1), 1)
        mean_c = (is_c * y).sum(axis=-1) / np.maximum(is_c.sum(axis=-1), 1)
        return np.log((mean_a + 1e-9) / (mean_c + 1e-9))

    arms = [a for a in labels.categories if a != control]
    observed = {a: abs(float(log_ratios(codes, code_of[a]))) for a in arms}
    extreme = dict.fromkeys(arms, 0)
    for start in range(0, draws, chunk):
        n = min(chunk, draws - start)
        # random keys offset by block: sorting permutes the labels within each block only
        perm = np.argsort(rng.random((n, len(y))) + block[None, :], axis=1)
        permuted = codes[perm]
        for a in arms:
            null = np.abs(log_ratios(permuted, code_of[a]))
            extreme[a] += int((null >= observed[a] - 1e-12).sum())
    return pd.Series({a: (1 + extreme[a]) / (1 + draws) for a in arms}, dtype=float)


def evaluate_trial(
    assignments: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    control: str,
    draws: int = RI_DRAWS,
    seed: int = 2018,
) -> pd.DataFrame:
    """Per arm: hotspots, sign-ups, mean per hotspot, the rate ratio against control with its 95%
    interval and p-value from the count model, the randomisation-inference p-value, the
    Holm-adjusted p-value across arms, and a plain-language summary."""
    data = assignments.merge(outcomes[["hotspot_id", "signups"]], on="hotspot_id", how="left")
    if data["signups"].isna().any():
        missing = int(data["signups"].isna().sum())
        raise TrialError(f"{missing} assigned hotspots have no outcome; give every hotspot_id")
    if control not in set(data["arm"]):
        raise TrialError(
            f"control arm {control!r} is not among the arms {sorted(set(data['arm']))}"
        )
    fit = fit_rate_ratios(data, control=control)
    ri = randomisation_p_values(data, control=control, draws=draws, seed=seed)
    summary = data.groupby("arm", sort=True).agg(hotspots=("hotspot_id", "size"),
                                                 signups=("signups", "sum"))  # fmt: skip
    summary["mean_per_hotspot"] = summary["signups"] / summary["hotspots"]
    summary["rate_ratio"] = fit.ratio.reindex(summary.index)
    summary["ci_low"] = fit.low.reindex(summary.index)
    summary["ci_high"] = fit.high.reindex(summary.index)
    summary["p_value"] = fit.p.reindex(summary.index)
    summary["p_value_ri"] = ri.reindex(summary.index)
    summary.loc[control, ["rate_ratio", "ci_low", "ci_high"]] = 1.0
    tested = summary.index != control
    holm = multipletests(summary.loc[tested, "p_value"].to_numpy(), method="holm")[1]
    summary["p_value_holm"] = np.nan
    summary.loc[tested, "p_value_holm"] = holm
    summary["summary"] = [_sentence(str(arm), row, control) for arm, row in summary.iterrows()]
    order = [control, *[a for a in summary.index if a != control]]
    return summary.loc[order].reset_index()


def _sentence(arm: str, row: pd.Series, control: str) -> str:
    """One line a neighbourhood team can read (one per arm: a handful of rows)."""
    mean = f"{row['mean_per_hotspot']:.2f} sign-ups per hotspot"
    if arm == control:
        return f"{arm}: {mean} with no engagement (the comparison)"
    ratio = f"{row['rate_ratio']:.1f} times {control} (95% interval {row['ci_low']:.1f} to {row['ci_high']:.1f})"
    if row["p_value_holm"] < 0.05:
        verdict = (
            "more than chance would give"
            if row["rate_ratio"] > 1
            else "fewer than chance would give"
        )
    else:
        verdict = "not distinguishable from chance"
    return f"{arm}: {mean}, {ratio}; {verdict} (Holm-adjusted p = {row['p_value_holm']:.3g})"


def simulate_trial(
    *,
    hotspots: int,
    blocks: int,
    arms: Mapping[str, float],
    baseline: float,
    dispersion: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """One simulated trial: hotspots in blocks, arms assigned in equal shares within blocks,
    negative-binomial sign-ups (mean baseline x the arm's true ratio x a block effect; variance
    mean + dispersion x mean^2)."""
    block = np.arange(hotspots) % blocks
    arm_names = list(arms)
    labels = np.empty(hotspots, dtype=object)
    for b in range(blocks):
        idx = np.flatnonzero(block == b)
        seq = np.resize(np.array(arm_names, dtype=object), len(idx))
        labels[idx] = seq[rng.permutation(len(idx))]
    effect = np.exp(rng.normal(0.0, 0.3, blocks))[block]
    mean = baseline * effect * np.array([arms[a] for a in labels])
    if dispersion > 0:
        shape = 1.0 / dispersion
        y = rng.poisson(rng.gamma(shape, mean / shape))
    else:
        y = rng.poisson(mean)
    return pd.DataFrame({"hotspot_id": np.arange(hotspots).astype(str), "arm": labels,
                         "block": block.astype(str), "signups": y})  # fmt: skip


def minimum_detectable_ratio(
    *,
    baseline: float,
    dispersion: float,
    hotspots: int,
    arms: int,
    alpha: float = 0.05,
    power: float = 0.8,
    sims: int = 1000,
    seed: int = 2018,
) -> float:
    """The smallest rate ratio (above 1) one arm must have against control to be detected with
    the given power by a two-sided test at `alpha`, with hotspots split equally among the arms;
    by simulation of negative-binomial counts and the robust log-ratio test, bisecting on the
    ratio with common random numbers."""
    per_arm = hotspots // arms
    z = stats.norm.ppf(1 - alpha / 2)

    def detected(ratio: float) -> float:
        # the same seed for every candidate ratio: common random numbers keep the bisection
        # from chasing simulation noise
        rng = np.random.default_rng(seed)
        if dispersion > 0:
            shape = 1.0 / dispersion
            g_a = rng.gamma(shape, 1.0 / shape, (sims, per_arm))
            g_c = rng.gamma(shape, 1.0 / shape, (sims, per_arm))
        else:
            g_a = g_c = np.ones((sims, per_arm))
        y_a = rng.poisson(baseline * ratio * g_a)
        y_c = rng.poisson(baseline * g_c)
        m_a, m_c = y_a.mean(axis=1), y_c.mean(axis=1)
        v = y_a.var(axis=1, ddof=1) / (per_arm * np.maximum(m_a, 1e-9) ** 2) + y_c.var(
            axis=1, ddof=1
        ) / (per_arm * np.maximum(m_c, 1e-9) ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = np.log(np.maximum(m_a, 1e-9) / np.maximum(m_c, 1e-9)) / np.sqrt(v)
        return float(np.mean(stat > z))

    low, high = 1.0, 2.0
    while detected(high) < power:
        low, high = high, high * 2
        if high > 1e4:
            return float("inf")
    for _ in range(30):
        mid = math.sqrt(low * high)
        if detected(mid) >= power:
            high = mid
        else:
            low = mid
        if high / low < 1.001:
            break
    return high


def simulation_study(
    *,
    trials: int,
    true_ratios: Mapping[str, float],
    control: str = "control",
    hotspots: int = 2124,
    blocks: int = 40,
    baseline: float = 0.25,
    dispersion: float = 1.0,
    seed: int = 2018,
) -> pd.DataFrame:
    """How the evaluation behaves over many simulated trials with known ratios: per arm, how
    often its 95% interval covers the true ratio, and how often it is declared effective in the
    positive direction (Holm-adjusted p < 0.05 and ratio above 1): the power for a real effect,
    the false-positive rate for a null arm."""
    rng = np.random.default_rng(seed)
    arms = [a for a in true_ratios if a != control]
    covered = dict.fromkeys(arms, 0)
    positive = dict.fromkeys(arms, 0)
    for _ in range(trials):
        data = simulate_trial(hotspots=hotspots, blocks=blocks, arms=true_ratios,
                              baseline=baseline, dispersion=dispersion, rng=rng)  # fmt: skip
        fit = fit_rate_ratios(data, control=control)
        holm = pd.Series(multipletests(fit.p[arms].to_numpy(), method="holm")[1], index=arms)
        for a in arms:
            covered[a] += int(fit.low[a] <= true_ratios[a] <= fit.high[a])
            positive[a] += int(holm[a] < 0.05 and fit.ratio[a] > 1)
    return pd.DataFrame(
        {"arm": arms, "true_ratio": [true_ratios[a] for a in arms],
         "coverage": [covered[a] / trials for a in arms],
         "declared_positive": [positive[a] / trials for a in arms], "trials": trials}
    )  # fmt: skip


def read_hotspots(path: Path, *, block_by: str) -> pd.DataFrame:
    """Hotspots from `hotspots.csv` (or any CSV or GeoJSON) with `hotspot_id` or `cell` and the
    blocking column; numbers stay numbers, codes stay text; a point geometry gives latitude and
    longitude."""
    if path.suffix.lower() in {".geojson", ".json", ".gpkg"}:
        geo = gpd.read_file(path)
        frame = pd.DataFrame(geo.drop(columns="geometry"))
        if "latitude" not in frame and geo.geom_type.eq("Point").all():
            frame["latitude"], frame["longitude"] = geo.geometry.y, geo.geometry.x
    else:
        frame = read_table(path, input_name="hotspots")
        for col in NUMERIC_HOTSPOT_COLUMNS & set(frame.columns):
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
    if "hotspot_id" not in frame:
        if "cell" not in frame:
            raise TrialError(f"{path}: no hotspot_id or cell column; add one of them")
        frame["hotspot_id"] = frame["cell"].astype(str)
    if block_by not in frame:
        raise TrialError(
            f"{path}: no column {block_by!r} to block by; use --block-by with one of "
            f"{', '.join(map(str, frame.columns))}"
        )
    return frame


def read_trial_signups(
    path: Path, *, resolution: int, config: Config | None = None
) -> tuple[pd.DataFrame, InputSummary]:
    """The H3 cells (at `resolution`) and join dates of the sign-ups in an export that are not
    deleted, read by the run's own sign-up reader: the same column names (and a `config`'s
    `[columns.signups]`), locations (latitude/longitude, easting/northing, or postcode with the
    config's `[inputs] postcodes`), date reading (one day/month order per column, the run's time
    zone) and rejects, counted in the summary. The export needs join dates and locations; ids,
    when given, count each person once."""
    base = config or Config(path=path, inputs=InputFiles({}, names=list(BY_NAME)))
    files = {**base.inputs, "signups": path}
    cfg = dataclasses.replace(base, inputs=InputFiles(files, names=list(BY_NAME)))
    postcodes, _ = read_postcodes(cfg)
    signups, summary = read_signups(cfg, areas=None, postcodes=postcodes, required=("joined",))
    live = signups.table[signups.table["status"] != "deleted"]
    cells = points_to_cells(
        live["latitude"].to_numpy(), live["longitude"].to_numpy(), resolution=resolution
    )
    return pd.DataFrame({"cell": cells, "joined": live["joined"].to_numpy()}), summary


def write_weekly_lists(
    assignments: pd.DataFrame, folder: Path, *, marking: str, parent_by: str = "block"
) -> list[Path]:
    """Per week (or for the whole trial), one CSV per parent area (block) with each hotspot's
    tactic, and one offline map of the week's hotspots coloured by arm: what teams are sent."""
    from targeting.maps import points_to_map_html
    from targeting.store import write_csv

    written: list[Path] = []
    frame = assignments.copy()
    if "latitude" not in frame and "cell" in frame:
        frame["latitude"], frame["longitude"] = cell_centres(frame["cell"].to_numpy())
    parts = (
        [
            (f"week_{int(w):02d}", f"Week {int(w)}", p)
            for w, p in frame.groupby(frame["week"].astype(int))
        ]
        if "week" in frame
        else [("trial", "Trial hotspots", frame)]
    )
    for name, title, part in parts:
        target = folder / name
        target.mkdir(parents=True, exist_ok=True)
        for parent, rows in part.groupby(parent_by, sort=True):
            path = target / f"{_safe_name(str(parent))}.csv"
            write_csv(rows.sort_values(["arm", "hotspot_id"]), path)
            written.append(path)
        if "latitude" in part:
            page = target / "map.html"
            page.write_text(
                points_to_map_html(
                    part.assign(label=part["hotspot_id"]),
                    title=title,
                    marking=marking,
                ),
                encoding="utf-8",
            )
            written.append(page)
    return written


def _safe_name(text: str) -> str:
    """A file name from a code: letters, digits, dash and underscore only."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)
    return cleaned or "blank"
