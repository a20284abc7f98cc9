"""Disclosure control for counts derived from sign-ups (special category data).

Counts from 1 to the threshold minus one are withheld (primary suppression). Because published
tables add up (origins to groups to all origins; areas to parents to the force), a withheld count
could be recovered by subtraction, so more counts are withheld (secondary suppression) until, in
every additive line, the withheld counts together add up to at least the threshold: then each is
known only to lie in a range at least the threshold wide.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def withhold_small_counts(counts: Mapping[str, int], *, threshold: int) -> dict[str, int | str]:
    """The counts with every value from 1 to `threshold - 1` replaced by "<threshold"."""
    return {k: (f"<{threshold}" if 0 < v < threshold else v) for k, v in counts.items()}


def is_small(values: np.ndarray, *, threshold: int) -> np.ndarray:
    """Counts that primary suppression withholds: 1 to `threshold - 1`."""
    return (values >= 1) & (values < threshold)


def suppress_lines(values: np.ndarray, lines: pd.DataFrame, *, threshold: int) -> np.ndarray:
    """Which cells to withhold, primary and secondary, in one pass over all additive lines.

    `values` holds each cell's count (cells are positions 0..n-1). `lines` has one row per cell
    in a line: `line` (id), `cell` (position) and `is_total` (the cell the others add up to).
    A line needs more suppression when it holds exactly one withheld cell, or when its total is
    published and its withheld cells add up to less than `threshold`; the smallest published
    non-zero cell of the line is then withheld (its total if it has none). This repeats over every
    line until nothing changes, so the result holds across the whole hierarchy at once.
    """
    suppressed = is_small(values, threshold=threshold)
    line = lines["line"].to_numpy()
    cell = lines["cell"].to_numpy()
    is_total = lines["is_total"].to_numpy(dtype=bool)
    value = values[cell]
    while True:
        supp = suppressed[cell]
        frame = pd.DataFrame(
            {
                "line": line,
                "n": supp.astype(int),
                "withheld": np.where(supp & ~is_total, value, 0),
                "total_withheld": supp & is_total,
            }
        )
        per_line = frame.groupby("line").agg(
            n=("n", "sum"), withheld=("withheld", "sum"), total_withheld=("total_withheld", "any")
        )
        needy = per_line.index[
            (per_line["n"] == 1)
            | (
                (per_line["n"] >= 2)
                & ~per_line["total_withheld"]
                & (per_line["withheld"] < threshold)
            )
        ]
        if len(needy) == 0:
            return suppressed
        in_needy = np.isin(line, needy.to_numpy())
        candidates = pd.DataFrame({"line": line, "cell": cell, "value": value})[
            in_needy & ~supp & ~is_total & (value > 0)
        ]
        pick = candidates.sort_values(["line", "value", "cell"]).drop_duplicates("line")
        chosen = set(pick["cell"].tolist())
        no_child = np.setdiff1d(needy.to_numpy(), pick["line"].to_numpy())
        totals = cell[np.isin(line, no_child) & is_total & ~supp]
        chosen.update(totals.tolist())
        if not chosen:
            return suppressed
        suppressed[list(chosen)] = True
