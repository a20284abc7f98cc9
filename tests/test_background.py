"""Work handed to a forked child: the same result (or error) as computing it here."""

from __future__ import annotations

import os
import pickle
import signal
import time

import numpy as np
import pandas as pd
import pytest

from targeting.background import BackgroundError, can_fork, in_background
from targeting.errors import InputError, Problem

forks = pytest.mark.skipif(not can_fork(), reason="forks only on Linux with two or more cores")


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"cell": ["89195da49a3ffff", "89195da49b7ffff"], "n": [3, 14]})


@pytest.mark.parametrize("fork", [True, False])
def test_the_result_is_the_functions_forked_or_not(fork: bool) -> None:
    pending = in_background(lambda: _frame().assign(n2=lambda f: f["n"] * 2), name="x", fork=fork)
    result = pending.result()
    pd.testing.assert_frame_equal(result, _frame().assign(n2=[6, 28]))
    assert pending.result() is result  # collected once, kept


@forks
def test_a_forked_function_runs_in_another_process_and_an_unforked_one_here() -> None:
    assert in_background(os.getpid, name="pid", fork=True).result() != os.getpid()
    assert in_background(os.getpid, name="pid", fork=False).result() == os.getpid()


@forks
def test_a_result_larger_than_the_pipe_holds_comes_back_whole() -> None:
    values = np.random.default_rng(1).normal(size=2_000_000)  # 16 MB: the pipe holds 64 kB
    got = in_background(lambda: values * 2, name="big", fork=True).result()
    np.testing.assert_array_equal(got, values * 2)


@forks
def test_the_childs_changes_stay_in_the_child() -> None:
    seen = {"n": 0}

    def bump() -> int:
        seen["n"] += 1
        return seen["n"]

    assert in_background(bump, name="bump", fork=True).result() == 1
    assert seen == {"n": 0}


@pytest.mark.parametrize("fork", [True, False])
def test_the_packages_error_is_raised_as_itself_with_where_it_came_from(fork: bool) -> None:
    def fail() -> None:
        raise InputError("crimes", "/data/crimes.csv", [Problem("row 2", "bad month", "fix it")])

    pending = in_background(fail, name="crimes", fork=fork)
    with pytest.raises(InputError) as raised:
        pending.result()
    assert raised.value.input_name == "crimes"
    assert raised.value.problems == (Problem("row 2", "bad month", "fix it"),)
    assert "bad month" in str(raised.value)
    if fork and can_fork():
        assert "raised in a background process" in "\n".join(raised.value.__notes__)
        assert "in fail" in "\n".join(raised.value.__notes__)


def test_the_packages_errors_survive_pickling() -> None:
    from targeting.errors import ConfigError

    config = pickle.loads(pickle.dumps(ConfigError("/c.toml", [Problem("a", "b", "c")])))
    assert (str(config.path), config.problems) == ("/c.toml", (Problem("a", "b", "c"),))


class _Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a} and {b}")


@forks
def test_an_error_that_cannot_cross_is_named_in_a_background_error() -> None:
    def fail() -> None:
        raise _Unpicklable(1, 2)

    with pytest.raises(BackgroundError, match=r"_Unpicklable: 1 and 2"):
        in_background(fail, name="x", fork=True).result()


@forks
def test_a_child_that_dies_is_reported_not_waited_for_forever() -> None:
    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(BackgroundError, match=r"the background process for the map stopped .*9"):
        in_background(die, name="the map", fork=True).result()


@forks
def test_a_child_whose_result_is_not_wanted_is_stopped_and_reaped() -> None:
    start = time.perf_counter()
    pid = None
    with (
        pytest.raises(RuntimeError, match="the run failed"),
        in_background(lambda: time.sleep(60), name="slow", fork=True) as pending,
    ):
        pid = pending.pid
        raise RuntimeError("the run failed")
    assert pid is not None
    assert time.perf_counter() - start < 10
    with pytest.raises(ChildProcessError):  # reaped: no longer this process's child
        os.waitpid(pid, os.WNOHANG)


@forks
def test_a_finished_child_is_taken_in_by_poll_and_its_error_kept_for_result() -> None:
    """`done` and `poll` never wait; `poll` takes in a finished child's result (the child is
    reaped and its memory freed) and keeps its error for `result`, raised where it is wanted."""
    import tempfile

    flag = os.path.join(tempfile.mkdtemp(), "go")

    def fail_when_told() -> None:
        while not os.path.exists(flag):
            time.sleep(0.01)
        raise InputError("crimes", "c.csv", [Problem("c.csv", "has no Month", "add it")])

    pending = in_background(fail_when_told, name="reading crimes", fork=True)
    pid = pending.pid
    assert pid is not None
    assert not pending.done() and not pending.poll()
    open(flag, "w").close()
    deadline = time.perf_counter() + 10
    while not pending.poll():
        assert time.perf_counter() < deadline
        time.sleep(0.01)
    assert pending.pid is None and pending.done()
    with pytest.raises(ChildProcessError):  # reaped by poll
        os.waitpid(pid, os.WNOHANG)
    with pytest.raises(InputError, match="has no Month"):
        pending.result()
