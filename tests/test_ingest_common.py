"""Shared ingest helpers (targeting.ingest.common): reject bookkeeping, known answers by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from targeting.ingest.common import duplicated_among_valid, first_reason


def test_duplicated_among_valid_ignores_rows_already_rejected() -> None:
    values = pd.Series(["a", "a", "b", "b", "c", "c", "c"])
    reasons = np.array(["bad", "", "", "", "bad", "bad", ""], dtype=object)
    # "a": the first copy is rejected, so the second is the only valid one, not a duplicate;
    # "b": a true copy; "c": only the last is valid
    assert duplicated_among_valid(values, reasons).tolist() == [
        False, False, False, True, False, False, False,
    ]  # fmt: skip


def test_duplicated_among_valid_on_a_key_of_several_columns() -> None:
    key = pd.DataFrame({"a": ["X", "X", "X", "X"], "o": ["P", "P", "W", "P"]})
    reasons = np.array(["negative", "", "", ""], dtype=object)
    assert duplicated_among_valid(key, reasons).tolist() == [False, False, False, True]


def test_duplicated_among_valid_with_every_row_rejected() -> None:
    reasons = np.array(["bad", "bad"], dtype=object)
    assert duplicated_among_valid(pd.Series(["a", "a"]), reasons).tolist() == [False, False]


def test_first_reason_keeps_the_earliest_reason() -> None:
    reasons = np.array(["", "old", "", ""], dtype=object)
    first_reason(reasons, np.array([True, True, False, False]), "new")
    first_reason(reasons, np.array([True, False, False, True]), np.array(["x", "y", "z", "w"]))
    assert reasons.tolist() == ["new", "old", "", "w"]
