"""Shared ingest helpers (targeting.ingest.common): reject bookkeeping and dates, known answers by
hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from targeting.errors import InputError
from targeting.ingest.common import (
    DateColumn,
    duplicated_among_valid,
    first_reason,
    is_in,
    parse_dates,
)


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


# --- dates ------------------------------------------------------------------------------------


def _dates(values: list[str], **options: object) -> DateColumn:
    return parse_dates(
        pd.Series(values),
        timezone=str(options.pop("timezone", "Europe/London")),
        input_name="signups",
        path=Path("signups.csv"),
        column="Date Joined",
        canonical="joined",
        **options,  # type: ignore[arg-type]
    )


def _days(column: DateColumn) -> list[str | None]:
    return [None if pd.isna(v) else f"{v:%Y-%m-%d %H:%M}" for v in column.values]


def test_iso_first_then_uk_day_first() -> None:
    got = _dates(["2018-01-02", "2018-02-03 17:45:00", "15/03/2018", "01/02/18", "", "someday"])
    assert _days(got) == [
        "2018-01-02 00:00", "2018-02-03 17:45", "2018-03-15 00:00", "2018-02-01 00:00", None, None,
    ]  # fmt: skip
    assert got.order == "day-first" and got.note is None  # 15/03 can only be day-first


def test_a_column_that_can_only_be_month_first_is_read_month_first_throughout() -> None:
    """Row by row, 01/02/2018 would be read day-first beside 10/31/2018: a third of a real
    column silently wrong. The order is decided once for the column."""
    got = _dates(["10/31/2018", "01/02/2018", "12/25/2017 09:30"])
    assert _days(got) == ["2018-10-31 00:00", "2018-01-02 00:00", "2017-12-25 09:30"]
    assert got.order == "month-first"
    assert got.note == "joined dates read month-first (e.g. 10/31/2018 cannot be day-first)"


def test_a_column_with_no_telling_date_reads_day_first_and_says_so() -> None:
    got = _dates(["01/02/2018", "03/04/2018"])
    assert _days(got) == ["2018-02-01 00:00", "2018-04-03 00:00"]
    assert got.note is not None and '[columns.signups] joined_format = "month-first"' in got.note


def test_a_column_in_both_orders_stops_with_an_example_of_each() -> None:
    with pytest.raises(InputError) as info:
        _dates(["31/10/2018", "10/31/2018"])
    message = str(info.value)
    assert (
        "signups.csv column 'Date Joined': has dates in both orders: 31/10/2018 can only be "
        "day-first and 10/31/2018 only month-first" in message
    )
    assert 'joined_format = "day-first" or "month-first"' in message


@pytest.mark.parametrize(
    ("date_format", "expected"),
    [("month-first", ["2018-10-31 00:00", None]), ("day-first", [None, "2018-10-31 00:00"]),
     ("%m/%d/%Y", ["2018-10-31 00:00", None])],
)  # fmt: skip
def test_a_given_format_forces_the_order(date_format: str, expected: list[str | None]) -> None:
    assert _days(_dates(["10/31/2018", "31/10/2018"], date_format=date_format)) == expected


def test_zoned_timestamps_take_the_local_date() -> None:
    got = _dates(
        ["2018-10-01T00:30:00+01:00", "2018-09-30T23:30:00Z", "2018-12-01T00:30:00Z",
         "2018-07-01 00:30"]
    )  # fmt: skip
    # BST in summer: 23:30 UTC is 00:30 the next day; GMT in winter; no zone: local already
    assert _days(got) == [
        "2018-10-01 00:30", "2018-10-01 00:30", "2018-12-01 00:30", "2018-07-01 00:30",
    ]  # fmt: skip
    elsewhere = _dates(["2018-10-01T00:30:00+01:00"], timezone="America/New_York")
    assert _days(elsewhere) == ["2018-09-30 19:30"]


@pytest.mark.parametrize("dtype", ["str", object])
def test_is_in_matches_pandas_isin_and_a_missing_value_is_never_in(dtype: object) -> None:
    values = pd.Series(["E01000001", None, "E01000002", "", "E01000001"], dtype=dtype)
    wanted = {"E01000001", ""}
    assert is_in(values, wanted).tolist() == [True, False, False, True, True]
    assert is_in(values, wanted).tolist() == values.isin(wanted).tolist()
    assert is_in(values, set()).tolist() == [False] * 5
    assert is_in(pd.Series([1, 2]), {"1"}).tolist() == [False, False]
