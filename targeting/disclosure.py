"""Disclosure control for counts derived from sign-ups (special category data).

Counts from 1 to the threshold minus one are withheld (primary suppression). Because published
tables add up (origins to groups to all origins; areas to parents to the force), a withheld count
could be recovered by subtraction, so more counts are withheld (secondary suppression) until, in
every additive line, the withheld counts together add up to at least the threshold: then each is
known only to lie in a range at least the threshold wide. Where a page prints a withheld
small count as "<10" (the threshold being public), a reader knows it lies in 1..9 and that any
other withheld count is at least 10: tables printed that way are also protected knowing it, so
that no withheld count can be placed in fewer than three values (`LABELLED_WIDTH`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components


def withhold_small_counts(counts: Mapping[str, int], *, threshold: int) -> dict[str, int | str]:
    """The counts with every value from 1 to `threshold - 1` replaced by "<threshold"."""
    return {k: (f"<{threshold}" if 0 < v < threshold else v) for k, v in counts.items()}


def is_small(values: np.ndarray, *, threshold: int) -> np.ndarray:
    """Counts that primary suppression withholds: 1 to `threshold - 1`."""
    return (values >= 1) & (values < threshold)


def suppress_lines(
    values: np.ndarray,
    lines: pd.DataFrame,
    *,
    threshold: int,
    initial: np.ndarray | None = None,
    frozen: np.ndarray | None = None,
) -> np.ndarray:
    """Which cells to withhold, primary and secondary, in one pass over all additive lines.

    `values` holds each cell's count (cells are positions 0..n-1). `lines` has one row per cell
    in a line: `line` (id), `cell` (position) and `is_total` (the cell the others add up to).
    A line needs more suppression when it holds exactly one withheld cell, or when its total is
    published and its withheld cells add up to less than `threshold`; the smallest published
    non-zero cell of the line is then withheld (its total if it has none). This repeats over every
    line until nothing changes. Line by line is not enough on its own where lines cross (see
    `protect_counts`). `initial` adds cells already withheld; `frozen` cells are never withheld
    here (already published elsewhere: their status is settled).
    """
    fixed = np.zeros(len(values), dtype=bool) if frozen is None else frozen
    suppressed = is_small(values, threshold=threshold)
    if initial is not None:
        suppressed = suppressed | initial
    # lines as integer codes: set operations on text ids are far slower at a force's scale
    line = pd.factorize(lines["line"])[0]
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
            in_needy & ~supp & ~is_total & (value > 0) & ~fixed[cell]
        ]
        pick = candidates.sort_values(["line", "value", "cell"]).drop_duplicates("line")
        chosen = set(pick["cell"].tolist())
        no_child = np.setdiff1d(needy.to_numpy(), pick["line"].to_numpy())
        totals = cell[np.isin(line, no_child) & is_total & ~supp & ~fixed[cell]]
        chosen.update(totals.tolist())
        if not chosen:
            return suppressed
        suppressed[list(chosen)] = True


# LP statuses `_solve` returns
OPTIMAL, UNBOUNDED, OTHER = 0, 3, 2


def _program(matrix: sp.csr_matrix, rhs: np.ndarray, box: np.ndarray) -> Any:
    """A HiGHS model of `matrix @ x == rhs` within `box` (lowest, highest per column), to be
    solved for many objectives: each solve starts from the last one's basis, which at a force's
    scale is a third of the time of building and solving every LP afresh (`scipy.optimize.linprog`).

    The binding class is used rather than `highspy.Highs`, which prints HiGHS's banner to
    standard output when it is made, before its output can be switched off. Presolve is off: on
    these small, many LPs it costs more than it saves.
    """
    from highspy import _core as highs  # the solver is loaded only by a run that audits

    model = highs._Highs()
    model.setOptionValue("output_flag", False)
    model.setOptionValue("presolve", "off")
    lp = highs.HighsLp()
    lp.num_col_, lp.num_row_ = matrix.shape[1], matrix.shape[0]
    lp.col_cost_ = np.zeros(matrix.shape[1])
    lp.col_lower_ = box[:, 0]
    lp.col_upper_ = np.where(np.isinf(box[:, 1]), highs.kHighsInf, box[:, 1])
    lp.row_lower_ = lp.row_upper_ = rhs
    columns = matrix.tocsc()
    lp.a_matrix_.format_ = highs.MatrixFormat.kColwise
    lp.a_matrix_.start_ = columns.indptr
    lp.a_matrix_.index_ = columns.indices
    lp.a_matrix_.value_ = columns.data
    model.passModel(lp)
    return model


def _solve(model: Any, cost: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Minimise `cost @ x` on a `_program`: the status (`OPTIMAL`, `UNBOUNDED` or `OTHER`),
    and at an optimum the solution and the rows' dual values (empty otherwise)."""
    from highspy import _core as highs

    model.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost)
    model.run()
    status = model.getModelStatus()
    if status == highs.HighsModelStatus.kOptimal:
        solution = model.getSolution()
        return OPTIMAL, np.asarray(solution.col_value), np.asarray(solution.row_dual)
    # the true counts are a solution, so "unbounded or infeasible" is unbounded
    if status in (highs.HighsModelStatus.kUnbounded, highs.HighsModelStatus.kUnboundedOrInfeasible):
        return UNBOUNDED, np.empty(0), np.empty(0)
    return OTHER, np.empty(0), np.empty(0)


def narrow_cells(
    values: np.ndarray,
    lines: pd.DataFrame,
    suppressed: np.ndarray,
    *,
    threshold: int,
    check: np.ndarray | None = None,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    enough: float | None = None,
) -> pd.DataFrame:
    """Withheld cells that the published values pin to a range narrower than `enough` (default
    `threshold`), with the lines that pin them: columns `cell, line`.

    This is what anyone holding the published tables can do: each line is an equation, published
    cells are constants, withheld cells unknowns >= 0; minimising and maximising each unknown by
    linear programming gives the tightest range, and the lines with a non-zero dual value at the
    optimum are the ones that pin it. Cells are solved per connected group, and a cell is
    skipped once the solutions already found (starting from the true values) span the
    threshold in it: each optimum moves many cells at once, so most cells need one LP or none
    (LPs in random directions first, to spread the solutions, cost more than they saved).
    `check` limits the audit to some cells (withholding more only ever widens ranges, so cells
    found wide stay wide). `bounds` (lowest and highest value per cell, inf for none) is what a reader knows of each
    withheld cell beyond >= 0, such as "<10" printed in its place (`labelled_bounds`).
    """
    found = pd.DataFrame({"cell": pd.Series(dtype=np.int64), "line": pd.Series(dtype=object)})
    cells = np.flatnonzero(suppressed)
    if len(cells) == 0:
        return found
    var = np.full(len(values), -1)
    var[cells] = np.arange(len(cells))
    frame = lines.assign(
        var=var[lines["cell"].to_numpy()],
        coef=np.where(lines["is_total"].to_numpy(dtype=bool), -1.0, 1.0),
        value=values[lines["cell"].to_numpy()].astype(float),
    )
    frame = frame[frame.groupby("line")["var"].transform("max") >= 0]
    line_ids, line_pos = np.unique(frame["line"].to_numpy(), return_inverse=True)
    unknown = frame["var"].to_numpy() >= 0
    matrix = sp.csr_matrix(
        (frame["coef"].to_numpy()[unknown], (line_pos[unknown], frame["var"].to_numpy()[unknown])),
        shape=(len(line_ids), len(cells)),
    )
    known = -frame["coef"].to_numpy()[~unknown] * frame["value"].to_numpy()[~unknown]
    rhs = np.bincount(line_pos[~unknown], weights=known, minlength=len(line_ids))
    n_comp, comp = connected_components(matrix.T @ matrix, directed=False)
    truth = values[cells].astype(float)
    enough = float(threshold if enough is None else enough)
    lows = np.zeros(len(cells)) if bounds is None else bounds[0][cells].astype(float)
    highs = np.full(len(cells), np.inf) if bounds is None else bounds[1][cells].astype(float)
    wanted = np.ones(len(cells), dtype=bool) if check is None else np.isin(cells, check)
    groups = []
    for k in range(n_comp):
        members = np.flatnonzero(comp == k)
        if not wanted[members].any():
            continue
        rows = np.unique(matrix[:, members].nonzero()[0])
        groups.append(
            _Group(
                members, rows, matrix[rows][:, members], rhs[rows],
                np.column_stack([lows[members], highs[members]]), truth[members],
            )
        )  # fmt: skip
    checks = [
        (g, chunk)
        for g in groups
        for chunk in np.array_split(
            np.flatnonzero(wanted[g.members]),
            PARTS if wanted[g.members].sum() >= 8 * PARTS else 1,
        )
        if len(chunk)
    ]
    found_narrow = _in_parallel(lambda job: _narrow(job[0], job[1], enough=enough), checks)
    pinned: list[tuple[int, object]] = []
    for (g, _), narrow in zip(checks, found_narrow, strict=True):
        for j, binding in narrow:
            cell = int(cells[g.members[j]])
            pinned += [(cell, line_ids[g.rows[r]]) for r in binding] or [(cell, None)]
    return pd.DataFrame(pinned, columns=["cell", "line"]) if pinned else found


# the audit's LPs split into this many parts where a group is large (a fixed number, so the
# result is the same whatever the machine); HiGHS lets go of Python's lock while it solves, so
# the parts run at once on as many cores
PARTS = 2


@dataclass(frozen=True)
class _Group:
    """A connected group of withheld cells and the lines through them, as an LP."""

    members: np.ndarray  # the cells' positions among the withheld
    rows: np.ndarray  # the lines' positions
    matrix: sp.csr_matrix
    rhs: np.ndarray
    box: np.ndarray
    truth: np.ndarray


def _in_parallel(work: Callable[[Any], Any], jobs: list[Any]) -> list[Any]:
    """`work` on every job, in threads where there are cores to spare; results in job order."""
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        return [work(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(work, jobs))


def _narrow(group: _Group, chunk: np.ndarray, *, enough: float) -> list[tuple[int, list[int]]]:
    """The cells of `chunk` (positions in `group`) that the lines pin to a range narrower than
    `enough`, each with the lines binding at its optimum: minimise and maximise each cell not
    already seen to be wide (every solution found widens the others' known ranges)."""
    program = _program(group.matrix, group.rhs, group.box)
    low, high = group.truth.copy(), group.truth.copy()
    narrow = []
    for j in chunk:
        binding: set[int] = set()
        for sign in (1.0, -1.0):
            if high[j] - low[j] >= enough:
                break
            cost = np.zeros(len(group.members))
            cost[j] = sign
            status, x, dual = _solve(program, cost)
            if status == UNBOUNDED:  # as wide as can be
                high[j] = np.inf
            elif status == OPTIMAL:
                low = np.minimum(low, x)
                high = np.maximum(high, x)
                binding.update(np.flatnonzero(np.abs(dual) > 1e-9).tolist())
        if high[j] - low[j] < enough - 1e-6:
            narrow.append((int(j), sorted(binding)))
    return narrow


# a count printed as "<10" is known to lie in 1..9; it must still not be narrowed to fewer than
# three values (a range at least this wide) by the published figures
LABELLED_WIDTH = 2


def labelled_bounds(
    values: np.ndarray, suppressed: np.ndarray, labelled: np.ndarray, *, threshold: int
) -> tuple[np.ndarray, np.ndarray]:
    """What a reader knows of each withheld cell where withheld counts of 1 to `threshold - 1`
    are printed as "<threshold" (the `labelled` cells): those lie in 1..threshold-1, and the
    others withheld there (secondary suppression) are at least the threshold. Elsewhere only
    >= 0."""
    small = is_small(values, threshold=threshold)
    low = np.zeros(len(values))
    high = np.full(len(values), np.inf)
    shown = labelled & suppressed
    low[shown & small], high[shown & small] = 1.0, threshold - 1.0
    low[shown & ~small] = float(threshold)
    return low, high


def protect_counts(
    values: np.ndarray,
    lines: pd.DataFrame,
    *,
    threshold: int,
    max_rounds: int = 30,
    labelled: np.ndarray | None = None,
    initial: np.ndarray | None = None,
    frozen: np.ndarray | None = None,
    check: np.ndarray | None = None,
) -> np.ndarray:
    """Which cells to withhold so that no withheld count can be placed in a range narrower than
    `threshold` from everything published.

    Line-by-line suppression (`suppress_lines`) first; then, while the linear-programming audit
    (`narrow_cells`) finds pinned cells, the smallest published non-zero cell on a line that pins
    each (or, failing that, on any line through it) is withheld too and the line rule reapplied.
    Where some cells are printed as "<threshold" when withheld (`labelled`), the audit runs again
    knowing that (`labelled_bounds`) and widens every withheld cell to `LABELLED_WIDTH`.
    `initial` cells start withheld and `frozen` ones keep their status (a table published
    elsewhere that a new one links to); `check` limits the first audit to the cells the new
    table can narrow (the frozen table's own were audited when it was published). The test
    suite audits the result independently.
    """
    suppressed = suppress_lines(values, lines, threshold=threshold, initial=initial, frozen=frozen)
    suppressed = _widen(
        values, lines, suppressed, threshold=threshold, max_rounds=max_rounds, frozen=frozen,
        audit=lambda s, cells: narrow_cells(values, lines, s, threshold=threshold, check=cells),
        check=check,
    )  # fmt: skip
    if labelled is None or not (labelled & suppressed).any():
        return suppressed
    return _widen(
        values, lines, suppressed, threshold=threshold, max_rounds=max_rounds, frozen=frozen,
        audit=lambda s, cells: narrow_cells(
            values, lines, s, threshold=threshold, check=cells, enough=LABELLED_WIDTH,
            bounds=labelled_bounds(values, s, labelled, threshold=threshold),
        ),
        check=check,
    )  # fmt: skip


def _widen(
    values: np.ndarray,
    lines: pd.DataFrame,
    suppressed: np.ndarray,
    *,
    threshold: int,
    max_rounds: int,
    audit: Callable[[np.ndarray, np.ndarray | None], pd.DataFrame],
    frozen: np.ndarray | None = None,
    check: np.ndarray | None = None,
) -> np.ndarray:
    """Withhold more until `audit` finds no pinned cell: for each pinned cell, the smallest
    published non-zero cell on a line that pins it (or on any line through it)."""
    line = lines["line"].to_numpy()
    cell = lines["cell"].to_numpy()
    value = values[cell]
    for _ in range(max_rounds):
        narrow = audit(suppressed, check)
        if narrow.empty:
            return suppressed
        fixed = np.zeros(len(values), dtype=bool) if frozen is None else frozen
        open_cells = pd.DataFrame({"line": line, "cell": cell, "value": value})[
            ~suppressed[cell] & (value > 0) & ~fixed[cell]
        ]
        through = pd.DataFrame({"narrow": cell, "line": line})[np.isin(cell, narrow["cell"])]
        options = pd.concat(
            [
                narrow.rename(columns={"cell": "narrow"})
                .merge(open_cells, on="line")
                .assign(rank=0),
                through.merge(open_cells, on="line").assign(rank=1),
            ]
        )
        if options.empty:
            break
        # for each pinned cell, the smallest published cell on a line that pins it
        picks = options.sort_values(["rank", "value", "cell"]).drop_duplicates("narrow")["cell"]
        extra = suppressed.copy()
        extra[picks.to_numpy(dtype=np.int64)] = True
        before = suppressed
        suppressed = suppress_lines(
            values, lines, threshold=threshold, initial=extra, frozen=frozen
        )
        # only the cells still pinned and the newly withheld ones can be narrow next time
        check = np.union1d(narrow["cell"].to_numpy(), np.flatnonzero(suppressed & ~before))
    return suppressed


def protect_breakdown(
    parts: Mapping[str, int], *, total: int | None = None, threshold: int
) -> dict[str, int | str]:
    """A published breakdown (parts of a total that is public) with small parts withheld so
    that none can be worked out from the total and the other parts, knowing how withheld parts
    read: a part of 1 to threshold-1 reads "<threshold", a larger one withheld to protect it
    reads "suppressed"."""
    names = list(parts)
    values = np.array([*parts.values(), total if total is not None else sum(parts.values())])
    lines = pd.DataFrame(
        {
            "line": "breakdown",
            "cell": np.arange(len(values)),
            "is_total": np.arange(len(values)) == len(names),
        }
    )
    withheld = protect_counts(
        values.astype(np.int64), lines, threshold=threshold, labelled=np.ones(len(values), bool)
    )
    if withheld[-1]:  # the total is public: its parts must protect themselves
        withheld[:] = True
    small = is_small(values, threshold=threshold)
    return {
        n: (f"<{threshold}" if small[i] else "suppressed") if withheld[i] else int(values[i])
        for i, n in enumerate(names)
    }
