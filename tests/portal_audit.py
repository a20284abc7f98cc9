"""An attacker's view of the portal's published series, independent of the portal's code: what
each published count says the true count may be, and whether any true count, or the change of
one between two dates, is pinned to one value by everything published together.

Every published count is an interval of possible true counts (0 is exact; "<10", blank in the
CSVs, is 1 to 9; a published R of 10 or more is R - 5 to R + 4, and at least 10). The attacker
also knows how counts add up at each date (areas into NPUs into the force, origins into groups
into all origins) and that they are whole and not negative. A change between two dates is pinned
only if the counts at both dates are, so the audit of changes is the audit of every non-zero
count. An attacker who also knows a count never falls (true of a history reconstructed from
today's sign-ups) links the dates: `movable(..., monotone=True)` keeps every series
non-decreasing, and `clear_over_time` runs integer programs over all dates at once for what its
moves leave.

A quantity (a count at a date, or its change between two dates) cannot be derived exactly if
there is a second set of true counts, consistent with everything published, in which it differs.
`movable` looks for one among simple moves: one leaf (an area's count of one origin) up or down
by one sign-up, or two leaves in opposite directions (two origins of one area, or one origin in
two areas of an NPU, so the totals they share stay put), each at a suffix or a prefix of the
dates or at one date, together with every total the leaves add into. A move that keeps every
count inside its interval and every series non-decreasing is a second consistent set of counts,
which proves the quantities it changes are not pinned. (It is a certificate: it can only fail
to find a move where one exists, never find one that does not.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

THRESHOLD = 10


def intervals(published: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The true counts a published count allows (blank: withheld, 1 to 9)."""
    p = np.asarray(published, dtype=float)
    low = np.where(np.isnan(p), 1, np.where(p == 0, 0, np.maximum(p - 5, THRESHOLD)))
    high = np.where(np.isnan(p), THRESHOLD - 1, np.where(p == 0, 0, p + 4))
    return low, high


def leaf_moves(
    n_leaves: int, groups: list[np.ndarray], tables: list[np.ndarray] = ()
) -> sp.csc_matrix:
    """Moves as columns over the leaves: each leaf alone (+1); each pair of leaves within a
    group (+1 on the first, -1 on the second; `groups` are arrays of leaf positions); and each
    rectangle of a table (`tables` are 2-D arrays of leaf positions, rows by columns: +1 at
    (r1, c1) and (r2, c2), -1 at (r1, c2) and (r2, c1), which leaves every row and column
    total as it was)."""
    rows, cols, values = list(range(n_leaves)), list(range(n_leaves)), [1.0] * n_leaves
    column = n_leaves
    for group in groups:
        first, second = np.triu_indices(len(group), k=1)
        count = len(first)
        rows += [*group[first], *group[second]]
        cols += [*range(column, column + count), *range(column, column + count)]
        values += [1.0] * count + [-1.0] * count
        column += count
    for table in tables:
        r1, r2 = np.triu_indices(table.shape[0], k=1)
        c1, c2 = np.triu_indices(table.shape[1], k=1)
        a, b = np.repeat(r1, len(c1)), np.repeat(r2, len(c1))
        c, d = np.tile(c1, len(r1)), np.tile(c2, len(r1))
        count = len(a)
        ids = np.arange(column, column + count)
        rows += [*table[a, c], *table[b, d], *table[a, d], *table[b, c]]
        cols += [*ids, *ids, *ids, *ids]
        values += [1.0] * (2 * count) + [-1.0] * (2 * count)
        column += count
    return sp.csc_matrix((values, (rows, cols)), shape=(n_leaves, column))


@dataclass(frozen=True)
class Movable:
    """Which quantities a one-sign-up move can change: `level[t, v]`, and `change[v, t1, t2]`
    (t1 < t2) for the change of v between two dates."""

    level: np.ndarray  # (dates, variables) bool
    change: np.ndarray  # (variables, dates, dates) bool, meaningful for t1 < t2


def _support_min(values: np.ndarray, support: sp.csc_matrix) -> np.ndarray:
    """Per date and move, the smallest of `values[t, v]` over the move's variables (inf for a
    move with none)."""
    out = np.full((values.shape[0], support.shape[1]), np.inf)
    counts = np.diff(support.indptr)
    has = counts > 0
    for t in range(values.shape[0]):
        out[t, has] = np.minimum.reduceat(values[t][support.indices], support.indptr[:-1][has])
    return out


def movable(
    true: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    members: sp.csr_matrix,
    moves: sp.csc_matrix,
    *,
    monotone: bool,
    cap: np.ndarray | None = None,
) -> Movable:
    """`true` and `bounds` (what the published counts allow: `intervals`) are (dates,
    variables); `members[v, leaf]` is 1 where the leaf
    adds into variable v (its own variable and every total above it); `moves` are columns over
    the leaves (`leaf_moves`); `cap` (dates, variables), if given, is an upper bound each true
    count must stay under (low ratings under ratings).
    """
    low, high = bounds
    if cap is not None:
        high = np.minimum(high, cap)
    dates = true.shape[0]
    signed = (members @ moves).tocsc()
    signed.eliminate_zeros()
    plus = (signed > 0).astype(np.int8).tocsc()  # the variables a move raises
    minus = (signed < 0).astype(np.int8).tocsc()  # and those it lowers
    up, down = high - true, true - low
    inf = np.full((1, true.shape[1]), np.inf)
    rise_after = np.vstack([true[1:] - true[:-1], inf]) if monotone else np.full_like(true, np.inf)
    rise_before = np.vstack([inf, true[1:] - true[:-1]]) if monotone else np.full_like(true, np.inf)

    def direction(raise_: sp.csc_matrix, lower: sp.csc_matrix) -> tuple[np.ndarray, ...]:
        """For the move applied one way: feasible at each date, and the monotone room at the
        end (raised variables must stay under the next date) and start (lowered ones above
        the date before) of a range."""
        ok = np.minimum(_support_min(up, raise_), _support_min(down, lower)) >= 1
        end_ok = _support_min(rise_after, raise_) >= 1
        start_ok = _support_min(rise_before, lower) >= 1
        suffix = np.minimum.accumulate(ok[::-1].astype(int), axis=0)[::-1] >= 1
        prefix = np.minimum.accumulate(ok.astype(int), axis=0) >= 1
        return suffix & start_ok, prefix & end_ok, ok & start_ok & end_ok

    suffix_a, prefix_a, single_a = direction(plus, minus)
    suffix_b, prefix_b, single_b = direction(minus, plus)
    from_t, to_t, single = suffix_a | suffix_b, prefix_a | prefix_b, single_a | single_b
    # a move changes its variables at date t if some range it can be applied on holds t
    level_m = single | (np.cumsum(from_t, axis=0) > 0) | (np.cumsum(to_t[::-1], axis=0)[::-1] > 0)
    # and the change between t1 < t2 if the range holds one of them only: a suffix from
    # t in (t1, t2], a prefix to t in [t1, t2), or one date t1 or t2
    from_c = np.vstack([np.zeros((1, from_t.shape[1])), np.cumsum(from_t, axis=0)])
    to_c = np.vstack([np.zeros((1, to_t.shape[1])), np.cumsum(to_t, axis=0)])
    pairs = np.zeros((signed.shape[1], dates, dates), dtype=bool)
    for t1 in range(dates):
        for t2 in range(t1 + 1, dates):
            pairs[:, t1, t2] = (
                (from_c[t2 + 1] - from_c[t1 + 1] > 0)
                | (to_c[t2] - to_c[t1] > 0)
                | single[t1]
                | single[t2]
            )
    touched = abs(signed).astype(np.int64).tocsr()  # variable x move
    level = (touched @ level_m.T.astype(np.int64)).T > 0
    change = touched @ sp.csr_matrix(pairs.reshape(pairs.shape[0], -1).astype(np.int64))
    return Movable(level, change.toarray().reshape(signed.shape[0], dates, dates) > 0)


def pinned_exactly(
    bounds: tuple[np.ndarray, np.ndarray],
    members: sp.csr_matrix,
    quantities: np.ndarray,
    *,
    cap: np.ndarray | None = None,
) -> list[tuple[int, int]]:
    """The (date, variable) pairs among `quantities` whose count every consistent set of
    whole counts at that date agrees on: an exact integer program per pair, for its least and
    greatest value (`bounds` and `cap` as for `movable`)."""
    from scipy.optimize import linprog

    low, high = bounds
    if cap is not None:
        high = np.minimum(high, cap)
    program = sp.vstack([members, -members]).tocsr()
    pinned = []
    for t, v in quantities:
        objective = np.asarray(members[v].todense()).ravel()
        bounds = np.r_[high[t], -low[t]]
        ends = [
            sign * linprog(sign * objective, A_ub=program, b_ub=bounds, bounds=(0, None),
                           method="highs", integrality=np.ones(objective.size)).fun
            for sign in (1.0, -1.0)
        ]  # fmt: skip
        if ends[0] == ends[1]:
            pinned.append((int(t), int(v)))
    return pinned


def _block_program(
    true_leaves: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    members: sp.csr_matrix,
    block: np.ndarray,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """The attacker's constraints on a block of leaves at every date, the other leaves held at
    their true counts, with every series non-decreasing: `A x <= b` over x[t, leaf] (t-major)."""
    low, high = bounds
    dates, n_leaves = true_leaves.shape
    outside = np.ones(n_leaves, dtype=bool)
    outside[block] = False
    fixed = np.asarray((members[:, outside] @ true_leaves[:, outside].T).T)
    local = members[:, block]
    touched = np.flatnonzero(np.asarray(local.sum(axis=1)).ravel() > 0)
    sums = sp.kron(sp.identity(dates), local[touched])
    step = sp.kron(
        sp.eye(dates - 1, dates) - sp.eye(dates - 1, dates, k=1), sp.identity(len(block))
    )
    matrix = sp.vstack([sums, -sums, step]).tocsr()
    limits = np.concatenate([(high - fixed)[:, touched].ravel(),
                             -(low - fixed)[:, touched].ravel(), np.zeros(step.shape[0])])  # fmt: skip
    return matrix, limits


def clear_over_time(
    true_leaves: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    members: sp.csr_matrix,
    *,
    level: np.ndarray,
    change: np.ndarray,
    blocks_of: Callable[[int], list[np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """What stays pinned, for an attacker who also knows counts never fall, of the counts
    `level[t, v]` and changes `change[t1, t2, v]` the moves could not shift: for each variable,
    over each block of leaves `blocks_of(v)` gives (the others held at their true counts), an
    integer program pushes the variable's pinned dates up, then down (for a change, its later
    date against its earlier one); a solution is checked against every interval and kept as a
    second consistent set of counts, clearing whatever it moves."""
    from scipy.optimize import linprog

    low, high = bounds
    level, change = level.copy(), change.copy()
    true = np.asarray((members @ true_leaves.T).T)
    true_change = true[None, :, :] - true[:, None, :]
    dates = true_leaves.shape[0]
    pending = np.unique(np.r_[np.argwhere(level)[:, 1], np.argwhere(change)[:, 2]])
    for v in pending:
        under = set(members[v].indices)
        for block in blocks_of(int(v)):
            if not (level[:, v].any() or change[:, :, v].any()):
                break
            matrix, limits = _block_program(true_leaves, bounds, members, block)
            mine = [i for i, leaf in enumerate(block) if leaf in under]
            for sign in (1.0, -1.0):
                push = level[:, v].astype(float)
                push += change[:, :, v].sum(axis=0) - change[:, :, v].sum(axis=1)
                objective = np.zeros((dates, len(block)))
                objective[:, mine] = -sign * push[:, None]
                if not objective.any():
                    break
                result = linprog(objective.ravel(), A_ub=matrix, b_ub=limits, bounds=(0, None),
                                 method="highs", integrality=np.ones(objective.size))  # fmt: skip
                if result.status != 0:
                    continue
                other = true_leaves.copy()
                other[:, block] = np.round(result.x.reshape(dates, len(block)))
                values = np.asarray((members @ other.T).T)
                if ((low <= values) & (values <= high)).all() and (
                    np.diff(other, axis=0) >= 0
                ).all():
                    level &= values == true
                    change &= (values[None, :, :] - values[:, None, :]) == true_change
    return level, change
