"""Geodemographic segments: an open segmentation of small areas built from the census, and who is
missing from the alert system by segment.

Forces pair origin data with commercial lifestyle segments (MOSAIC-style) to decide how to
approach people as well as where. The open segmentation here is a transparent alternative in the
spirit of the ONS Output Area Classification: census shares per small area, standardised,
clustered with k-means (k chosen by the silhouette score unless given), each segment named by the
variables that set it apart most, and a coarser group level joining similar segments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from targeting.disclosure import protect_counts
from targeting.representation import wilson_interval

# silhouette scores are computed on at most this many small areas, so choosing k stays quick
SILHOUETTE_SAMPLE = 4000
UNASSIGNED = "(no segment)"


@dataclass(frozen=True)
class Segmentation:
    """Small areas' segments, each segment's description and profile, and how k was chosen."""

    assignments: pd.DataFrame  # area_code, segment
    descriptions: pd.DataFrame  # segment, group, label, description
    profiles: pd.DataFrame  # segment, variable, share, overall, index, z
    k: int
    silhouettes: Mapping[int, float]  # silhouette score per k tried (empty when k was given)


def shares(counts: pd.DataFrame) -> pd.DataFrame:
    """Each row's counts as shares of the row's sum (rows summing to 0 are all NaN)."""
    total = counts.sum(axis=1)
    return counts.div(total.where(total > 0), axis=0)


def choose_k(
    features: np.ndarray, *, k_min: int, k_max: int, seed: int
) -> tuple[int, dict[int, float]]:
    """The k in [k_min, k_max] with the highest silhouette score (ties: the smaller k), and every
    score: the stated criterion, favouring segments that are compact and well apart."""
    # scikit-learn is imported where it is used: it takes half a second to load, which every
    # command (a refused config too) would otherwise pay
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    sample = (
        features
        if len(features) <= SILHOUETTE_SAMPLE
        else features[rng.choice(len(features), SILHOUETTE_SAMPLE, replace=False)]
    )
    scores: dict[int, float] = {}
    for k in range(k_min, min(k_max, len(sample) - 1) + 1):
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(sample)
        scores[k] = float(silhouette_score(sample, labels))
    best = max(scores, key=lambda k: (round(scores[k], 6), -k))
    return best, scores


def _describe(z: pd.DataFrame, *, top: int = 2) -> list[str]:
    """A name per row from its most distinctive variables: "high Pakistani, low WhiteBrit"."""
    names = []
    for _, row in z.iterrows():  # one row per segment: a handful
        order = row.abs().sort_values(ascending=False, kind="stable").index[:top]
        names.append(", ".join(f"{'high' if row[v] > 0 else 'low'} {v}" for v in order))
    return names


def build_segments(
    variables: pd.DataFrame,
    *,
    k: int | None,
    seed: int,
    k_min: int = 4,
    k_max: int = 10,
    weights: pd.Series | None = None,
) -> Segmentation:
    """Cluster small areas on their census shares.

    `variables` is indexed by small-area code, one column per census share (rows with no data are
    left without a segment; gaps in a column take its mean). `weights` (e.g. residents) only
    weigh the profiles. Segments are numbered S01.. by size, largest first (ties: the segment with
    the first area code), so that the numbering is the same whatever order the inputs come in.
    """
    from sklearn.cluster import AgglomerativeClustering, KMeans
    from sklearn.preprocessing import StandardScaler

    # sorted, so the same areas in another order give the same segments
    usable = variables.dropna(how="all").sort_index()
    filled = usable.fillna(usable.mean()).fillna(0.0)
    scaled = StandardScaler().fit_transform(filled.to_numpy(dtype=float))
    scaled = np.nan_to_num(scaled)
    silhouettes: dict[int, float] = {}
    if k is None:
        k, silhouettes = choose_k(scaled, k_min=k_min, k_max=k_max, seed=seed)
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(scaled)
    sizes = pd.Series(labels).value_counts()
    first_area = pd.Series(usable.index).groupby(labels).min()
    order = sorted(sizes.index, key=lambda c: (-sizes[c], first_area[c]))
    code = {c: f"S{i + 1:02d}" for i, c in enumerate(order)}
    segment = pd.Series([code[c] for c in labels], index=usable.index, name="segment")

    w = (weights.reindex(usable.index).fillna(0.0) if weights is not None else
         pd.Series(1.0, index=usable.index))  # fmt: skip
    w = w.where(w > 0, 1e-9)
    means = filled.mul(w, axis=0).groupby(segment).sum().div(w.groupby(segment).sum(), axis=0)
    overall = filled.mul(w, axis=0).sum() / w.sum()
    spread = filled.std(ddof=0).replace(0, np.nan)
    z = means.sub(filled.mean(), axis=1).div(spread, axis=1).fillna(0.0)
    labels_text = pd.Series(_describe(z), index=z.index)
    # groups join similar segments (Ward clustering of the segment centres), named by their
    # members so that a group's name never claims more than its segments share
    n_groups = max(2, math.ceil(k / 2)) if k > 2 else 1
    grouping = (
        AgglomerativeClustering(n_clusters=n_groups).fit_predict(z.to_numpy())
        if n_groups > 1
        else np.zeros(len(z), dtype=int)
    )
    first_member = pd.Series(z.index).groupby(grouping).min()
    number = {g: i + 1 for i, g in enumerate(first_member.sort_values().index)}
    members = pd.Series(z.index).groupby(grouping).agg(", ".join)
    group = pd.Series([f"G{number[g]}: {members[g]}" for g in grouping], index=z.index, dtype=str)
    descriptions = pd.DataFrame(
        {
            "segment": z.index,
            "group": group.to_numpy(),
            "label": labels_text.to_numpy(),
            "description": [
                f"{sizes[c]:,} small areas; " + labels_text[s]
                for s, c in zip(z.index, order, strict=True)
            ],
        }
    )
    profiles = (
        pd.DataFrame(
            {
                "share": means.stack(),
                "overall": overall.reindex(means.stack().index.get_level_values(1)).to_numpy(),
                "z": z.stack(),
            }
        )
        .rename_axis(["segment", "variable"])
        .reset_index()
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        profiles["index"] = 100.0 * profiles["share"] / profiles["overall"]
    return Segmentation(
        assignments=segment.rename_axis("area_code").reset_index(),
        descriptions=descriptions,
        profiles=profiles[["segment", "variable", "share", "overall", "index", "z"]],
        k=k,
        silhouettes=silhouettes,
    )


def segment_representation(
    base: pd.Series, signups: pd.Series, *, threshold: int, base_name: str = "households"
) -> pd.DataFrame:
    """Who is missing by segment: each segment's share of sign-ups against its share of the base
    (households, or residents), as a profile index (100 = the base share), with the 95% Wilson
    interval of the sign-up share, sign-ups per 1,000 of the base, and disclosure control.

    `base` and `signups` are indexed by segment; sign-ups outside every segment belong to
    `UNASSIGNED`, so the segments and it add up to the total. A withheld count (1 to
    threshold - 1, or withheld so that it cannot be recovered from the total) blanks every
    column derived from it.
    """
    segments = sorted(set(base.index) | set(signups.index) - {UNASSIGNED})
    rows = [*segments, UNASSIGNED] if UNASSIGNED in signups.index else segments
    b = base.reindex(rows).fillna(0.0).astype(float)
    s = signups.reindex(rows).fillna(0).astype(np.int64)
    n = int(s.sum())
    lines = pd.DataFrame({"line": "total", "cell": np.arange(len(rows) + 1),
                          "is_total": [False] * len(rows) + [True]})  # fmt: skip
    withheld = protect_counts(np.append(s.to_numpy(), n), lines, threshold=threshold)[:-1]
    in_segments = ~b.index.isin([UNASSIGNED])
    base_share = b / b[in_segments].sum() if b[in_segments].sum() > 0 else b * np.nan
    signups_in = s[in_segments].sum()
    share = s / n if n > 0 else s * np.nan
    low, high = wilson_interval(s.to_numpy(), np.full(len(s), n))
    with np.errstate(divide="ignore", invalid="ignore"):
        index = 100.0 * share / base_share
        per_1000 = 1000.0 * s / b
        index_low = 100.0 * low / base_share.to_numpy()
        index_high = 100.0 * high / base_share.to_numpy()
    out = pd.DataFrame(
        {
            "segment": rows,
            base_name: b.round(1).to_numpy(),
            "base_share": base_share.to_numpy(),
            "signups": s.to_numpy().astype(float),
            "signup_share": share.to_numpy(),
            "ci_low": low,
            "ci_high": high,
            "profile_index": index.to_numpy(),
            "index_low": index_low,
            "index_high": index_high,
            f"signups_per_1000_{base_name}": per_1000.to_numpy(),
            "under_represented": high < base_share.to_numpy(),
            "suppressed": withheld,
        }
    )
    derived = ["signups", "signup_share", "ci_low", "ci_high", "profile_index", "index_low",
               "index_high", f"signups_per_1000_{base_name}"]  # fmt: skip
    out.loc[out["suppressed"], derived] = np.nan
    out["under_represented"] = out["under_represented"].astype("boolean").mask(out["suppressed"])
    out.loc[out["segment"] == UNASSIGNED, ["base_share", "profile_index", "index_low",
                                           "index_high", "under_represented"]] = pd.NA  # fmt: skip
    out.attrs["signups_in_segments"] = int(signups_in)
    return out


def main_segments(segments: pd.DataFrame) -> pd.Series:
    """Each key's segment with the most households (ties: the first segment code).

    A key may have several rows of one segment (a cell's fragments in different areas): they are
    added up before the largest is chosen.
    """
    summed = segments.groupby(["key", "segment"], as_index=False)[["households"]].sum()
    ordered = summed.sort_values(["key", "households", "segment"], ascending=[True, False, True])
    return ordered.drop_duplicates("key").set_index("key")["segment"]


def points_to_segments(
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    segments: pd.DataFrame,
    keyed_by: str,
    small_areas: gpd.GeoDataFrame | None,
    postcodes: pd.DataFrame | None,
    max_distance_m: float = 500.0,
) -> np.ndarray:
    """The segment of each point (a sign-up): the main segment of the small area holding it, or
    of the nearest postcode centroid within `max_distance_m`; `UNASSIGNED` otherwise."""
    main = main_segments(segments)
    out = np.full(len(lat), UNASSIGNED, dtype=object)
    if len(lat) == 0:
        return out
    if keyed_by == "small_areas" and small_areas is not None:
        points = shapely.points(lon, lat)
        geoms = np.asarray(small_areas.geometry.values)
        shapely.prepare(geoms)
        # a tree of the points queried by each (prepared) small area: three times faster than
        # each point queried against the small areas' tree; a point in two (overlapping) small
        # areas takes the first in file order
        a_idx, p_idx = shapely.STRtree(points).query(geoms, predicate="contains")
        first = pd.DataFrame({"p": p_idx, "a": a_idx}).sort_values(["p", "a"]).drop_duplicates("p")
        codes = small_areas["area_code"].astype(str).to_numpy()[first["a"].to_numpy()]
        found = pd.Series(codes).map(main)
        has = found.notna().to_numpy()
        out[first["p"].to_numpy()[has]] = found[has].to_numpy()
    elif postcodes is not None:
        known = postcodes[postcodes["key"].isin(main.index)]
        if known.empty:
            return out
        scale = np.cos(np.radians(float(np.mean(lat))))
        tree = cKDTree(np.column_stack([known["latitude"], known["longitude"] * scale]))
        dist, idx = tree.query(np.column_stack([lat, lon * scale]))
        near = dist * 111_320.0 <= max_distance_m
        out[near] = known["key"].map(main).to_numpy()[idx[near]]
    return out


def dominant_segments(
    cell_segments: pd.DataFrame, *, by: str, labels: pd.Series | None, top: int = 2
) -> pd.Series:
    """Per `by` (area_code or cell), its largest segments by households with their shares:
    "S04 high Pakistani, high Bangladeshi (45%); S02 ... (30%)"."""
    sums = cell_segments.groupby([by, "segment"], as_index=False)["households"].sum()
    sums["share"] = sums["households"] / sums.groupby(by)["households"].transform("sum")
    sums = sums[sums["households"] > 0].sort_values(
        [by, "households", "segment"], ascending=[True, False, True]
    )
    sums = sums[sums.groupby(by).cumcount() < top]
    name = sums["segment"].astype(str)
    if labels is not None:
        named = sums["segment"].map(labels)
        name = name.where(named.isna(), name + " " + named.fillna("").astype(str))
    text = name + " (" + (100 * sums["share"]).round(0).astype(int).astype(str) + "%)"
    return text.groupby(sums[by].to_numpy()).agg("; ".join)


_TIMES = {2: "twice", 3: "three times", 4: "four times"}


def _origin_words(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _sorted_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The distinct texts, sorted, and each value's position among them (`np.unique` with
    `return_inverse`, by pyarrow's hashing rather than a sort of every value)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(pa.array(values.astype(str), type=pa.large_string()))
    distinct = np.array(encoded.dictionary.to_pylist(), dtype=object)
    order = np.argsort(distinct, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return distinct[order], rank[np.asarray(encoded.indices, dtype=np.int64)]


def _residents_by_segment(households: pd.DataFrame, cell_origins: pd.DataFrame) -> pd.DataFrame:
    """Residents of each origin (columns) in each segment (rows, sorted by name; columns too),
    a cell x area's residents shared among its segments by households: a product of sparse
    matrices over the cell x area pairs, joined by a code per pair (the tables run to a
    million rows at national scale, where merging on the text keys took seconds). Only
    segments and origins that share a cell x area appear, as in a merge of the two tables."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import scipy.sparse as sp

    def pairs(frame: pd.DataFrame) -> pa.Array:
        cell = pa.array(frame["cell"].astype(str), type=pa.large_string())
        area = pa.array(frame["area_code"].astype(str), type=pa.large_string())
        return pc.binary_join_element_wise(cell, area, pa.scalar("\x1f", pa.large_string()))

    both = pc.dictionary_encode(pa.chunked_array([pairs(households), pairs(cell_origins)]))
    codes = [np.asarray(c.indices, dtype=np.int64) for c in both.chunks]
    n_pairs = len(both.chunks[0].dictionary) if both.num_chunks else 0
    house_pair = codes[0] if len(households) else np.zeros(0, np.int64)
    people_pair = codes[-1] if len(cell_origins) else np.zeros(0, np.int64)
    segments, segment_code = _sorted_codes(households["segment"])
    origins, origin_code = _sorted_codes(cell_origins["origin"])
    weight = households["households"].to_numpy(dtype=float)
    part = weight / np.bincount(house_pair, weights=weight, minlength=n_pairs)[house_pair]
    share = sp.csr_matrix((part, (segment_code, house_pair)), shape=(len(segments), n_pairs))
    people = sp.csr_matrix(
        (cell_origins["residents"].to_numpy(dtype=float), (people_pair, origin_code)),
        shape=(n_pairs, len(origins)),
    )
    shared = np.isin(np.arange(n_pairs), house_pair) & np.isin(np.arange(n_pairs), people_pair)
    keep_segments = np.bincount(segment_code[shared[house_pair]], minlength=len(segments)) > 0
    keep_origins = np.bincount(origin_code[shared[people_pair]], minlength=len(origins)) > 0
    table = pd.DataFrame(
        (share @ people).toarray(), index=pd.Index(segments, name="segment"),
        columns=pd.Index(origins, name="origin"),
    )  # fmt: skip
    return table.loc[keep_segments, keep_origins]


def segment_portraits(
    cell_segments: pd.DataFrame,
    cell_origins: pd.DataFrame,
    *,
    area_deprivation: pd.Series | None = None,
) -> pd.Series:
    """Each segment in plain words, from who lives in it: its largest origins, the origins it
    holds far more of than the force, and deprivation where known. "Mainly Pakistani (45%) and
    England (30%) residents; three times the force's share of Pakistani and Bangladeshi
    residents; high deprivation."

    A cell's residents of each origin are shared among its segments by households.
    `area_deprivation` (an area's normalised deprivation, 0 to 1, higher more deprived) is
    averaged over a segment's households.
    """
    households = cell_segments[cell_segments["households"] > 0]
    by_origin = _residents_by_segment(households, cell_origins)
    shares = by_origin.div(by_origin.sum(axis=1).replace(0, np.nan), axis=0)
    force = by_origin.sum() / by_origin.to_numpy().sum()
    ratio = shares.div(force.replace(0, np.nan), axis=1)
    deprived = None
    if area_deprivation is not None and area_deprivation.notna().any():
        level = households["area_code"].map(area_deprivation)
        weight = households["households"].where(level.notna(), 0.0)
        deprived = (level.fillna(0.0) * weight).groupby(
            households["segment"]
        ).sum() / weight.groupby(households["segment"]).sum().replace(0, np.nan)
    out = {}
    for segment in shares.index:  # one per segment: a handful
        row, over = shares.loc[segment], ratio.loc[segment]
        largest = row[row >= 0.1].sort_values(ascending=False, kind="stable").head(2)
        if largest.empty:
            largest = row.sort_values(ascending=False, kind="stable").head(1)
        words = [
            "Mainly "
            + _origin_words([f"{o} ({100 * v:.0f}%)" for o, v in largest.items()])
            + " residents"
        ]
        many = (
            over[(over >= 1.5) & (row >= 0.02)].sort_values(ascending=False, kind="stable").head(2)
        )
        if len(many):
            # true of every origin named: the smaller of their multiples
            times = min(5, int(np.floor(many.min())))
            how = "one and a half times" if times < 2 else _TIMES.get(times, "five times or more")
            words.append(f"{how} the force's share of {_origin_words(list(many.index))} residents")
        if deprived is not None and pd.notna(deprived.get(segment)):
            value = float(deprived[segment])
            words.append(
                "high deprivation"
                if value >= 2 / 3
                else "low deprivation"
                if value <= 1 / 3
                else "middling deprivation"
            )
        out[segment] = "; ".join(words) + "."
    return pd.Series(out, name="portrait", dtype=object)
