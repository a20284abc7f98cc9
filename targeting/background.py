"""Work on the machine's other core: a forked child process computes one function's result while
the run carries on, and hands it back through a pipe.

Planning the week and building the report each take about a second of a force's run and neither
needs the other; threads would mostly take turns on Python's lock for the pandas work in both. A
forked child starts from the parent's memory as it is (copy-on-write), so nothing is copied on
the way in, and only the result is pickled on the way out.

A child is forked only on Linux with more than one core, and only when asked (`fork=True`).
Otherwise the function runs at once, in this process, to the same result: the outputs never
depend on where the work ran. A child is forked while no other thread of the run is working, so
it never inherits a lock that a vanished thread held (its standard streams are its own, in case
a progress bar's thread was writing).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import sys
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

from targeting.errors import TargetingError

T = TypeVar("T")


class BackgroundError(TargetingError):
    """A background child process stopped without handing back its result, or its error could
    not be handed back as it was."""


def can_fork() -> bool:
    """Whether a child process would run on a core of its own: Linux (where forking a process
    with libraries loaded is safe and cheap) with more than one core."""
    return sys.platform == "linux" and (os.cpu_count() or 1) > 1


class Pending(Generic[T]):
    """A result on its way: `result()` waits for it, or raises the error computing it raised.

    Used as a context manager, it stops and reaps a child whose result was never collected (the
    run failed before it needed it), so no process outlives the run.
    """

    def __init__(self, *, name: str, pid: int | None = None, fd: int | None = None,
                 value: T | None = None, error: Exception | None = None) -> None:  # fmt: skip
        self.name = name
        self._pid = pid
        self._fd = fd
        self._value = value
        self._error = error

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs or waits to be collected (None otherwise)."""
        return self._pid

    def done(self) -> bool:
        """Whether the result is in: `result()` would not wait (a child writes only when it has
        finished, so anything to read, or the pipe's end, means it has)."""
        if self._pid is None:
            return True
        assert self._fd is not None
        readable, _, _ = select.select([self._fd], [], [], 0)
        return bool(readable)

    def poll(self) -> bool:
        """Take the result in now if it is ready, without raising its error, so the child and
        its memory are gone as soon as it has finished; True once the result is in."""
        if self._pid is None:
            return True
        if not self.done():
            return False
        self._collect()
        return True

    def result(self) -> T:
        """The function's result, once the child (if any) has handed it back."""
        if self._pid is not None:
            self._collect()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def _collect(self) -> None:
        assert self._pid is not None and self._fd is not None
        # read everything before waiting: a result larger than the pipe holds blocks the child
        with os.fdopen(self._fd, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        if not payload:
            self._error = BackgroundError(
                f"the background process for {self.name} stopped before it finished "
                f"({_describe(status)}); run again, and if it happens again report it"
            )
            return
        ok, outcome = pickle.loads(payload)
        if ok:
            self._value = outcome
        else:
            self._error = outcome

    def cancel(self) -> None:
        """Stop the child, if it still runs, and reap it."""
        if self._pid is None:
            return
        with contextlib.suppress(ProcessLookupError):  # it has finished on its own
            os.kill(self._pid, signal.SIGKILL)
        os.waitpid(self._pid, 0)
        if self._fd is not None:
            os.close(self._fd)
        self._pid = None

    def __enter__(self) -> Pending[T]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.cancel()


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _error_payload(error: Exception) -> bytes:
    """The child's error as the parent will raise it: the same exception when it survives
    pickling (the package's own errors do), a `BackgroundError` naming it otherwise; either
    way with the child's traceback as a note."""
    trace = "".join(traceback.format_exception(error))
    error.add_note("raised in a background process:\n" + trace)
    try:
        payload = pickle.dumps((False, error), protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(payload)
        return payload
    except Exception:
        stand_in = BackgroundError(f"{type(error).__name__}: {error}\n{trace}")
        return pickle.dumps((False, stand_in), protocol=pickle.HIGHEST_PROTOCOL)


def in_background(fn: Callable[[], T], *, name: str, fork: bool) -> Pending[T]:
    """Start computing `fn()` in a forked child (with `fork` and where `can_fork()`), or compute
    it now; either way its result, or its error, comes from the returned `Pending`.

    `fn`'s result must pickle (data frames, dataclasses of them, text), and `fn` must not need to
    change anything in this process: a child's changes to memory stay in the child.
    """
    if not (fork and can_fork()):
        try:
            return Pending(name=name, value=fn())
        except Exception as error:
            return Pending(name=name, error=error)
    read_fd, write_fd = os.pipe()
    # flushed first, so text still buffered here is not written twice
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    pid = os.fork()
    if pid == 0:  # the child: compute, hand back, and leave without running any cleanup
        code = 1
        try:
            os.close(read_fd)
            # fresh streams on the same descriptors: the inherited ones may be a progress bar's,
            # whose lock another thread of the parent could have held at the fork
            with contextlib.suppress(OSError):  # a process without them keeps what it had
                sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
                sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            try:
                payload = pickle.dumps((True, fn()), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as error:
                payload = _error_payload(error)
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(payload)
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    return Pending(name=name, pid=pid, fd=read_fd)
